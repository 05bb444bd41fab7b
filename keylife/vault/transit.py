"""Transit under one mount: keys, rotation, version floors, trim, rewrap, encrypt and decrypt.

Answers are decoded once into :class:`TransitKeyInfo`. The wrapping key that seals keylife's
material is used with a derivation *context* that binds each ciphertext to one ring and
version (:func:`context`); its prefix is fixed per ring, so a service policy can pin it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import IntegrityError, StoreError, TransitKeyWeakenedError
from .client import VaultClient, b64, q

__all__ = ["CIPHERTEXT", "Transit", "TransitKeyInfo", "context", "context_prefix"]

#: A Transit ciphertext, with its key version in group 1.
CIPHERTEXT = re.compile(r"^vault:v(\d+):\S+$")


def context_prefix(ring: str) -> bytes:
    """The Transit context of every version of ``ring`` starts with this (3-byte aligned, so its
    base64 is a fixed prefix that a policy can pin with ``allowed_parameters``)."""
    prefix = f"keylife:v1:{ring}:".encode()
    return prefix + b":" * (-len(prefix) % 3)


def context(ring: str, version: int) -> bytes:
    return context_prefix(ring) + str(version).encode()


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _created(value: Any) -> dt.datetime | None:
    """A key version's creation time: unix seconds (symmetric keys) or an RFC 3339 string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    raw = value.get("creation_time") if isinstance(value, dict) else None
    if isinstance(raw, str):
        try:
            return dt.datetime.fromisoformat(raw[:26].rstrip("Z") + "+00:00")
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class TransitKeyInfo:
    """What Transit says about one key (``GET keys/NAME``)."""

    name: str
    type: str
    latest_version: int
    min_decryption_version: int
    min_encryption_version: int
    min_available_version: int
    derived: bool = False
    exportable: bool = False
    allow_plaintext_backup: bool = False
    deletion_allowed: bool = False
    imported_key: bool = False
    #: version -> creation time, for the versions Transit still holds
    created: Mapping[int, dt.datetime | None] = field(default_factory=dict)

    @classmethod
    def decode(cls, name: str, data: Mapping[str, Any]) -> TransitKeyInfo:
        keys = data.get("keys")
        created = (
            {int(k): _created(v) for k, v in keys.items() if str(k).isdigit()}
            if isinstance(keys, dict)
            else {}
        )
        return cls(
            name=name,
            type=str(data.get("type") or ""),
            latest_version=_int(data.get("latest_version")),
            min_decryption_version=_int(data.get("min_decryption_version"), 1),
            min_encryption_version=_int(data.get("min_encryption_version")),
            min_available_version=_int(data.get("min_available_version")),
            derived=data.get("derived") is True,
            exportable=data.get("exportable") is True,
            allow_plaintext_backup=data.get("allow_plaintext_backup") is True,
            deletion_allowed=data.get("deletion_allowed") is True,
            imported_key=data.get("imported_key") is True,
            created=created,
        )

    def weakened(self) -> tuple[str, ...]:
        """The settings that put this key's material within reach outside Vault: exportable,
        plaintext backup allowed, deletion allowed (then restore from a backup), imported."""
        flags = {
            "exportable": self.exportable,
            "allow_plaintext_backup": self.allow_plaintext_backup,
            "deletion_allowed": self.deletion_allowed,
            "imported_key": self.imported_key,
        }
        return tuple(k for k, v in flags.items() if v)

    def check_sound(self) -> TransitKeyInfo:
        """``self``, or :class:`TransitKeyWeakenedError` naming the key and its weak settings."""
        weak = self.weakened()
        if weak:
            raise TransitKeyWeakenedError(
                f"Transit key {self.name} is weakened ({', '.join(weak)}): keylife refuses to "
                "use or schedule it; its material may be known outside Vault, so treat every "
                "version as compromised: create a new ring and move to it (docs/vault.md, "
                "'What keylife detects')",
                key=self.name,
                settings=weak,
            )
        return self

    def floors(self) -> dict[str, int]:
        """The four version numbers, as shown by ``keylife vault transit show``."""
        return {
            "latest_version": self.latest_version,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "min_available_version": self.min_available_version,
        }


def _data(body: Mapping[str, Any] | None) -> dict[str, Any]:
    data = (body or {}).get("data")
    return data if isinstance(data, dict) else {}


