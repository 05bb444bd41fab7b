"""Compatibility shim (one release): the Vault store moved to :mod:`keylife.vault`.

Use ``from keylife.vault import VaultKeyStore`` (and :func:`keylife.vault.open_store` for
``create=True``).
"""

from __future__ import annotations

from ..vault.store import VaultKeyStore

__all__ = ["VaultKeyStore"]
