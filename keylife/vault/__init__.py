"""keylife's Vault / OpenBao adapter; its modules follow Vault's URL space, one concept each.

- :mod:`~keylife.vault.client`: the connection (addresses, token, TLS, retries, failover);
- :mod:`~keylife.vault.url`: store URLs (``vaults://HOST:PORT/MOUNT?transit=...&key=...``);
- :mod:`~keylife.vault.kv`: KV v2 (read, read a version, check-and-set write, list, destroy,
  metadata), decoded into typed results;
- :mod:`~keylife.vault.transit`: Transit (keys, floors, trim, rewrap, encrypt, decrypt);
- :mod:`~keylife.vault.store`: :class:`VaultKeyStore`, the ring store and its commit protocol,
  built on :mod:`~keylife.vault.index` (ring index shards),
  :mod:`~keylife.vault.audit_log` (the audit chain) and :mod:`~keylife.vault.leases`;
- :mod:`~keylife.vault.transit_doc` and :mod:`~keylife.vault.transit_rings`: transit-resident
  rings under the lifecycle; :mod:`~keylife.vault.rewrap`: rewrapping ciphertext files;
- :mod:`~keylife.vault.policy` and :mod:`~keylife.vault.setup`: policies, ``keylife vault
  setup`` and :func:`open_store` (they import the store, never the reverse).
"""

from __future__ import annotations

from .setup import open_store
from .store import VaultKeyStore
from .transit_rings import TransitKeyView, TransitRings

__all__ = ["TransitKeyView", "TransitRings", "VaultKeyStore", "open_store"]
