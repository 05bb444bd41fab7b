"""Storage backends. :class:`~keylife.store.base.KeyStore` is the contract."""

from .base import KeyStore, Lease

__all__ = ["KeyStore", "Lease"]
