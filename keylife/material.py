"""Key material: the one type that holds secret bytes.

:class:`KeyMaterial` never shows its bytes in ``repr``/``str``, refuses pickling and copying
into formats by accident; the bytes are reachable only through :meth:`KeyMaterial.reveal`.
Private keys are held as PKCS#8 DER, secret keys as raw bytes.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, NoReturn

from .specs import KeySpec


class KeyMaterial:
    """Secret key bytes with a redacted representation."""

    __slots__ = ("_data", "_fingerprint", "spec")

    def __init__(self, data: bytes, spec: KeySpec) -> None:
        self._data = bytes(data)
        self.spec = spec
        # Public fingerprint, filled in by keygen when it still has the key object at hand.
        self._fingerprint: str | None = None

    def reveal(self) -> bytes:
        """The raw secret bytes (PKCS#8 DER for private keys). Handle with care."""
        return self._data

    def __repr__(self) -> str:
        return f"<KeyMaterial {self.spec.name} [redacted]>"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyMaterial):
            return NotImplemented
        return hmac.compare_digest(self._data, other._data) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash((self.spec, hashlib.sha256(self._data).digest()))

    def __len__(self) -> int:
        return len(self._data)

    def __reduce__(self) -> NoReturn:
        raise TypeError("KeyMaterial cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("KeyMaterial cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("KeyMaterial cannot be pickled")
