"""A key version with its material, ready to use: :class:`LoadedKey` and its cipher objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .lifecycle import KeyVersion
from .material import KeyMaterial
from .specs import KeyKind

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    from cryptography.hazmat.primitives.hmac import HMAC

    from .keygen import PrivateKey

__all__ = ["LoadedKey"]


@dataclass(frozen=True)
class LoadedKey:
    """A key version with its material, ready to use. Its repr never shows the material."""

    version: KeyVersion
    material: KeyMaterial = field(repr=False)

    @property
    def number(self) -> int:
        return self.version.number

    @property
    def key(self) -> PrivateKey:
        """The ``cryptography`` private key object (asymmetric specs)."""
        from .keygen import load_private_key

        if self.version.spec.symmetric:
            raise TypeError(
                f"{self.version.spec.name} is a secret key; use aead() or hmac() instead of key"
            )
        return load_private_key(self.material)

    def aead(self) -> AESGCM | ChaCha20Poly1305:
        """An AEAD cipher object for AES and ChaCha20 keys."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

        kind = self.version.spec.kind
        if kind is KeyKind.AES:
            return AESGCM(self.material.reveal())
        if kind is KeyKind.CHACHA20:
            return ChaCha20Poly1305(self.material.reveal())
        raise TypeError(f"{self.version.spec.name} is not an AEAD key")

    def hmac(self) -> HMAC:
        """A fresh HMAC object for HMAC keys."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.hmac import HMAC

        spec = self.version.spec
        if spec.kind is not KeyKind.HMAC or spec.hash_name is None:
            raise TypeError(f"{spec.name} is not an HMAC key")
        algorithm: dict[str, hashes.HashAlgorithm] = {
            "sha256": hashes.SHA256(),
            "sha384": hashes.SHA384(),
            "sha512": hashes.SHA512(),
        }
        return HMAC(self.material.reveal(), algorithm[spec.hash_name])
