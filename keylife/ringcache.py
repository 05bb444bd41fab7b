"""A bounded-time cache in front of any :class:`~keylife.store.base.KeyStore`, for long-running
services: :class:`CachedStore` (``keylife.open(..., refresh=30)``).

Ring documents and unsealed material (kept as :class:`~keylife.material.KeyMaterial`) are
served from memory for at most ``refresh`` seconds (monotonic time), then read again, so a
rotation made by another process is picked up within the interval. A commit through this
object, successful or not, drops the ring from the cache (a lost check-and-set must reread).
Objects derived from a ring document (the key sets of :mod:`keylife.keyset`) are kept with the
document and dropped with it. Reads take no lock; a reload takes the cache's lock, so a crowd
of threads arriving at an expired entry reads the store once.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .audit import AuditEntry, AuditRecord
from .errors import KeylifeError
from .lifecycle import Ring
from .material import KeyMaterial
from .specs import KeySpec
from .store.base import KeyStore, Lease

__all__ = ["CachedStore"]


class CachedStore:
    """``inner`` with ring documents and material cached for ``refresh`` seconds."""

    def __init__(
        self,
        inner: KeyStore,
        refresh: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not refresh > 0:
            raise KeylifeError(f"refresh must be a positive number of seconds, got {refresh}")
        self.inner = inner
        self.refresh: float = float(refresh)
        self.monotonic: Callable[[], float] = monotonic
        self.url = inner.url
        self._lock = threading.Lock()
        # Objects keeping their own copies (key rings' fast paths), told on invalidation.
        self._listeners: weakref.WeakSet[Any] = weakref.WeakSet()
        self._forced: dict[str, float] = {}
        #: Bumped by every invalidation: copies kept elsewhere compare it to stay current.
        self.generation = 0
        # name -> (expires, ring or None)
        self._rings: dict[str, tuple[float, Ring | None]] = {}
        self._materials: dict[tuple[str, int], tuple[float, KeyMaterial]] = {}
        # (kind, name) -> (expires, revision, object) derived from the ring document
        self._derived: dict[tuple[str, str], tuple[float, int, Any]] = {}

    def __repr__(self) -> str:
        return f"<CachedStore {self.url} refresh={self.refresh:g}s>"

    def __getattr__(self, name: str) -> Any:
        # Backend-specific extras (audit_head, rekey, ...) pass straight through.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    # ---- cached reads -----------------------------------------------------------------------

    def load_ring(self, name: str) -> Ring | None:
        hit = self._rings.get(name)
        if hit is not None and hit[0] > self.monotonic():
            return hit[1]
        with self._lock:
            hit = self._rings.get(name)
            if hit is not None and hit[0] > self.monotonic():
                return hit[1]
            ring = self.inner.load_ring(name)
            self._rings[name] = (self.monotonic() + self.refresh, ring)
            return ring

    def get_material(self, ring: str, version: int, spec: KeySpec) -> KeyMaterial:
        hit = self._materials.get((ring, version))
        if hit is not None and hit[0] > self.monotonic() and hit[1].spec == spec:
            return hit[1]
        material = self.inner.get_material(ring, version, spec)
        self._materials[(ring, version)] = (self.monotonic() + self.refresh, material)
        return material

    def derived(self, kind: str, ring: Ring, build: Callable[[], Any]) -> Any:
        """The object ``build()`` made from ``ring`` (this revision), kept as long as the ring
        document is; built again once it expires or the revision changes."""
        key = (kind, ring.name)
        hit = self._derived.get(key)
        if hit is not None and hit[1] == ring.revision and hit[0] > self.monotonic():
            return hit[2]
        expires = self._rings.get(ring.name, (self.monotonic() + self.refresh, None))[0]
        value = build()
        self._derived[key] = (expires, ring.revision, value)
        return value

    def may_force(self, name: str, interval: float) -> bool:
        """Whether a forced reread of ring ``name`` is allowed now: at most one per
        ``interval`` seconds per ring, whichever object asks (so blobs naming made-up versions
        cannot turn into a flood of store reads)."""
        now = self.monotonic()
        with self._lock:
            if now - self._forced.get(name, -math.inf) < interval:
                return False
            self._forced[name] = now
            return True

    def listen(self, listener: Any) -> None:
        """Call ``listener.forget(name)`` whenever ring ``name`` is dropped from the cache."""
        with self._lock:
            self._listeners.add(listener)

    def invalidate(self, name: str | None = None) -> None:
        """Forget ``name`` (every ring when None): the next read goes to the store."""
        with self._lock:
            self.generation += 1
            for listener in list(self._listeners):
                listener.forget(name)
            if name is None:
                self._rings.clear()
                self._materials.clear()
                self._derived.clear()
                return
            self._rings.pop(name, None)
            for version in [k for k in self._materials if k[0] == name]:
                self._materials.pop(version, None)
            for derived in [k for k in self._derived if k[1] == name]:
                self._derived.pop(derived, None)

    # ---- everything else goes to the store --------------------------------------------------

    def list_ring_names(self) -> list[str]:
        return self.inner.list_ring_names()

    def load_rings(self) -> list[Ring]:
        return self.inner.load_rings()

    def commit(
        self,
        ring: Ring,
        *,
        expected_revision: int,
        materials: Mapping[int, KeyMaterial] | None = None,
        destroy: Sequence[int] = (),
        audit: Sequence[AuditEntry] = (),
    ) -> Ring:
        try:
            return self.inner.commit(
                ring,
                expected_revision=expected_revision,
                materials=materials,
                destroy=destroy,
                audit=audit,
            )
        finally:
            self.invalidate(ring.name)

    def delete_ring(
        self, name: str, *, expected_revision: int, audit: Sequence[AuditEntry] = ()
    ) -> None:
        try:
            self.inner.delete_ring(name, expected_revision=expected_revision, audit=audit)
        finally:
            self.invalidate(name)

    def has_material(self, ring: str, version: int) -> bool:
        return self.inner.has_material(ring, version)

    def material_items(self) -> list[tuple[str, int, bytes]]:
        return self.inner.material_items()

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        self.inner.append_audit(entries)

    def read_audit(self) -> list[AuditRecord]:
        return self.inner.read_audit()

    def add_encryptions(self, counts: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        return self.inner.add_encryptions(counts)

    def encryption_counts(self, ring: str) -> dict[int, int]:
        return self.inner.encryption_counts(ring)

    def acquire_lease(
        self,
        name: str,
        holder: str,
        ttl: dt.timedelta,
        now: dt.datetime,
        *,
        takeover_from: str | None = None,
    ) -> Lease | None:
        return self.inner.acquire_lease(name, holder, ttl, now, takeover_from=takeover_from)

    def read_lease(self, name: str) -> Lease | None:
        return self.inner.read_lease(name)

    def release_lease(self, name: str, holder: str) -> None:
        self.inner.release_lease(name, holder)

    def close(self) -> None:
        self.invalidate()
        self.inner.close()
