"""The Vault / OpenBao store: rings in KV v2 with check-and-set, material sealed by Transit.

Layout under the KV v2 mount ``M`` (``cas_required`` is set on it by setup)::

    M/rings/<ring>                 ring document; its KV version *is* the ring's revision
    M/m/<ring>/<version>/<id>      {"ct": "vault:v1:..."}: material encrypted by the Transit
                                   key (derived; context = keylife:v1:<ring>:<version>)
    M/audit-head                   {"count", "hash", "last": the last batch}   (CAS)
    M/audit/<txid>                 one batch of hash-chained audit records
    M/leases/<name>                {"holder", "expires"}                        (CAS)
    M/ix/<hh>                      index shard: ring documents of 1/256 of the rings (CAS);
                                   see :mod:`keylife.store.vault_index`

The ring document is ``{"ring": ring_to_dict(...), "mat": {version: id}, "purge": {...},
"tx": {"id", "entries"}}``. ``mat`` names the material blob that belongs to each committed
version: each write attempt uses a fresh ``id``, so two writers racing for the same new version
can never overwrite each other's material, and the loser's blob is never referenced.

:meth:`VaultKeyStore.commit` is the single write, in this order, each step retried until the
deadline and each safe to repeat:

1. finish the previous write of this ring if it was cut short (erase its ``purge`` blobs,
   append its audit batch unless the log already has it);
2. add a pending token ``{tx, base=expected_revision}`` to the ring's index shard (CAS);
   encrypt each new material with Transit and write it at a new path (``cas=0``);
3. write the ring document with ``cas=expected_revision``: this is the commit point. A lost
   check-and-set raises :class:`ConflictError` (and removes the blobs of step 2). A write whose
   answer was lost (timeout, leader change) is resolved by reading back the ``tx`` id;
   then put the new ``{rev, doc}`` into the index shard (CAS, retried on conflict);
4. erase destroyed versions' material (all KV versions and metadata);
5. append the audit batch: check-and-set on ``audit-head`` (retried on conflict), then the
   batch document. The batch id is the ring document's ``tx`` id, so step 1 of a later write
   can tell whether it was appended.

A crash after step 3 leaves a committed ring whose ``purge`` and ``tx`` the next write of the
ring completes; a crash before it leaves only unreferenced ciphertext.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..audit import GENESIS, AuditEntry, AuditRecord, chain
from ..errors import (
    ConflictError,
    IntegrityError,
    NotFoundError,
    StoreError,
)
from ..lifecycle import Ring, ring_from_dict, ring_to_dict
from ..material import KeyMaterial
from ..specs import KeySpec
from . import vault_index as ix
from .base import Lease

if TYPE_CHECKING:
    from .transit_keys import TransitKeys
from .vault_client import CasMismatch, VaultClient, VaultSettings, b64, q

DEFAULT_MOUNT = "keylife"
DEFAULT_TRANSIT = "transit"
DEFAULT_KEY = "keylife"
_AUDIT_RETRIES = 64
_WORKERS = 8
_SHARD_RETRIES = 32

log = logging.getLogger("keylife.store.vault")


def _entry_to_dict(e: AuditEntry) -> dict[str, Any]:
    return {
        "at": e.at.isoformat(),
        "actor": e.actor,
        "action": e.action,
        "ring": e.ring,
        "version": e.version,
        "outcome": e.outcome,
        "reason": e.reason,
    }


def _entry_from_dict(d: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        dt.datetime.fromisoformat(d["at"]),
        d["actor"],
        d["action"],
        d.get("ring"),
        d.get("version"),
        d.get("outcome", "success"),
        d.get("reason", ""),
    )


class VaultKeyStore:
    """:class:`~keylife.store.base.KeyStore` on Vault / OpenBao (KV v2 + Transit)."""

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
        self.url = url or self._canonical_url()
        self._lock = threading.Lock()
        #: ring name -> (revision, raw KV data) as last seen by this store object
        self._docs: dict[str, tuple[int, dict[str, Any]]] = {}
        #: audit batch ids known to be appended (by this object)
        self._appended: set[str] = set()
        self._batch_written: set[str] = set()
        self._head: tuple[dict[str, Any], int] | None = None
        self._pool: ThreadPoolExecutor | None = None
        #: index shard id -> (shard, KV version) as last read or written by this object
        self._shards: dict[str, tuple[dict[str, Any], int]] = {}
        self._shard_locks: dict[str, threading.Lock] = {}

    # ---- opening ----------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, *, create: bool = False) -> VaultKeyStore:
        """Open ``vault://`` (HTTP), ``vaults://`` (HTTPS) or ``http(s)://`` store URLs.

        ``vaults://host1:8200,host2:8200/MOUNT?transit=transit&key=keylife`` — hosts may be
        left out (``vaults:///keylife``) to take ``VAULT_ADDR`` (a comma-separated list is
        accepted). Further query options: ``addr`` (repeatable), ``namespace``, ``cacert``,
        ``timeout``, ``deadline``, ``role_id_file``, ``secret_id_file``, ``approle_mount``,
        ``tls_skip_verify`` (warns). With ``create``, the mounts and Transit key are set up.
        """
        parts = urlsplit(url)
        scheme = {"vault": "http", "vaults": "https", "http": "http", "https": "https"}.get(
            parts.scheme
        )
        if scheme is None:
            raise StoreError(f"unsupported Vault store URL {url!r}")
        query = {k: v for k, v in parse_qs(parts.query).items() if v}
        options = {k: v[-1] for k, v in query.items()}
        addresses = [f"{scheme}://{h.strip()}" for h in parts.netloc.split(",") if h.strip()]
        for extra in query.get("addr", []):
            addresses += [a.strip() for a in extra.split(",") if a.strip()]
        settings = VaultSettings.from_env(addresses, options=options)
        path = unquote(parts.path).strip("/")
        mount = path or DEFAULT_MOUNT
        store = cls(
            VaultClient(settings),
            mount=mount,
            transit_mount=options.get("transit", DEFAULT_TRANSIT),
            key_name=options.get("key", DEFAULT_KEY),
        )
        if create:
            from .vault_policy import setup

            try:
                setup(store)
            except BaseException:
                store.close()
                raise
        return store

    def _canonical_url(self) -> str:
        s = self.client.settings
        hosts = ",".join(a.split("://", 1)[1] for a in s.addresses)
        scheme = "vaults" if all(a.startswith("https") for a in s.addresses) else "vault"
        return f"{scheme}://{hosts}/{self.mount}?transit={self.transit_mount}&key={self.key_name}"

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

    # ---- KV v2 primitives -------------------------------------------------------------------

    def _kv_read(self, path: str, what: str) -> tuple[dict[str, Any], int] | None:
        status, body, _ = self.client.request("GET", f"{self.mount}/data/{path}", what=what)
        if status == 404 or not body:
            return None
        data = body.get("data") or {}
        meta = data.get("metadata") or {}
        if data.get("data") is None:
            return None  # deleted version
        return data["data"], int(meta.get("version", 0))

    def _kv_read_version(self, path: str, version: int, what: str) -> dict[str, Any] | None:
        status, body, _ = self.client.request(
            "GET", f"{self.mount}/data/{path}?version={version}", what=what
        )
        if status == 404 or not body:
            return None
        data: dict[str, Any] | None = (body.get("data") or {}).get("data")
        return data

    def _kv_cas(
        self,
        path: str,
        data: Mapping[str, Any],
        *,
        cas: int,
        what: str,
        ours: Callable[[dict[str, Any]], bool],
    ) -> int:
        """Check-and-set write; if the answer was lost and a retry lost the CAS, read back
        and decide with ``ours`` whether the earlier attempt was in fact applied."""
        mount_path = f"{self.mount}/data/{path}"
        payload = {"options": {"cas": cas}, "data": dict(data)}
        try:
            _status, body, _amb = self.client.request("POST", mount_path, json=payload, what=what)
        except CasMismatch:
            current = self._kv_read(path, what=f"{what} (read back)")
            if current is not None and current[1] == cas + 1 and ours(current[0]):
                return current[1]
            raise
        return int(((body or {}).get("data") or {}).get("version", cas + 1))

    def _kv_destroy(self, path: str, what: str) -> None:
        """Delete every version and the metadata: no ciphertext remains."""
        self.client.request("DELETE", f"{self.mount}/metadata/{path}", what=what)

    def _kv_list(self, path: str, what: str) -> list[str]:
        status, body, _ = self.client.request("LIST", f"{self.mount}/metadata/{path}", what=what)
        if status == 404 or not body:
            return []
        keys = (body.get("data") or {}).get("keys") or []
        return [str(k) for k in keys]

    def _map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
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
        return sorted(k for k in self._kv_list("rings/", "list rings") if not k.endswith("/"))

    def _load_doc(self, name: str) -> tuple[dict[str, Any], int] | None:
        got = self._kv_read(f"rings/{q(name)}", what=f"read ring {name}")
        if got is not None:
            with self._lock:
                self._docs[name] = (got[1], got[0])
        return got

    def load_ring(self, name: str) -> Ring | None:
        got = self._load_doc(name)
        if got is None:
            return None
        try:
            return ring_from_dict(got[0]["ring"], got[1])
        except (KeyError, ValueError, TypeError) as exc:
            raise IntegrityError(f"ring document {name} in Vault is malformed: {exc}") from exc

    def load_rings(self) -> list[Ring]:
        """Every ring, no older than its state when the call began: from the index shards
        (one read per shard), and from ``rings/<name>`` for each ring the index does not
        cover (missing entry, or a pending write). The shards of rings read directly are
        repaired (best effort)."""
        names = self.list_ring_names()
        if not names:
            return []
        shard_ids = sorted({ix.shard_of(n) for n in names})
        shards = dict(zip(shard_ids, self._map(self._shard_read, shard_ids), strict=True))
        docs: dict[str, tuple[int, dict[str, Any]]] = {}
        direct: list[str] = []
        for name in names:
            got = ix.trusted(shards[ix.shard_of(name)][0], name)
            if got is None:
                direct.append(name)
            else:
                docs[name] = got
        with self._lock:
            self._docs.update(docs)
        repairs: dict[str, list[tuple[str, int, dict[str, Any]]]] = {}
        for name, fresh in zip(direct, self._map(self._load_doc, direct), strict=True):
            if fresh is not None:
                docs[name] = (fresh[1], fresh[0])
                repairs.setdefault(ix.shard_of(name), []).append((name, fresh[1], fresh[0]))
        if repairs:
            self._map(self._repair_shard, list(repairs.items()))
        rings = []
        for name in names:
            if name not in docs:
                continue  # listed, then gone
            rev, doc = docs[name]
            try:
                rings.append(ring_from_dict(doc["ring"], rev))
            except (KeyError, ValueError, TypeError) as exc:
                raise IntegrityError(f"ring document {name} in Vault is malformed: {exc}") from exc
        return rings

    # ---- the index (keylife.store.vault_index) ------------------------------------------------

    def _shard_read(self, shard_id: str) -> tuple[dict[str, Any], int]:
        got = self._kv_read(f"{ix.SHARD_PREFIX}{shard_id}", what=f"read index shard {shard_id}")
        shard, version = (ix.empty(), 0) if got is None else (ix.decode(got[0]), got[1])
        with self._lock:
            self._shards[shard_id] = (shard, version)
        return shard, version

    def _shard_update(self, shard_id: str, change: Callable[[dict[str, Any]], bool]) -> None:
        """Apply ``change`` to the shard with check-and-set, re-reading and re-applying it
        after a lost check-and-set. ``change`` must be a monotonic merge (safe to re-apply
        on any later state of the shard)."""
        with self._lock:
            lock = self._shard_locks.setdefault(shard_id, threading.Lock())
            cached = self._shards.get(shard_id)
        path = f"{ix.SHARD_PREFIX}{shard_id}"
        with lock:
            for attempt in range(_SHARD_RETRIES):
                shard, version = cached if cached is not None else self._shard_read(shard_id)
                cached = None
                new = ix.copy(shard)
                if not change(new):
                    return
                data = ix.encode(new)
                try:
                    new_version = self._kv_cas(
                        path,
                        data,
                        cas=version,
                        what=f"write index shard {shard_id}",
                        ours=lambda d, data=data: d == data,  # type: ignore[misc]
                    )
                except ConflictError:
                    time.sleep(random.random() * min(0.1, 0.002 * 2**attempt))
                    continue
                with self._lock:
                    self._shards[shard_id] = (new, new_version)
                return
        raise ConflictError(f"index shard {shard_id} kept changing underneath")

    def _repair_shard(self, item: tuple[str, list[tuple[str, int, dict[str, Any]]]]) -> None:
        shard_id, entries = item

        def change(shard: dict[str, Any]) -> bool:
            changed = False
            for name, rev, doc in entries:
                changed = ix.put_entry(shard, name, rev, doc) or changed
            return changed

        try:
            self._shard_update(shard_id, change)
        except StoreError as exc:  # read-only token, contention, outage: the docs are truth
            log.debug("index shard %s not repaired: %s", shard_id, exc)

    def _prev_doc(self, name: str, revision: int) -> dict[str, Any] | None:
        if revision == 0:
            return None
        with self._lock:
            cached = self._docs.get(name)
        if cached is not None and cached[0] == revision:
            return cached[1]
        doc = self._kv_read_version(f"rings/{q(name)}", revision, what=f"read ring {name}")
        if doc is None:
            raise ConflictError(
                f"ring {name} changed underneath (revision {revision} is not current)"
            )
        return doc

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
        # 1. finish the previous write of this ring if it was cut short
        if prev is not None:
            self._finish(name, prev)
        mat: dict[str, str] = dict((prev or {}).get("mat") or {})
        purge: dict[str, str] = {}
        written: list[str] = []
        txid = secrets.token_hex(12)
        shard_id = ix.shard_of(name)
        # 2a. announce the write in the index before the commit point: until the entry of
        # this revision is in the shard, readers read rings/<name> itself
        self._shard_update(shard_id, lambda s: ix.add_token(s, name, txid, expected_revision))
        # 2. new material, each at a fresh path
        for number, material in sorted((materials or {}).items()):
            blob_id = secrets.token_hex(8)
            ct = self._encrypt(name, number, material)
            path = f"m/{q(name)}/{number}/{blob_id}"
            self._kv_cas(
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
        for number in destroy:
            old = mat.pop(str(number), None)
            if old is not None:
                purge[str(number)] = old
        doc = {
            "ring": ring_to_dict(ring),
            "mat": mat,
            "purge": purge,
            "tx": {"id": txid, "entries": [_entry_to_dict(e) for e in audit]},
        }
        # 3. the commit point
        try:
            revision = self._kv_cas(
                f"rings/{q(name)}",
                doc,
                cas=expected_revision,
                what=f"write ring {name}",
                ours=lambda d: (d.get("tx") or {}).get("id") == txid,
            )
        except ConflictError:
            for path in written:
                with contextlib.suppress(StoreError):  # unreferenced ciphertext: harmless
                    self._kv_destroy(path, what=f"remove unused material of {name}")
            raise ConflictError(
                f"ring {name} changed underneath (expected revision {expected_revision})"
            ) from None
        with self._lock:
            self._docs[name] = (revision, doc)
        # 3b. the index entry; if it cannot be written the pending token keeps readers on
        # the ring document, and the next commit or load_rings() repairs the shard
        try:
            self._shard_update(shard_id, lambda s: ix.put_entry(s, name, revision, doc))
        except ConflictError as exc:
            log.warning("index shard %s not updated for %s: %s", shard_id, name, exc)
        # 4. erase destroyed material, 5. audit
        self._finish(name, doc, own=True)
        return replace(ring, revision=revision)

    def _finish(self, name: str, doc: Mapping[str, Any], *, own: bool = False) -> None:
        """Steps 4 and 5 for ``doc``; ``own``: this object just committed it (no need to look
        whether another process already appended its audit batch)."""
        for number, blob_id in sorted((doc.get("purge") or {}).items()):
            self._destroy_material(name, int(number), str(blob_id))
        tx = doc.get("tx") or {}
        if tx.get("entries") and tx.get("id") not in self._appended:
            entries = [_entry_from_dict(e) for e in tx["entries"]]
            self._append_batch(str(tx["id"]), entries, check_existing=not own)

    def _destroy_material(self, name: str, number: int, blob_id: str) -> None:
        self._kv_destroy(f"m/{q(name)}/{number}/{blob_id}", what=f"erase {name} v{number}")

    # ---- material ---------------------------------------------------------------------------

    def _context(self, ring: str, version: int) -> str:
        from .vault_policy import context

        return b64(context(ring, version))

    def _encrypt(self, ring: str, version: int, material: KeyMaterial) -> str:
        _s, body, _ = self.client.request(
            "POST",
            f"{self.transit_mount}/encrypt/{q(self.key_name)}",
            json={"plaintext": b64(material.reveal()), "context": self._context(ring, version)},
            what=f"seal material {ring} v{version} with Transit",
        )
        ct = ((body or {}).get("data") or {}).get("ciphertext")
        if not isinstance(ct, str):
            raise StoreError(f"Transit returned no ciphertext for {ring} v{version}")
        return ct

    def _decrypt(self, ring: str, version: int, ct: str) -> bytes:
        import base64

        try:
            _s, body, _ = self.client.request(
                "POST",
                f"{self.transit_mount}/decrypt/{q(self.key_name)}",
                json={"ciphertext": ct, "context": self._context(ring, version)},
                what=f"unseal material {ring} v{version} with Transit",
            )
        except StoreError as exc:
            if "authentication failed" in str(exc) or "unable to decrypt" in str(exc):
                raise IntegrityError(
                    f"{ring} v{version}: sealed material failed its integrity check; the "
                    "blob was altered or belongs elsewhere"
                ) from exc
            raise
        plain = ((body or {}).get("data") or {}).get("plaintext")
        if not isinstance(plain, str):
            raise StoreError(f"Transit returned no plaintext for {ring} v{version}")
        return base64.b64decode(plain)

    def _blob_id(self, ring: str, version: int) -> str | None:
        with self._lock:
            cached = self._docs.get(ring)
        if cached is not None and str(version) in (cached[1].get("mat") or {}):
            return str(cached[1]["mat"][str(version)])
        got = self._load_doc(ring)
        if got is None:
            return None
        blob = (got[0].get("mat") or {}).get(str(version))
        return None if blob is None else str(blob)

    def _read_plain(self, ring: str, version: int) -> bytes:
        missing = f"no material for {ring} v{version} (destroyed or never stored)"
        blob_id = self._blob_id(ring, version)
        if blob_id is None:
            raise NotFoundError(missing)
        got = self._kv_read(f"m/{q(ring)}/{version}/{blob_id}", what=f"read {ring} v{version}")
        if got is None:
            # the cached document (e.g. from an index shard) may be older than the ring
            fresh = self._load_doc(ring)
            fresh_id = None if fresh is None else (fresh[0].get("mat") or {}).get(str(version))
            if fresh_id is None or str(fresh_id) == blob_id:
                raise NotFoundError(missing)
            got = self._kv_read(f"m/{q(ring)}/{version}/{fresh_id}", what=f"read {ring} v{version}")
            if got is None:
                raise NotFoundError(missing)
        return self._decrypt(ring, version, str(got[0].get("ct", "")))

    def get_material(self, ring: str, version: int, spec: KeySpec) -> KeyMaterial:
        return KeyMaterial(self._read_plain(ring, version), spec)

    def has_material(self, ring: str, version: int) -> bool:
        got = self._load_doc(ring)
        return got is not None and str(version) in (got[0].get("mat") or {})

    def material_items(self) -> list[tuple[str, int, bytes]]:
        """Every (ring, version, plaintext) — for backup and migration only."""
        pairs: list[tuple[str, int]] = []
        for name in self.list_ring_names():
            got = self._load_doc(name)
            if got is not None:
                pairs += [(name, int(v)) for v in (got[0].get("mat") or {})]
        plains = self._map(lambda p: self._read_plain(p[0], p[1]), pairs)
        return [(r, v, p) for (r, v), p in zip(pairs, plains, strict=True)]

    # ---- audit ------------------------------------------------------------------------------

    def _read_head(self) -> tuple[dict[str, Any], int]:
        got = self._kv_read("audit-head", what="read audit head")
        if got is None:
            return {"count": 0, "hash": GENESIS, "last": None}, 0
        return got

    def _write_batch_doc(self, batch: Mapping[str, Any]) -> None:
        txid = str(batch["id"])
        if txid in self._batch_written:
            return
        # a conflict means it is already written (its content is fixed by the head)
        with contextlib.suppress(ConflictError):
            self._kv_cas(
                f"audit/{txid}",
                {"start": batch["start"], "records": batch["records"]},
                cas=0,
                what="write audit batch",
                ours=lambda _d: True,
            )
        self._batch_written.add(txid)

    def _append_batch(
        self, txid: str, entries: Sequence[AuditEntry], *, check_existing: bool = False
    ) -> None:
        if not entries or txid in self._appended:
            return
        if check_existing and self._kv_read(f"audit/{txid}", what="read audit batch"):
            self._appended.add(txid)
            return
        import random
        import time

        for attempt in range(_AUDIT_RETRIES):
            # The head this object wrote last is usually still current (one writer under the
            # rotation lease): try it first and read only after losing the check-and-set.
            cached, self._head = self._head, None
            head, version = cached if cached is not None else self._read_head()
            last = head.get("last")
            if last and last.get("id") == txid:
                break  # appended already (our answer was lost, or another process did it)
            if last:
                self._write_batch_doc(last)
            count, prev = int(head["count"]), str(head["hash"])
            start = count + 1
            records = []
            for entry in entries:
                count += 1
                record = chain(prev, count, entry)
                records.append(record.to_dict())
                prev = record.hash
            batch = {"id": txid, "start": start, "records": records}
            new_head = {"count": count, "hash": prev, "last": batch}
            try:
                new_version = self._kv_cas(
                    "audit-head",
                    new_head,
                    cas=version,
                    what="append audit records",
                    ours=lambda d: (d.get("last") or {}).get("id") == txid,
                )
            except ConflictError:
                time.sleep(random.random() * min(0.2, 0.005 * 2**attempt))
                continue
            self._head = (new_head, new_version)
            self._write_batch_doc(batch)
            break
        else:
            raise ConflictError("the audit log kept changing underneath; try again")
        self._appended.add(txid)

    def transit_keys(self, *, actor: str | None = None) -> TransitKeys:
        """The transit-resident rings of this store (``keylife rotate`` schedules them)."""
        from .transit_keys import TransitKeys

        return TransitKeys(self, actor=actor)

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        self._append_batch(secrets.token_hex(12), entries)

    def read_audit(self) -> list[AuditRecord]:
        head, _version = self._read_head()
        ids = [k for k in self._kv_list("audit/", "list audit batches") if not k.endswith("/")]

        def read(txid: str) -> list[dict[str, Any]]:
            got = self._kv_read(f"audit/{txid}", what="read audit batch")
            return [] if got is None else list(got[0].get("records") or [])

        by_seq: dict[int, dict[str, Any]] = {}
        for records in self._map(read, ids):
            for r in records:
                by_seq[int(r["seq"])] = r
        last = head.get("last")
        if last:
            for r in last.get("records") or []:
                by_seq.setdefault(int(r["seq"]), r)
        return [AuditRecord.from_dict(by_seq[s]) for s in sorted(by_seq)]

    def audit_head(self) -> tuple[int, str]:
        head, _ = self._read_head()
        return int(head["count"]), str(head["hash"])

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
        """Take (or renew) the lease unless another live holder has it unexpired.

        A KV v2 document written with check-and-set: two runners reading the same state race
        on the CAS and exactly one wins. ``takeover_from`` names a holder known to be dead.
        """
        path = f"leases/{q(name)}"
        expires = now + ttl
        held_before = False
        for _ in range(3):
            got = self._kv_read(path, what=f"read lease {name}")
            version = 0
            if got is not None:
                data, version = got
                other = data.get("holder")
                until = data.get("expires")
                held_before = other == holder
                if (
                    other
                    and other not in (holder, takeover_from)
                    and until
                    and dt.datetime.fromisoformat(until) > now
                ):
                    return None
            doc = {"holder": holder, "expires": expires.isoformat()}
            try:
                self._kv_cas(
                    path,
                    doc,
                    cas=version,
                    what=f"take lease {name}",
                    ours=lambda d, doc=doc: d == doc,  # type: ignore[misc]
                )
            except ConflictError:
                continue  # someone else moved; look again
            if not held_before:
                self.recover()
            return Lease(name, holder, expires)
        return None

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
        known = set(self._kv_list("audit/", "list audit batches")) | self._appended
        head, _ = self._read_head()
        if head.get("last"):
            known.add(str(head["last"]["id"]))
        appended = 0
        for name, (_rev, doc) in sorted(docs.items()):
            for number, blob_id in sorted((doc.get("purge") or {}).items()):
                self._destroy_material(name, int(number), str(blob_id))
            tx = doc.get("tx") or {}
            if tx.get("entries") and str(tx.get("id")) not in known:
                entries = [_entry_from_dict(e) for e in tx["entries"]]
                self._append_batch(str(tx["id"]), entries)
                appended += 1
        self._appended |= known
        return appended

    def read_lease(self, name: str) -> Lease | None:
        got = self._kv_read(f"leases/{q(name)}", what=f"read lease {name}")
        if got is None or not got[0].get("holder"):
            return None
        return Lease(name, str(got[0]["holder"]), dt.datetime.fromisoformat(got[0]["expires"]))

    def release_lease(self, name: str, holder: str) -> None:
        path = f"leases/{q(name)}"
        got = self._kv_read(path, what=f"read lease {name}")
        if got is None or got[0].get("holder") != holder:
            return
        # a conflict: taken over after it lapsed, not ours to release any more
        with contextlib.suppress(ConflictError):
            self._kv_cas(
                path,
                {"holder": "", "expires": ""},
                cas=got[1],
                what=f"release lease {name}",
                ours=lambda d: not d.get("holder"),
            )