class Transit:
    """The Transit engine mounted at ``mount``, reached through ``client``."""

    def __init__(self, client: VaultClient, mount: str) -> None:
        self.client = client
        self.mount = mount.strip("/")

    def __repr__(self) -> str:
        return f"<Transit {self.mount}/>"

    def _post(self, path: str, body: Mapping[str, Any], what: str) -> dict[str, Any]:
        _s, resp, _ = self.client.request("POST", f"{self.mount}/{path}", json=body, what=what)
        return _data(resp)

    # ---- keys -------------------------------------------------------------------------------

    def key(self, name: str) -> TransitKeyInfo | None:
        """The key ``name``, or None when Transit has no such key."""
        status, body, _ = self.client.request(
            "GET", f"{self.mount}/keys/{q(name)}", what=f"read Transit key {name}"
        )
        if status == 404:
            return None
        data = _data(body)
        if not isinstance(data.get("latest_version"), int) or not isinstance(
            data.get("keys"), dict
        ):
            raise self.client.unexpected(f"read Transit key {name}", "no latest_version or keys")
        return TransitKeyInfo.decode(name, data)

    def create_key(self, name: str, key_type: str, *, derived: bool = False) -> None:
        """A non-exportable key without plaintext backup (and not deletable)."""
        body: dict[str, Any] = {
            "type": key_type,
            "exportable": False,
            "allow_plaintext_backup": False,
        }
        if derived:
            body["derived"] = True
        self._post(f"keys/{q(name)}", body, f"create Transit key {name}")

    def rotate(self, name: str) -> None:
        self._post(f"keys/{q(name)}/rotate", {}, f"rotate {name}")

    def set_floors(self, name: str, *, min_decryption: int, min_encryption: int) -> None:
        self._post(
            f"keys/{q(name)}/config",
            {"min_decryption_version": min_decryption, "min_encryption_version": min_encryption},
            f"raise the version floors of {name}",
        )

    def trim(self, name: str, min_available: int) -> None:
        self._post(
            f"keys/{q(name)}/trim",
            {"min_available_version": min_available},
            f"trim {name} below v{min_available}",
        )

    # ---- data -------------------------------------------------------------------------------

    def rewrap(self, name: str, version: int, ciphertexts: Sequence[str]) -> list[str]:
        """``ciphertexts`` rewrapped to ``version``, in order; one failed item fails all."""
        data = self._post(
            f"rewrap/{q(name)}",
            {"key_version": version, "batch_input": [{"ciphertext": c} for c in ciphertexts]},
            f"rewrap {len(ciphertexts)} ciphertexts with {name}",
        )
        results = data.get("batch_results")
        if not isinstance(results, list) or len(results) != len(ciphertexts):
            got = len(results) if isinstance(results, list) else 0
            raise StoreError(f"Transit rewrap of {name} returned {got} results")
        out: list[str] = []
        for i, res in enumerate(results):
            ct = res.get("ciphertext") if isinstance(res, dict) else None
            if not isinstance(ct, str) or not CIPHERTEXT.match(ct):
                err = res.get("error", "no ciphertext") if isinstance(res, dict) else "?"
                raise StoreError(f"Transit could not rewrap item {i + 1} with {name}: {err}")
            out.append(ct)
        return out

    def encrypt(self, key: str, plaintext: bytes, ctx: bytes, *, what: str) -> str:
        data = self._post(
            f"encrypt/{q(key)}", {"plaintext": b64(plaintext), "context": b64(ctx)}, what
        )
        ct = data.get("ciphertext")
        if not isinstance(ct, str):
            raise StoreError(f"Transit returned no ciphertext ({what})")
        return ct

    def decrypt(self, key: str, ciphertext: str, ctx: bytes, *, what: str) -> bytes:
        """The plaintext; a ciphertext that fails its check raises :class:`IntegrityError`."""
        try:
            data = self._post(
                f"decrypt/{q(key)}", {"ciphertext": ciphertext, "context": b64(ctx)}, what
            )
        except StoreError as exc:
            if "authentication failed" in str(exc) or "unable to decrypt" in str(exc):
                raise IntegrityError(
                    f"{what}: sealed material failed its integrity check; the blob was altered "
                    "or belongs elsewhere"
                ) from exc
            raise
        plain = data.get("plaintext")
        if not isinstance(plain, str):
            raise StoreError(f"Transit returned no plaintext ({what})")
        try:
            return base64.b64decode(plain, validate=True)
        except binascii.Error as exc:
            raise StoreError(f"Transit returned malformed plaintext ({what})") from exc
