"""The Vault store's id and the sealing bound to it.

``M/store-id`` holds ``{"id": <32 hex>, "bound": true|false}``. ``keylife init`` / ``keylife
vault setup`` write it (``bound``) for a store that has no rings yet. A ring whose blobs are
bound to the id says so in its KV document (``"sid": <id>``), and each of its blobs is
encrypted by Transit with the context :func:`bound_context` (the ring's usual context, then
``@<id>``, so the prefix a service policy pins is unchanged): a blob copied from another store,
even one sharing the Transit key, does not decrypt.

A store from before store ids keeps reading its old-format rings as before; ``keylife store
rekey`` runs :func:`reseal`: it makes the id (``bound: false``), re-seals every ring's blobs
bound to it (one check-and-set commit per ring, the ring document unchanged) and then marks
the store ``bound``, after which a ring document without the store's ``sid`` is refused. A
reader that may not read ``store-id`` (a service token) goes by the ring document's ``sid``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..errors import (
    ConflictError,
    CorruptRecordError,
    IntegrityError,
    LockHeldError,
    VaultPermissionError,
)
from ..lifecycle import Ring
from ..material import KeyMaterial
from ..specs import KeySpec
from ..store.base import Lease
from .kv import KV
from .transit import context

__all__ = [
    "PATH",
    "StoreIdentity",
    "bound_context",
    "parse_store_id",
    "reseal",
]

PATH = "store-id"
#: How long an absent or not-yet-bound store id is trusted before it is read again (a
#: migration by another process is seen within this); a bound one never changes.
RECHECK = 60.0
#: How long the rotation lock :func:`reseal` holds lasts if it dies (renewed per ring).
LEASE_TTL = dt.timedelta(minutes=10)
_ID = re.compile(r"[0-9a-f]{32}", re.ASCII)


def bound_context(ring: str, version: int, store_id: str | None) -> bytes:
    """The Transit context of ``ring`` v``version``: bound to ``store_id`` when given."""
    base = context(ring, version)
    return base if store_id is None else base + f"@{store_id}".encode()


def parse_store_id(data: object, where: str) -> dict[str, Any]:
    """``{"id", "bound"}`` from the stored document ``data``, or :class:`CorruptRecordError`."""
    sid = data.get("id") if isinstance(data, dict) else None
    bound = data.get("bound") if isinstance(data, dict) else None
    if not isinstance(sid, str) or not _ID.fullmatch(sid) or not isinstance(bound, bool):
        raise CorruptRecordError(
            f"{where} is malformed; it must hold the store's 32-hex id and bound = true/false "
            "(restore it from Vault's KV history)"
        )
    return {"id": sid, "bound": bound}


class StoreIdentity:
    """The ``store-id`` document of one KV mount, read once and kept."""

    def __init__(self, kv: KV) -> None:
        self.kv = kv
        self._lock = threading.Lock()
        self._doc: dict[str, Any] | None = None
        self._until = -math.inf

    def _read(self) -> dict[str, Any] | None:
        try:
            got = self.kv.read(PATH, what="read the store id")
        except VaultPermissionError:  # a service token: its ring documents say
            return None
        if got is None:
            return None
        return {**parse_store_id(got.data, f"{self.kv.mount}/{PATH}"), "kv_version": got.version}

    def doc(self, *, fresh: bool = False) -> dict[str, Any] | None:
        with self._lock:
            doc, until = self._doc, self._until
        if not fresh and ((doc is not None and doc["bound"]) or time.monotonic() < until):
            return doc
        doc = self._read()
        with self._lock:
            self._doc, self._until = doc, time.monotonic() + RECHECK
        return doc

    def id(self) -> str | None:
        doc = self.doc()
        return None if doc is None else str(doc["id"])

    def create(self, *, bound: bool) -> str:
        """The store's id, made now (``bound`` as given) when it has none."""
        doc = self.doc(fresh=True)
        if doc is not None:
            return str(doc["id"])
        sid = secrets.token_hex(16)
        with contextlib.suppress(ConflictError):  # another process made it first
            self.kv.cas_write(
                PATH,
                {"id": sid, "bound": bound},
                cas=0,
                what="write the store id",
                ours=lambda d: d.get("id") == sid,
            )
        doc = self.doc(fresh=True)
        assert doc is not None
        return str(doc["id"])

    def mark_bound(self) -> None:
        doc = self.doc(fresh=True)
        if doc is None or doc["bound"]:
            return
        self.kv.cas_write(
            PATH,
            {"id": doc["id"], "bound": True},
            cas=int(doc["kv_version"]),
            what="mark the store id bound",
            ours=lambda d: d.get("bound") is True,
        )
        self.doc(fresh=True)

    def for_commit(
        self, prev: Mapping[str, Any] | None, new: Mapping[int, KeyMaterial]
    ) -> str | None:
        """The id a commit binds its ring's blobs to: the store's, unless the ring still has
        old-format blobs this commit does not replace (they stay old until :func:`reseal`).
        Until the store is bound, the id is read afresh (a migration may have just begun)."""
        doc = self.doc()
        if doc is None or not doc["bound"]:
            doc = self.doc(fresh=True)
        sid = None if doc is None else str(doc["id"])
        if sid is None or prev is None or prev.get("sid") == sid:
            return sid
        kept = set((prev.get("mat") or {}).keys()) - {str(n) for n in new}
        return None if kept else sid

    def context(self, ring: str, version: int, doc: Mapping[str, Any]) -> bytes:
        """The context to decrypt ``ring`` v``version`` with, from its ring document ``doc``;
        refuses a document bound elsewhere, or an old-format one in a bound store."""
        sid = doc.get("sid")
        known = self.doc()
        if known is not None and sid is not None and sid != known["id"]:
            raise IntegrityError(
                f"{ring} v{version}: its ring document is bound to another store ({sid}); "
                f"restore the ring from a backup (`keylife restore ARCHIVE --ring {ring} "
                f"--version {version}`)"
            )
        if known is not None and sid is None and known["bound"]:
            raise IntegrityError(
                f"{ring} v{version}: sealed in the old format, without this store's id, which "
                "this store refuses since `keylife store rekey` bound its blobs (a blob from "
                f"another store or an old copy); restore it (`keylife restore ARCHIVE --ring "
                f"{ring} --version {version}`)"
            )
        return bound_context(ring, version, sid if isinstance(sid, str) else None)


