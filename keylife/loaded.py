"""A key version with its material, ready to use: :class:`LoadedKey` and its cipher objects.

Usage follows the state: a ``LoadedKey`` that ``protects`` (the primary) gives objects that
protect and process; any other gives process-only objects (the public key, a decrypt-only
AEAD); a signing key's private half, an encrypting AEAD and MAC generation are refused.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import MaterialUnavailableError
from .lifecycle import KeyVersion
from .material import KeyMaterial
from .specs import KeyKind

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    from cryptography.hazmat.primitives.hmac import HMAC

    from .keygen import PrivateKey
    from .publickeys import AnyPublicKey

__all__ = ["DecryptOnly", "LoadedKey"]

#: Purposes whose *processing* needs the private key (unwrap with RSA-OAEP, key agreement).
_PRIVATE_PROCESSING = ("key-wrapping", "key-agreement")


class DecryptOnly:
    """The AEAD of a version that may only process: ``decrypt`` and nothing else."""

    __slots__ = ("_cipher",)

    def __init__(self, cipher: AESGCM | ChaCha20Poly1305) -> None:
        self._cipher = cipher

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        return self._cipher.decrypt(nonce, data, associated_data)

    def __repr__(self) -> str:
        return "<DecryptOnly AEAD>"


@dataclass(frozen=True)
class LoadedKey:
    """A key version with its material, ready to use. Its repr never shows the material.

    ``protects`` is true for the primary only: the version that may encrypt, sign, wrap and
    MAC now. Others may only process (decrypt, verify, unwrap, verify a MAC).
    """

    version: KeyVersion
    material: KeyMaterial = field(repr=False)
    protects: bool = False

    @property
    def number(self) -> int:
        return self.version.number

    def _refuse(self, what: str, instead: str) -> MaterialUnavailableError:
        v = self.version
        return MaterialUnavailableError(
            f"{v.ring} v{v.number} is not the primary: it may process but not {what}; {instead}"
        )

    @functools.cached_property
    def private_key(self) -> PrivateKey:
        """The parsed private key (cached); not subject to the usage check: internal use."""
        from .keygen import load_private_key

        return load_private_key(self.material)

    @property
    def key(self) -> PrivateKey:
        """The ``cryptography`` private key object (asymmetric specs). A version that only
        processes gives it only where processing needs it (unwrapping, key agreement)."""
        if self.version.spec.symmetric:
            raise TypeError(
                f"{self.version.spec.name} is a secret key; use aead() or hmac() instead of key"
            )
        if not self.protects and self.version.purpose not in _PRIVATE_PROCESSING:
            raise self._refuse("sign", "verify with .public_key() or ring.verify()")
        return self.private_key

    def public_key(self) -> AnyPublicKey:
        """The public half (asymmetric specs), for verifying."""
        if self.version.spec.symmetric:
            raise TypeError(f"{self.version.spec.name} is a secret key; it has no public half")
        return self.private_key.public_key()

    @functools.cached_property
    def cipher(self) -> AESGCM | ChaCha20Poly1305:
        """The AEAD object (cached); not subject to the usage check: internal use."""
        from .primitives import aead

        try:
            return aead(self.material)
        except TypeError:
            raise TypeError(f"{self.version.spec.name} is not an AEAD key") from None

    def aead(self) -> AESGCM | ChaCha20Poly1305 | DecryptOnly:
        """An AEAD cipher object for AES and ChaCha20 keys (decrypt-only unless primary)."""
        if self.version.spec.kind not in (KeyKind.AES, KeyKind.CHACHA20):
            raise TypeError(f"{self.version.spec.name} is not an AEAD key")
        return self.cipher if self.protects else DecryptOnly(self.cipher)

    def hmac(self) -> HMAC:
        """A fresh HMAC object for HMAC keys (the primary only: it generates MACs)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.hmac import HMAC

        spec = self.version.spec
        if spec.kind is not KeyKind.HMAC or spec.hash_name is None:
            raise TypeError(f"{spec.name} is not an HMAC key")
        if not self.protects:
            raise self._refuse("generate a MAC", "check tags with ring.verify_mac()")
        algorithm: dict[str, hashes.HashAlgorithm] = {
            "sha256": hashes.SHA256(),
            "sha384": hashes.SHA384(),
            "sha512": hashes.SHA512(),
        }
        return HMAC(self.material.reveal(), algorithm[spec.hash_name])
