"""Sealing key material at rest: AES-256-GCM under a master key, bound to ring and version.

The master key lives in a 0600 file (:class:`MasterKeyFile`) written with the one atomic
writer; a key file that group or others may read or write is refused, as ssh does.

A sealed blob is ``b"KL1" || nonce(12) || ciphertext+tag``; the associated data is
``keylife:v1:<ring>:<version>``, so a blob moved to another ring or version does not open.

A store that has a store id (:func:`new_store_id`, made at ``keylife init``; existing stores
get one from ``keylife store rekey``) seals ``b"KL2" || nonce || ciphertext+tag`` with the
associated data ``keylife:store:<store id>:keylife:v1:<ring>:<version>``
(:class:`Sealer`): a blob copied from another store, even one sharing the master key, does not
open, and such a store refuses ``KL1`` blobs altogether.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .errors import IntegrityError, StoreError, StoreUnavailableError
from .files import atomic_write, check_private_file, private_dir

_MAGIC = b"KL1"
_MAGIC_BOUND = b"KL2"


def associated_data(ring: str, version: int) -> bytes:
    return f"keylife:v1:{ring}:{version}".encode()


class MasterKey:
    """A 256-bit key-encryption key. Its ``repr`` shows only its key check value."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise StoreError("the master key must be 32 bytes (256 bits)")
        self._key = key

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(32))

    @property
    def check_value(self) -> str:
        """Identifies the key without revealing it (first 8 bytes of an HMAC)."""
        return hmac.new(self._key, b"keylife master key check", hashlib.sha256).hexdigest()[:16]

    def seal(self, plaintext: bytes, ad: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(12)
        return _MAGIC + nonce + AESGCM(self._key).encrypt(nonce, plaintext, ad)

    def open(self, blob: bytes, ad: bytes, *, what: str) -> bytes:
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + 12 + 16:
            raise IntegrityError(f"{what}: sealed blob is malformed")
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = blob[3:15]
        try:
            return AESGCM(self._key).decrypt(nonce, blob[15:], ad)
        except InvalidTag:
            raise IntegrityError(
                f"{what}: sealed material failed its integrity check (AEAD tag); the blob was "
                "altered or belongs elsewhere"
            ) from None

    def encode(self) -> bytes:
        return base64.b64encode(self._key) + b"\n"

    @classmethod
    def decode(cls, text: bytes, *, source: str) -> MasterKey:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except ValueError:
            raise StoreError(f"{source}: master key is not base64") from None
        if len(raw) != 32:
            raise StoreError(f"{source}: master key must decode to 32 bytes")
        return cls(raw)

    def __repr__(self) -> str:
        return f"<MasterKey kcv={self.check_value}>"


def new_store_id() -> str:
    """A fresh random store id (128 bits, hex)."""
    return secrets.token_hex(16)


class Sealer:
    """The master key as one store uses it: bound to ``store_id`` when the store has one
    (``KL2`` blobs only), else the old format (``KL1`` blobs only). Same ``seal``/``open`` as
    :class:`MasterKey`, with the ring-and-version associated data of :func:`associated_data`."""

    __slots__ = ("key", "store_id")

    def __init__(self, key: MasterKey, store_id: str | None) -> None:
        self.key = key
        self.store_id = store_id

    @property
    def check_value(self) -> str:
        return self.key.check_value

    def _bound(self, ad: bytes) -> bytes:
        return f"keylife:store:{self.store_id}:".encode() + ad

    def seal(self, plaintext: bytes, ad: bytes) -> bytes:
        if self.store_id is None:
            return self.key.seal(plaintext, ad)
        # the magic is not authenticated in either format; the associated data is
        return _MAGIC_BOUND + self.key.seal(plaintext, self._bound(ad))[len(_MAGIC) :]

    def open(self, blob: bytes, ad: bytes, *, what: str) -> bytes:
        if self.store_id is None:
            if blob.startswith(_MAGIC_BOUND):
                raise IntegrityError(
                    f"{what}: sealed for a store bound to its store id, but this store has "
                    "none: the blob comes from another store"
                )
            return self.key.open(blob, ad, what=what)
        if blob.startswith(_MAGIC):
            raise IntegrityError(
                f"{what}: sealed in the old format, without this store's id, which this store "
                "refuses since its blobs were bound to it (a blob from another store or an "
                f"old copy); restore it from a backup (`keylife restore ARCHIVE --ring R "
                "--version N`)"
            )
        if not blob.startswith(_MAGIC_BOUND):
            raise IntegrityError(f"{what}: sealed blob is malformed")
        return self.key.open(_MAGIC + blob[len(_MAGIC_BOUND) :], self._bound(ad), what=what)

    def __repr__(self) -> str:
        return f"<MasterKey kcv={self.check_value} store={self.store_id}>"


_KEY_FILE_MAX = 4096  # a master key file is 45 bytes; read no more than this


class MasterKeyFile:
    """Where the master key lives: a 0600 file, or the ``KEYLIFE_MASTER_KEY`` variable."""

    def __init__(self, path: Path, env_value: str | None = None) -> None:
        self.path = path
        self.env_value = env_value

    @property
    def pending(self) -> Path:
        return self.path.with_name(self.path.name + ".new")

    def load(self) -> MasterKey:
        if self.env_value:
            return MasterKey.decode(self.env_value.encode(), source="KEYLIFE_MASTER_KEY")
        key = self._read(self.path)
        if key is None:
            raise StoreUnavailableError(
                f"master key file {self.path} not found; run `keylife init` or set "
                "KEYLIFE_MASTER_KEY_FILE"
            )
        return key

    def load_pending(self) -> MasterKey | None:
        return self._read(self.pending)

    @staticmethod
    def _read(path: Path) -> MasterKey | None:
        """The key in ``path``, None if there is none; refused if others may read or write it."""
        if not path.exists():
            return None
        check_private_file(path, what="master key file", error=StoreError)
        try:
            with open(path, "rb") as fh:
                data = fh.read(_KEY_FILE_MAX)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read master key file {path}: {exc.strerror}") from exc
        return MasterKey.decode(data, source=str(path))

    def write(self, key: MasterKey, *, pending: bool = False) -> None:
        if self.env_value and not pending:
            raise StoreError("the master key comes from KEYLIFE_MASTER_KEY; it cannot be written")
        path = self.pending if pending else self.path
        if not path.parent.is_dir():  # an existing one (or a link to one) is the operator's
            private_dir(path.parent, error=StoreError)
        atomic_write(path, key.encode(), mode=0o600, error=StoreError)
