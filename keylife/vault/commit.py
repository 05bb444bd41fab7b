"""The single write of the Vault store (:meth:`VaultKeyStore.commit`), step by step.

Each step is retried until the client's deadline and is safe to repeat:

0. check the ring's high-water mark (the one this process vouches for with
   ``expected_revision``, :meth:`IndexShards.vouched`, else ``hw/<ring>``): a document that
   issued fewer versions than the mark was rolled back, and the commit is refused
   (:class:`IntegrityError`);
1. finish the previous write of this ring if it was cut short (erase its ``purge`` blobs,
   append its audit batch unless the log already has it);
2. encrypt each new material with Transit and write it at a new path (``cas=0``);
3. write the ring document with ``cas=expected_revision``: this is the commit point, taken only
   while this process still holds its rotation lease (:meth:`VaultLeases.fence`). A lost
   check-and-set raises :class:`ConflictError` (and removes the blobs of step 2). A write whose
   answer was lost (timeout, leader change) is resolved by reading back the ``tx`` id; then
   raise the high-water mark and put the new ``{rev, doc, t}`` into the index shard (at once,
   or with the other entries of its shard when the rotation lease is released: see
   :meth:`IndexShards.put_later`);
4. erase destroyed versions' material (all KV versions and metadata);
5. append the audit batch (its id is the ring document's ``tx`` id). Concurrent commits share
   one check-and-set on ``audit-head`` (:mod:`keylife.vault.batching`).

**Crash story.** A crash before step 3 leaves only unreferenced ciphertext. A crash after
step 3 and before step 5 (or while a group of batches waits for its head check-and-set)
leaves committed ring documents whose ``tx`` holds their audit entries: the next write of the
ring (step 1) or the next run taking the lease (:meth:`VaultKeyStore.recover`) appends every
``tx`` the log does not have, in one chain. A crash before an index entry is written leaves
an entry that is no longer the ring's current KV version, so readers read the ring document
and correct the entry. A crash before the high-water mark is raised leaves
it low, which only delays rollback detection to the ring's next commit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from ..audit import AuditEntry
from ..errors import ConflictError, StoreError
from ..lifecycle import Ring, ring_to_dict
from ..material import KeyMaterial
from . import index as ix
from .audit_log import VaultAuditLog, entry_from_dict, entry_to_dict
from .batching import TransitBatcher
from .client import q
from .highwater import HighWater, issued_by
from .kv import KV
from .leases import VaultLeases
from .storeid import StoreIdentity, bound_context

__all__ = ["Committer", "Parts"]

log = logging.getLogger("keylife.vault.store")


class Parts(Protocol):
    """What the committer uses of the store (:class:`~keylife.vault.store.VaultKeyStore`)."""

    kv: KV
    index: ix.IndexShards
    highwater: HighWater
    leases: VaultLeases
    audit: VaultAuditLog
    sealer: TransitBatcher
    identity: StoreIdentity

    def cached_doc(self, name: str) -> tuple[int, dict[str, Any]] | None: ...

    def remember(self, name: str, revision: int, doc: dict[str, Any]) -> None: ...

    def mark_has_rings(self) -> None: ...


class Committer:
    """Commits ring documents of one Vault store (thread-safe)."""

    def __init__(self, store: Parts) -> None:
        self.store = store

    def current_rev(self, name: str) -> int:
        meta = self.store.kv.metadata(f"rings/{q(name)}", what=f"read the metadata of ring {name}")
        return 0 if meta is None else meta.current_version

    def prev_doc(self, name: str, revision: int) -> dict[str, Any] | None:
        if revision == 0:
            return None
        cached = self.store.cached_doc(name)
        if cached is not None and cached[0] == revision:
            return cached[1]
        got = self.store.kv.read_version(f"rings/{q(name)}", revision, what=f"read ring {name}")
        if got is None:
            raise ConflictError(
                f"ring {name} changed underneath (revision {revision} is not current)"
            )
        return got.data

    def commit(
        self,
        ring: Ring,
        *,
        expected_revision: int,
        materials: Mapping[int, KeyMaterial] | None = None,
        destroy: Sequence[int] = (),
        audit: Sequence[AuditEntry] = (),
    ) -> Ring:
        store, name = self.store, ring.name
        prev = self.prev_doc(name, expected_revision)
        txid = secrets.token_hex(12)
        # 0. a document that went backwards never issues a version number again: the mark
        # this process vouches for (read with the ring from a verified index entry, or left
        # by its own last write), else hw/<name> itself
        mark = store.highwater.check(
            name,
            prev,
            expected_revision,
            lambda: self.current_rev(name),
            store.index.vouched(name, expected_revision),
        )
        # 1. finish the previous write of this ring if it was cut short
        if prev is not None:
            self.finish(name, prev)
        mat: dict[str, str] = dict((prev or {}).get("mat") or {})
        purge: dict[str, str] = {}
        # 2. new material, each at a fresh path, bound to the store id
        sid = store.identity.for_commit(prev, materials or {})
        written = self.write_materials(name, materials or {}, mat, purge, sid)
        for number in destroy:
            old = mat.pop(str(number), None)
            if old is not None:
                purge[str(number)] = old
        doc = {
            # one JSON string: OpenBao caps the strings in a request (max_request_json_strings)
            "ring": json.dumps(ring_to_dict(ring), separators=(",", ":")),
            "mat": mat,
            "purge": purge,
            "tx": {"id": txid, "entries": [entry_to_dict(e) for e in audit]},
            **({"sid": sid} if sid else {}),
        }
        # 3. the commit point, only while this process still holds its lease (if it took one)
        try:
            store.leases.fence(name)
        except StoreError:
            self.discard(name, written)
            raise
        try:
            revision, created = store.kv.write(
                f"rings/{q(name)}",
                doc,
                cas=expected_revision,
                what=f"write ring {name}",
                ours=lambda d: (d.get("tx") or {}).get("id") == txid,
            )
        except ConflictError:
            self.discard(name, written)
            raise ConflictError(
                f"ring {name} changed underneath (expected revision {expected_revision})"
            ) from None
        store.remember(name, revision, doc)
        if expected_revision == 0:
            store.mark_has_rings()
        raised = store.highwater.raise_to(name, issued_by(doc), mark)
        if raised is not None:
            store.index.vouch(name, revision, raised)
        # 3b. the index entry; until it is written the entry names an older KV version than
        # the ring listing, so readers read the ring document and repair the shard
        self.index_entry(name, revision, doc, created, raised)
        # 4. erase destroyed material, 5. audit
        self.finish(name, doc, own=True)
        return replace(ring, revision=revision)

    def index_entry(
        self,
        name: str,
        revision: int,
        doc: dict[str, Any],
        created: str,
        mark: tuple[int, int] | None,
    ) -> None:
        shards, shard_id = self.store.index, ix.shard_of(name)
        if self.store.leases.holding():  # a rotation run: the shard is written once at the end
            shards.put_later(shard_id, name, revision, doc, created, mark)
            return
        try:
            shards.update(shard_id, lambda s: ix.put_entry(s, name, revision, doc, created, mark))
        except ConflictError as exc:
            log.warning("index shard %s not updated for %s: %s", shard_id, name, exc)

    def discard(self, name: str, written: Sequence[str]) -> None:
        for path in written:
            with contextlib.suppress(StoreError):  # unreferenced ciphertext: harmless
                self.store.kv.destroy(path, what=f"remove unused material of {name}")

    def write_materials(
        self,
        name: str,
        materials: Mapping[int, KeyMaterial],
        mat: dict[str, str],
        purge: dict[str, str],
        store_id: str | None,
    ) -> list[str]:
        """Seal and write each material at a fresh path (bound to ``store_id`` when given);
        update ``mat``/``purge``."""
        written: list[str] = []
        for number, material in sorted(materials.items()):
            blob_id = secrets.token_hex(8)
            ct = self.store.sealer.encrypt(
                material.reveal(),
                bound_context(name, number, store_id),
                what=f"seal material {name} v{number} with Transit",
            )
            path = f"m/{q(name)}/{number}/{blob_id}"
            self.store.kv.cas_write(
                path,
                {"ct": ct},
                cas=0,
                what=f"write material {name} v{number}",
                ours=lambda d, ct=ct: d.get("ct") == ct,  # type: ignore[misc]
            )
            written.append(path)
            old = mat.get(str(number))
            if old is not None:
                purge[str(number)] = old
            mat[str(number)] = blob_id
        return written

    def finish(self, name: str, doc: Mapping[str, Any], *, own: bool = False) -> None:
        """Steps 4 and 5 for ``doc``; ``own``: this object just committed it (no need to look
        whether another process already appended its audit batch)."""
        self.purge(name, doc)
        tx = doc.get("tx") or {}
        if tx.get("entries"):
            entries = [entry_from_dict(e) for e in tx["entries"]]
            self.store.audit.append_batch(str(tx["id"]), entries, check_existing=not own)

    def purge(self, name: str, doc: Mapping[str, Any]) -> None:
        for number, blob_id in sorted((doc.get("purge") or {}).items()):
            self.store.kv.destroy(
                f"m/{q(name)}/{int(number)}/{blob_id}", what=f"erase {name} v{number}"
            )