class Resealable(Protocol):
    identity: StoreIdentity

    def acquire_lease(
        self, name: str, holder: str, ttl: dt.timedelta, now: dt.datetime
    ) -> Lease | None: ...

    def release_lease(self, name: str, holder: str) -> None: ...

    def list_ring_names(self) -> list[str]: ...

    def load_ring(self, name: str) -> Ring | None: ...

    def get_material(self, ring: str, version: int, spec: KeySpec) -> KeyMaterial: ...

    def commit(self, ring: Ring, *, expected_revision: int, materials: Any = None) -> Ring: ...


def reseal(
    store: Resealable,
    now: Callable[[], dt.datetime],
    *,
    retries: int = 8,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, int]:
    """Bind every ring's blobs to the store id (made now if missing), then mark the store
    bound, holding the rotation lease (no run writes meanwhile; ``now`` gives the time for
    it). Safe to repeat after a crash. Returns the id and the number of blobs re-sealed."""
    from ..rotation.holders import new_holder
    from ..rotation.runner import LEASE_NAME

    holder = new_holder()
    if store.acquire_lease(LEASE_NAME, holder, LEASE_TTL, now()) is None:
        raise LockHeldError(
            "a rotation run holds the lock on this store; run `keylife store rekey` again "
            "when it has finished"
        )
    try:
        return _reseal(
            store, lambda: store.acquire_lease(LEASE_NAME, holder, LEASE_TTL, now()), retries, sleep
        )
    finally:
        store.release_lease(LEASE_NAME, holder)


def _reseal(
    store: Resealable,
    renew: Callable[[], Lease | None],
    retries: int,
    sleep: Callable[[float], None],
) -> tuple[str, int]:
    sid = store.identity.create(bound=False)
    count = 0
    for name in store.list_ring_names():
        if renew() is None:
            raise LockHeldError("the rotation lock was taken over while blobs were re-sealed")
        for attempt in range(retries):
            ring = store.load_ring(name)
            if ring is None:
                break
            if ring.damage:  # binding the store now would strand its blobs
                raise CorruptRecordError(
                    f"{ring.damage}; repair ring {name}, then run `keylife store rekey` again",
                    ring=name,
                )
            materials = {
                v.number: store.get_material(name, v.number, v.spec)
                for v in ring.versions
                if v.has_material
            }
            try:
                store.commit(ring, expected_revision=ring.revision, materials=materials)
            except ConflictError:
                sleep(0.05 * (attempt + 1))
                continue
            count += len(materials)
            break
        else:
            raise ConflictError(
                f"ring {name} kept changing while its blobs were re-sealed; try again"
            )
    store.identity.mark_bound()
    return sid, count
