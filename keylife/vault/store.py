"""The Vault / OpenBao store: rings in KV v2 with check-and-set, material sealed by Transit.

Layout under the KV v2 mount ``M`` (``cas_required`` is set on it by setup)::

    M/rings/<ring>                 ring document; its KV version *is* the ring's revision
    M/m/<ring>/<version>/<id>      {"ct": "vault:v1:..."}: material encrypted by the Transit
                                   key (derived; context = keylife:v1:<ring>:<version>)
    M/audit-head, M/audit/<txid>   the hash-chained audit log (:mod:`keylife.vault.audit_log`)
    M/leases/<name>                {"holder", "expires"}         (:mod:`keylife.vault.leases`)
    M/ix/<hh>                      index shard: ring documents of 1/256 of the rings (CAS);
                                   see :mod:`keylife.vault.index`
    M/tk/<ring>                    a transit-resident ring (:mod:`keylife.vault.transit_rings`)
    M/marker                       {"v": 1, "rings": true} once a ring was written
    M/hw/<ring>                    {"v": 1, "issued": N}: the ring's high-water mark
                                   (:mod:`keylife.vault.highwater`)
    M/store-id                     {"id", "bound"}: blobs bind it (:mod:`keylife.vault.storeid`)

The ring document is ``{"ring": <ring_to_dict(...) as one JSON string>, "mat": {version: id},
"purge": {...}, "tx": {"id", "entries"}}``. ``mat`` names the material blob that belongs to each
committed version: each write attempt uses a fresh ``id``, so two writers racing for the same
new version can never overwrite each other's material, and the loser's blob is never referenced.

:meth:`VaultKeyStore.commit` is the single write, in this order, each step retried until the
deadline and each safe to repeat:

0. check the ring's high-water mark: a document that issued fewer versions than the mark was
   rolled back, and the commit is refused (:class:`IntegrityError`);
1. finish the previous write of this ring if it was cut short (erase its ``purge`` blobs,
   append its audit batch unless the log already has it);
2. add a pending token ``{tx, base=expected_revision}`` to the ring's index shard (CAS);
   encrypt each new material with Transit and write it at a new path (``cas=0``);
3. write the ring document with ``cas=expected_revision``: this is the commit point. A lost
   check-and-set raises :class:`ConflictError` (and removes the blobs of step 2). A write whose
   answer was lost (timeout, leader change) is resolved by reading back the ``tx`` id;
   then raise the high-water mark and put the new ``{rev, doc}`` into the index shard (CAS,
   retried on conflict);
4. erase destroyed versions' material (all KV versions and metadata);
5. append the audit batch: check-and-set on ``audit-head`` (retried on conflict), then the
   batch document. The batch id is the ring document's ``tx`` id, so step 1 of a later write
   can tell whether it was appended. Last, publish the public halves (:mod:`.public`).

A crash after step 3 leaves a committed ring whose ``purge`` and ``tx`` the next write of the
ring completes; a crash before it leaves only unreferenced ciphertext.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from ..audit import AuditEntry, AuditRecord
from ..clock import Clock
from ..errors import ConflictError, NotFoundError, StoreError, VaultPermissionError
from ..lifecycle import Ring, decode_ring, ring_from_stored, ring_to_dict
from ..material import KeyMaterial
from ..policy import Policy
from ..specs import KeySpec
from ..store.base import Lease
from . import catalog, counts, deletion, public
from . import index as ix
from .audit_log import VaultAuditLog, entry_from_dict, entry_to_dict
from .client import VaultClient, q
from .highwater import HighWater, issued_by
from .kv import KV
from .leases import VaultLeases
from .storeid import StoreIdentity, reseal, write_materials
from .transit import Transit
from .transit_rings import TransitRings
from .url import DEFAULT_KEY, DEFAULT_MOUNT, DEFAULT_TRANSIT, StoreLocation, canonical_url

__all__ = ["DEFAULT_KEY", "DEFAULT_MOUNT", "DEFAULT_TRANSIT", "VaultKeyStore"]

_WORKERS = 8

log = logging.getLogger("keylife.vault.store")


def _ring(name: str, doc: Mapping[str, Any], revision: int) -> Ring:
    """The ring in the KV document, or :class:`CorruptRecordError` naming it."""
    return ring_from_stored(doc.get("ring") if isinstance(doc, Mapping) else None, revision, name)


def _ring_or_damaged(name: str, doc: Mapping[str, Any], revision: int) -> Ring:
    """As :func:`_ring`, but a malformed document gives a damaged ring (one ring fails, named)."""
    return decode_ring(doc.get("ring") if isinstance(doc, Mapping) else None, revision, name)


class VaultKeyStore(deletion.RingDeletion, public.PublicHalves, counts.VaultCounts):
    """:class:`~keylife.store.base.KeyStore` on Vault / OpenBao (KV v2 + Transit).

    Its parts are public: :attr:`kv` (the KV v2 mount), :attr:`transit` (the Transit mount),
    :attr:`index` (the ring index shards), :attr:`audit` (the audit chain), :attr:`leases`.
    """

    def __init__(
        self,
        client: VaultClient,
        *,
        mount: str = DEFAULT_MOUNT,
        transit_mount: str = DEFAULT_TRANSIT,
        key_name: str = DEFAULT_KEY,
        url: str | None = None,
    ) -> None:
        self.client = client
        self.mount = mount.strip("/")
        self.transit_mount = transit_mount.strip("/")
        self.key_name = key_name
        self.url = url or canonical_url(client.settings, self.mount, self.transit_mount, key_name)
        self.kv = KV(client, self.mount)
        self.transit = Transit(client, self.transit_mount)
        self.index = ix.IndexShards(self.kv)
        self.audit = VaultAuditLog(self.kv, self.map)
        self.leases = VaultLeases(self.kv)
        self.highwater = HighWater(self.kv)
        self.identity = StoreIdentity(self.kv)  # blobs bind its id (:mod:`.storeid`)
        self._lock = threading.Lock()
        #: ring name -> (revision, raw KV data) as last seen by this store object
        self._docs: dict[str, tuple[int, dict[str, Any]]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._marked = False

    # ---- opening ----------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str) -> VaultKeyStore:
        """Open a ``vault://`` (HTTP), ``vaults://`` (HTTPS) or ``http(s)://`` store URL (see
        :func:`keylife.vault.url.parse_store_url`). To set Vault up as well, use
        :func:`keylife.vault.setup.open_store` with ``create=True``."""
        loc = StoreLocation.parse(url)
        return cls(
            VaultClient(loc.settings),
            mount=loc.mount,
            transit_mount=loc.transit_mount,
            key_name=loc.key_name,
        )

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self.client.close()

    def __enter__(self) -> VaultKeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<VaultKeyStore {self.url}>"

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """``[fn(i) for i in items]``, on the store's thread pool when there are several."""
        items = list(items)
        if len(items) <= 2:
            return [fn(i) for i in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="keylife-vault")
            pool = self._pool
        return list(pool.map(fn, items))

    # ---- rings ------------------------------------------------------------------------------

    def list_ring_names(self) -> list[str]:
        """The ring names; none where the store's marker says rings were written is an error
        (an emptied mount, or something answering in Vault's place), not an empty store."""
        return sorted(catalog.ring_listing(self.kv))

    def mark_has_rings(self) -> None:
        """Record in the store marker that rings exist (once per store object)."""
        if not self._marked:
            catalog.mark_has_rings(self.kv)
            self._marked = True

    def _load_doc(self, name: str) -> tuple[int, dict[str, Any], str] | None:
        got = self.kv.read(f"rings/{q(name)}", what=f"read ring {name}")
        if got is None:
            return None
        with self._lock:
            self._docs[name] = (got.version, got.data)
        return got.version, got.data, got.created

    def load_ring(self, name: str) -> Ring | None:
        got = self._load_doc(name)
        return None if got is None else _ring(name, got[1], got[0])

    def load_rings(self) -> list[Ring]:
        """Every ring, no older than its state when the call began: from the index shards
        (one read per shard) where an entry is the ring's current KV version and decodes, and
        from ``rings/<name>`` for each other ring, whose entry is then corrected
        (:mod:`keylife.vault.catalog`)."""
        listing = catalog.ring_listing(self.kv)
        if not listing:
            return []
        docs = catalog.load_docs(
            self.kv, self.index, listing, self._load_doc, self.map, self.highwater
        )
        with self._lock:
            self._docs.update({n: (rev, doc) for n, (rev, doc, _r) in docs.items()})
        return [
            ring if ring is not None else _ring_or_damaged(name, doc, rev)
            for name, (rev, doc, ring) in sorted(docs.items())
        ]

    def reindex(self) -> dict[str, int]:
        """Rebuild the index shards from the ring documents (``keylife vault reindex``)."""
        return catalog.reindex(self.kv, self.index, self.map)

    def _current_rev(self, name: str) -> int:
        meta = self.kv.metadata(f"rings/{q(name)}", what=f"read the metadata of ring {name}")
        return 0 if meta is None else meta.current_version

    def _prev_doc(self, name: str, revision: int) -> dict[str, Any] | None:
        if revision == 0:
            return None
        with self._lock:
            cached = self._docs.get(name)
        if cached is not None and cached[0] == revision:
            return cached[1]
        got = self.kv.read_version(f"rings/{q(name)}", revision, what=f"read ring {name}")
        if got is None:
            raise ConflictError(
                f"ring {name} changed underneath (revision {revision} is not current)"
            )
        return got.data

    # ---- the single write ---------------------------------------------------------------------

    def commit(
        self,
        ring: Ring,
        *,
        expected_revision: int,
        materials: Mapping[int, KeyMaterial] | None = None,
        destroy: Sequence[int] = (),
        audit: Sequence[AuditEntry] = (),
    ) -> Ring:
        name = ring.name
        prev = self._prev_doc(name, expected_revision)
        # 0. a document that went backwards never issues a version number again
        mark = self.highwater.check(name, prev, expected_revision, lambda: self._current_rev(name))
        # 1. finish the previous write of this ring if it was cut short
        if prev is not None:
            self._finish(name, prev)
        mat: dict[str, str] = dict((prev or {}).get("mat") or {})
        purge: dict[str, str] = {}
        txid = secrets.token_hex(12)
        shard_id = ix.shard_of(name)
        # 2a. announce the write in the index before the commit point: until the entry of
        # this revision is in the shard, readers read rings/<name> itself
        self.index.update(shard_id, lambda s: ix.add_token(s, name, txid, expected_revision))
        # 2. new material, each at a fresh path, bound to the store id
        sid = self.identity.for_commit(prev, materials or {})
        args = (self.kv, self.transit, self.key_name, name, materials or {}, mat, purge, sid)
        written = write_materials(*args)
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
            self.leases.fence(name)
        except StoreError:
            self._discard(name, written)
            raise
        try:
            revision, created = self.kv.write(
                f"rings/{q(name)}",
                doc,
                cas=expected_revision,
                what=f"write ring {name}",
                ours=lambda d: (d.get("tx") or {}).get("id") == txid,
            )
        except ConflictError:
            self._discard(name, written)
            raise ConflictError(
                f"ring {name} changed underneath (expected revision {expected_revision})"
            ) from None
        with self._lock:
            self._docs[name] = (revision, doc)
        if expected_revision == 0:
            self.mark_has_rings()
        self.highwater.raise_to(name, issued_by(doc), mark)
        # 3b. the index entry; if it cannot be written the pending token keeps readers on
        # the ring document, and the next commit or load_rings() repairs the shard
        try:
            self.index.update(shard_id, lambda s: ix.put_entry(s, name, revision, doc, created))
        except ConflictError as exc:
            log.warning("index shard %s not updated for %s: %s", shard_id, name, exc)
        # 4. erase destroyed material, 5. audit
        self._finish(name, doc, own=True)
        return self.publish_public(replace(ring, revision=revision), materials or {})

    def _discard(self, name: str, written: Sequence[str]) -> None:
        for path in written:
            with contextlib.suppress(StoreError):  # unreferenced ciphertext: harmless
                self.kv.destroy(path, what=f"remove unused material of {name}")

    def _finish(self, name: str, doc: Mapping[str, Any], *, own: bool = False) -> None:
        """Steps 4 and 5 for ``doc``; ``own``: this object just committed it (no need to look
        whether another process already appended its audit batch)."""
        self._purge(name, doc)
        tx = doc.get("tx") or {}
        if tx.get("entries"):
            entries = [entry_from_dict(e) for e in tx["entries"]]
            self.audit.append_batch(str(tx["id"]), entries, check_existing=not own)

    def _purge(self, name: str, doc: Mapping[str, Any]) -> None:
        for number, blob_id in sorted((doc.get("purge") or {}).items()):
            self.kv.destroy(f"m/{q(name)}/{int(number)}/{blob_id}", what=f"erase {name} v{number}")

    # ---- material ---------------------------------------------------------------------------

    def _blob_id(self, ring: str, version: int, *, fresh: bool = False) -> str | None:
        with self._lock:
            cached = None if fresh else self._docs.get(ring)
        doc = cached[1] if cached is not None else (self._load_doc(ring) or (0, {}))[1]
        blob = (doc.get("mat") or {}).get(str(version))
        return None if blob is None else str(blob)

    def _read_plain(self, ring: str, version: int) -> bytes:
        missing = f"no material for {ring} v{version} (destroyed or never stored)"
        blob_id = self._blob_id(ring, version)
        if blob_id is None:
            raise NotFoundError(missing)
        got = self.kv.read(f"m/{q(ring)}/{version}/{blob_id}", what=f"read {ring} v{version}")
        if got is None:
            # the cached document (e.g. from an index shard) may be older than the ring
            fresh_id = self._blob_id(ring, version, fresh=True)
            if fresh_id is None or fresh_id == blob_id:
                raise NotFoundError(missing)
            got = self.kv.read(f"m/{q(ring)}/{version}/{fresh_id}", what=f"read {ring} v{version}")
            if got is None:
                raise NotFoundError(missing)
        return self.transit.decrypt(
            self.key_name,
            str(got.data.get("ct", "")),
            self.identity.context(ring, version, self._docs.get(ring, (0, {}))[1]),
            what=f"unseal material {ring} v{version} with Transit",
        )

    def get_material(self, ring: str, version: int, spec: KeySpec) -> KeyMaterial:
        return KeyMaterial(self._read_plain(ring, version), spec)

    def has_material(self, ring: str, version: int) -> bool:
        got = self._load_doc(ring)
        return got is not None and str(version) in (got[1].get("mat") or {})

    def material_items(self) -> list[tuple[str, int, bytes]]:
        """Every (ring, version, plaintext) — for backup and migration only."""
        pairs: list[tuple[str, int]] = []
        for name in self.list_ring_names():
            got = self._load_doc(name)
            if got is not None:
                pairs += [(name, int(v)) for v in (got[1].get("mat") or {})]
        plains = self.map(lambda p: self._read_plain(p[0], p[1]), pairs)
        return [(r, v, p) for (r, v), p in zip(pairs, plains, strict=True)]

    def reseal(self, now: Callable[[], dt.datetime]) -> tuple[str, int]:
        """Bind every blob to the store id (``keylife store rekey``; :func:`.storeid.reseal`)."""
        return reseal(self, now)

    # ---- audit ------------------------------------------------------------------------------

    def authenticated_identity(self) -> str:
        """The token's identity as Vault reports it (see :meth:`VaultClient.identity`)."""
        return self.client.identity()

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        self.audit.append(entries)

    def read_audit(self) -> list[AuditRecord]:
        return self.audit.read()

    def audit_head(self) -> tuple[int, str]:
        return self.audit.head()

    # ---- transit-resident rings ----------------------------------------------------------------

    def transit_rings(
        self, *, actor: str, clock: Clock, policy: Policy | None = None
    ) -> TransitRings:
        """The transit-resident rings of this store, as lifecycle rings (``keylife rotate``
        plans them with the ordinary planner). ``policy`` gives the cryptoperiod of their
        ``data-encryption`` purpose (default: keylife's default policy)."""
        return TransitRings(
            self.kv,
            self.transit,
            self,
            actor=actor,
            clock=clock,
            policy=policy,
            fence=self.leases.fence,
        )

    # ---- leases -----------------------------------------------------------------------------

    def acquire_lease(
        self,
        name: str,
        holder: str,
        ttl: dt.timedelta,
        now: dt.datetime,
        *,
        takeover_from: str | None = None,
    ) -> Lease | None:
        """Take (or renew) the lease unless another live holder has it unexpired; taking it
        (not renewing it) first finishes writes that were cut short (:meth:`recover`)."""
        got = self.leases.acquire(name, holder, ttl, now, takeover_from=takeover_from)
        if got is None:
            return None
        lease, held_before = got
        if not held_before:
            self._check_wrapping_key()
            self.recover()
        return lease

    def _check_wrapping_key(self) -> None:
        """The wrapping key must never be exportable, backed up, deletable or imported."""
        try:
            key = self.transit.key(self.key_name)
        except VaultPermissionError:  # an operator policy written before this check
            log.warning(
                "cannot read Transit key %s to check its settings; rewrite the operator "
                "policy (keylife vault setup)",
                self.key_name,
            )
            return
        if key is not None:
            key.check_sound()

    def read_lease(self, name: str) -> Lease | None:
        return self.leases.read(name)

    def release_lease(self, name: str, holder: str) -> None:
        self.leases.release(name, holder)

    def recover(self) -> int:
        """Finish writes that a crash or an outage cut short after their commit point.

        For every ring document: erase material listed in ``purge``, and append its audit
        batch if the log does not have it. Runs when a lease is taken (a rotation run starts
        under it). Returns the number of audit batches appended.
        """
        with self._lock:
            docs = dict(self._docs)
        if not docs:
            self.load_rings()
            with self._lock:
                docs = dict(self._docs)
        known = self.audit.known_batches()
        appended = 0
        for name, (_rev, doc) in sorted(docs.items()):
            self._purge(name, doc)
            tx = doc.get("tx") or {}
            if tx.get("entries") and str(tx.get("id")) not in known:
                entries = [entry_from_dict(e) for e in tx["entries"]]
                self.audit.append_batch(str(tx["id"]), entries)
                appended += 1
        return appended
