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

:meth:`VaultKeyStore.commit` is the single write (:mod:`keylife.vault.commit` has its steps and
what a crash at each leaves): material first, at fresh paths and bound to the store id
(:mod:`.storeid`), then the ring document with check-and-set (the commit point), then the index
entry, the high-water mark and the audit batch; last, the public halves (:mod:`.public`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..audit import AuditEntry, AuditRecord
from ..clock import Clock
from ..errors import NotFoundError, StoreError, VaultPermissionError
from ..lifecycle import Ring, decode_ring, ring_from_stored
from ..material import KeyMaterial
from ..policy import Policy
from ..specs import KeySpec
from ..store.base import Lease, deleted_names
from . import catalog, counts, deletion, public
from . import index as ix
from .audit_log import VaultAuditLog, entry_from_dict
from .batching import TransitBatcher
from .client import VaultClient, q
from .commit import Committer
from .highwater import HighWater
from .kv import KV
from .leases import VaultLeases
from .storeid import StoreIdentity, reseal
from .transit import Transit
from .transit_rings import TransitRings
from .url import DEFAULT_KEY, DEFAULT_MOUNT, DEFAULT_TRANSIT, StoreLocation, canonical_url

__all__ = ["DEFAULT_KEY", "DEFAULT_MOUNT", "DEFAULT_TRANSIT", "VaultKeyStore"]

_WORKERS = 8
#: threads a rotation run uses on this store unless told otherwise (``--concurrency``)
ROTATE_CONCURRENCY = 16

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

    rotate_concurrency = ROTATE_CONCURRENCY

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
        self.sealer = TransitBatcher(self.transit, key_name)
        self.committer = Committer(self)
        self.published = public.PublishedVersions()
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
        with contextlib.suppress(StoreError):  # index entries are hints; readers correct them
            self.index.flush_later(self.map)
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
        begun = time.monotonic()  # a listing of published versions before this may be used
        committed = self.committer.commit(
            ring,
            expected_revision=expected_revision,
            materials=materials,
            destroy=destroy,
            audit=audit,
        )
        return self.publish_public(committed, materials or {}, begun=begun)

    def rings_seen(self) -> int:
        """How many rings this object has read or written."""
        with self._lock:
            return len(self._docs)

    def cached_doc(self, name: str) -> tuple[int, dict[str, Any]] | None:
        """``(revision, document)`` of ring ``name`` as this object last read or wrote it."""
        with self._lock:
            return self._docs.get(name)

    def remember(self, name: str, revision: int, doc: dict[str, Any]) -> None:
        with self._lock:
            self._docs[name] = (revision, doc)

    def cached_ring(self, name: str) -> Ring | None:
        """Ring ``name`` as this object last read or committed it (no request); None when
        it has not seen the ring. The runner plans a ring's next step from its own commit."""
        got = self.cached_doc(name)
        return None if got is None else _ring_or_damaged(name, got[1], got[0])

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
        return self.sealer.decrypt(
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
        for name in sorted(deleted_names(entries)):  # a replayed log (restore, migrate)
            self.highwater.mark_deleted(name, 0)  # keeps refusing the deleted ring's name

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
        try:
            self.index.flush_later(self.map)  # the run's index entries, one write per shard
        finally:
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
            self.committer.purge(name, doc)
            tx = doc.get("tx") or {}
            if tx.get("entries") and str(tx.get("id")) not in known:
                entries = [entry_from_dict(e) for e in tx["entries"]]
                self.audit.append_batch(str(tx["id"]), entries)
                appended += 1
        return appended
