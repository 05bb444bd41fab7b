"""Named leases in KV v2 (``M/leases/<name>`` = ``{"holder", "expires"}``, check-and-set).

Two runners reading the same lease race on the check-and-set and exactly one wins.
"""

from __future__ import annotations

import contextlib
import datetime as dt

from ..errors import ConflictError
from ..store.base import Lease
from .client import q
from .kv import KV

__all__ = ["VaultLeases"]


class VaultLeases:
    def __init__(self, kv: KV) -> None:
        self.kv = kv

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
            return Lease(name, holder, expires), held_before
        return None

    def read(self, name: str) -> Lease | None:
        got = self.kv.read(f"leases/{q(name)}", what=f"read lease {name}")
        if got is None or not got.data.get("holder"):
            return None
        return Lease(name, str(got.data["holder"]), dt.datetime.fromisoformat(got.data["expires"]))

    def release(self, name: str, holder: str) -> None:
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
