"""Sealing key material at rest: AES-256-GCM under a master key, bound to ring and version.

A sealed blob is ``b"KL1" || nonce(12) || ciphertext+tag``; the associated data is
``keylife:v1:<ring>:<version>``, so a blob moved to another ring or version does not open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from .errors import IntegrityError, StoreError

_MAGIC = b"KL1"


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


def write_secret_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, created 0600 from the start."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
