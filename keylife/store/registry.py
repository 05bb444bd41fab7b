"""Opening a store from a URL that is not an embedded SQLite path."""

from __future__ import annotations

from ..errors import StoreUnavailableError
from .base import KeyStore


def open_remote(url: str, *, create: bool = False) -> KeyStore:
    """Open ``vault://`` / ``vaults://`` (HashiCorp Vault or OpenBao) stores."""
    if url.startswith(("vault://", "vaults://", "http://", "https://")):
        from ..vault.setup import open_store

        return open_store(url, create=create)
    raise StoreUnavailableError(
        f"unsupported store {url!r}; use a file path, sqlite:///PATH or vault://HOST:PORT/MOUNT"
    )
