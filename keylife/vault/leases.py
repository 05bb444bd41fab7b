"""Named leases in KV v2 (``M/leases/<name>`` = ``{"holder", "expires"}``, check-and-set).

Two runners reading the same lease race on the check-and-set and exactly one wins.

Fencing: while this object holds a lease, :meth:`VaultLeases.fence` runs before every commit
point. It refuses (:class:`LeaseLostError`) once the lease's TTL has run out by this process's
monotonic clock (less a safety margin: the commit itself takes time), and when a re-read shows
another holder. A runner whose Vault answers were slow enough for its lease to lapse thus
stops instead of writing over the run that took the lease over.

The TTL check costs nothing and runs before every commit. The re-read runs at most once per
:data:`FENCE_REFRESH` seconds, shared by every commit in that window (the threads of a
concurrent run): while the lease has not run out by our own clock, another run can take it
only if the clocks of the two hosts disagree by more than the margin, or if someone removes
it by hand; the re-read catches either within that window. (A re-read before each commit
closed no window either: the lease can be taken between any read and the write after it.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time

from ..errors import ConflictError, LeaseLostError
from ..store.base import Lease
from .client import q
from .kv import KV

__all__ = ["VaultLeases"]


#: never start a commit with less than this much of the lease left (seconds, at most ttl/10)
FENCE_MARGIN = 2.0
#: seconds a re-read of the lease vouches for the commits after it
FENCE_REFRESH = 0.5


class VaultLeases:
    def __init__(self, kv: KV) -> None:
        self.kv = kv
        self._lock = threading.Lock()
        #: leases held by this object: name -> (holder, monotonic time it lapses)
        self._held: dict[str, tuple[str, float]] = {}
        #: lease name -> monotonic time a read last showed it ours
        self._confirmed: dict[str, float] = {}
        self._reading = threading.Lock()

    def holding(self) -> bool:
        """Whether this object holds a lease (a rotation run is in progress)."""
        with self._lock:
            return bool(self._held)

    def fence(self, ring: str) -> None:
        """Before writing ``ring``: every lease this object holds is still ours and unexpired."""
        with self._lock:
            held = dict(self._held)
        for name, (holder, until) in held.items():
            left = until - time.monotonic()
            if left <= 0:
                raise LeaseLostError(
                    f"the lease {name} lapsed {-left:.1f} s ago (Vault answered too slowly for "
                    f"its TTL): not writing ring {ring}; the run stops, a later run completes "
                    "it (raise --lease-ttl if Vault is often this slow)",
                    lease=name,
                    ring=ring,
                )
            with self._reading:  # one thread re-reads; the others then use its answer
                self._confirm(name, holder, ring)

    def _confirm(self, name: str, holder: str, ring: str) -> None:
        """Re-read lease ``name`` unless a read less than :data:`FENCE_REFRESH` ago showed it
        held by ``holder``; :class:`LeaseLostError` when another holder has it."""
        with self._lock:
            if time.monotonic() - self._confirmed.get(name, -1e9) < FENCE_REFRESH:
                return
        read_at = time.monotonic()
        got = self.kv.read(f"leases/{q(name)}", what=f"check lease {name}")
        other = None if got is None else got.data.get("holder")
        if other != holder:
            with self._lock:
                self._held.pop(name, None)
                self._confirmed.pop(name, None)
            raise LeaseLostError(
                f"the lease {name} was taken over by {other or 'nobody (released)'}: not "
                f"writing ring {ring}; the run stops",
                lease=name,
                ring=ring,
            )
        with self._lock:
            self._confirmed[name] = max(self._confirmed.get(name, read_at), read_at)

    def acquire(
        self,
        name: str,
        holder: str,
        ttl: dt.timedelta,
        now: dt.datetime,
        *,
        takeover_from: str | None = None,
    ) -> tuple[Lease, bool] | None:
        """Take (or renew) the lease unless another live holder has it unexpired.

        Returns ``(lease, held_before)`` (whether ``holder`` held it already), or None.
        ``takeover_from`` names a holder known to be dead.
        """
        path = f"leases/{q(name)}"
        expires = now + ttl
        started = time.monotonic()  # the lease runs from before the write that takes it
        for _ in range(3):
            got = self.kv.read(path, what=f"read lease {name}")
            version = 0
            held_before = False
            if got is not None:
                version = got.version
                other, until = got.data.get("holder"), got.data.get("expires")
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
                self.kv.cas_write(
                    path,
                    doc,
                    cas=version,
                    what=f"take lease {name}",
                    ours=lambda d, doc=doc: d == doc,  # type: ignore[misc]
                )
            except ConflictError:
                continue  # someone else moved; look again
            seconds = ttl.total_seconds()
            with self._lock:
                self._held[name] = (holder, started + seconds - min(FENCE_MARGIN, seconds / 10))
            return Lease(name, holder, expires), held_before
        return None

    def read(self, name: str) -> Lease | None:
        got = self.kv.read(f"leases/{q(name)}", what=f"read lease {name}")
        if got is None or not got.data.get("holder"):
            return None
        return Lease(name, str(got.data["holder"]), dt.datetime.fromisoformat(got.data["expires"]))

    def release(self, name: str, holder: str) -> None:
        with self._lock:
            self._held.pop(name, None)
            self._confirmed.pop(name, None)
        path = f"leases/{q(name)}"
        got = self.kv.read(path, what=f"read lease {name}")
        if got is None or got.data.get("holder") != holder:
            return
        # a conflict: taken over after it lapsed, not ours to release any more
        with contextlib.suppress(ConflictError):
            self.kv.cas_write(
                path,
                {"holder": "", "expires": ""},
                cas=got.version,
                what=f"release lease {name}",
                ours=lambda d: not d.get("holder"),
            )
