"""Deleting a ring from the Vault store: :class:`RingDeletion`, the part of
:class:`~keylife.vault.store.VaultKeyStore` that gives it ``delete_ring``.

Vault has no transaction over several paths, so a deletion is a short sequence whose first
step is a check-and-set commit, each step safe to repeat:

1. the ring document is written once more, unchanged, with the ``delete`` audit record
   (:meth:`VaultKeyStore.commit`, ``cas=expected_revision``): the commit point. A writer that
   changed the ring meanwhile makes it a :class:`ConflictError`; the record reaches the audit
   chain through the commit's own path (a crash after it is finished like any commit);
2. the ring's high-water mark ``M/hw/<ring>`` is marked deleted and kept: the name is never
   created again and its version numbers never issued again (:mod:`keylife.vault.highwater`);
3. the current version of ``M/rings/<ring>`` is soft-deleted with a KV v2 *data-path* DELETE,
   never a metadata delete: the ring's KV history stays (the operator policy allows exactly
   this, not deleting metadata). The listing then leaves the ring out;
4. the ring's entry in its index shard is dropped.

A deletion cut short after step 1 leaves the ring in place with a ``delete`` record as its
newest: ``keylife audit verify`` names it and ``keylife key delete RING`` run again finishes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..audit import AuditEntry
from ..errors import ConflictError, NotFoundError, RingNotEmptyError, StoreError
from ..lifecycle import Ring, ring_from_stored
from . import index as ix
from .client import q
from .highwater import HighWater, issued_by
from .kv import KV
from .leases import VaultLeases

if TYPE_CHECKING:
    from ..material import KeyMaterial

__all__ = ["RingDeletion", "drop_entry"]


def drop_entry(shard: dict[str, Any], name: str) -> bool:
    """Remove ``name``'s entry and pending tokens from an index shard."""
    had = name in shard["rings"] or name in shard["pending"]
    shard["rings"].pop(name, None)
    shard["pending"].pop(name, None)
    return had


class RingDeletion:
    """``delete_ring`` for the Vault store (a base class of ``VaultKeyStore``, which sets the
    attributes declared here)."""

    mount: str
    kv: KV
    index: ix.IndexShards
    leases: VaultLeases
    highwater: HighWater

    if TYPE_CHECKING:

        def commit(
            self,
            ring: Ring,
            *,
            expected_revision: int,
            materials: Mapping[int, KeyMaterial] | None = None,
            destroy: Sequence[int] = (),
            audit: Sequence[AuditEntry] = (),
        ) -> Ring: ...

    def delete_ring(
        self, name: str, *, expected_revision: int, audit: Sequence[AuditEntry] = ()
    ) -> None:
        """Delete ring ``name`` at revision ``expected_revision`` (steps 1-4 above)."""
        path = f"rings/{q(name)}"
        got = self.kv.read(path, what=f"read ring {name}")
        if got is None:
            raise NotFoundError(f"no ring named {name!r}")
        if got.version != expected_revision:
            raise ConflictError(
                f"ring {name} changed underneath (revision {got.version}, expected "
                f"{expected_revision})"
            )
        held = got.data.get("mat") or {}
        if held:
            numbers = tuple(sorted(int(n) for n in held))
            raise RingNotEmptyError(
                f"ring {name} cannot be deleted: the store still holds material of "
                f"{', '.join(f'v{n}' for n in numbers)}; destroy it first (`keylife key destroy "
                f"{name} N`)",
                ring=name,
                versions=numbers,
            )
        ring = ring_from_stored(got.data.get("ring"), got.version, name)
        saved = self.commit(ring, expected_revision=expected_revision, audit=audit)  # 1.
        self.highwater.mark_deleted(name, issued_by(got.data))  # 2.
        self.leases.fence(name)
        self.kv.delete(path, what=f"delete ring {name}")  # 3.
        meta = self.kv.metadata(path, what=f"read the metadata of ring {name}")
        if meta is not None and meta.current_version != saved.revision:
            raise StoreError(
                f"ring {name} was written again while it was being deleted: its newest "
                f"version (KV version {meta.current_version}) was soft-deleted instead of "
                f"{saved.revision}; undelete it (`bao kv undelete -versions="
                f"{meta.current_version} {self.mount}/{path}`) and check the ring"
            )
        self.index.update(ix.shard_of(name), lambda shard: drop_entry(shard, name))  # 4.
