"""Audit records of reads: public-key exports, and loads of secret material when the policy
sets ``audit_reads = true``.

A public-key export (``KeyRing.public_key``, behind ``keylife key public``) is one record:
ring, versions, format and the authenticated identity. Loads of secret material are many (a
service unseals a version whenever its cache refreshes, or on every operation without one), so
:class:`ReadLog` batches them: the first load of a ring is written at once, later ones are
counted and written at most once per ring per :data:`BATCH_INTERVAL` (time from the writer's
clock), one record per version with the count and the first and last load; what is still
pending is written when the writer closes.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence

from .audit import AuditEntry

__all__ = ["BATCH_INTERVAL", "EXPORT_ACTION", "READ_ACTION", "ReadLog", "export_entry"]

#: At most one audit write per ring per this interval for loads of secret material.
BATCH_INTERVAL = dt.timedelta(minutes=1)
READ_ACTION = "read-material"
EXPORT_ACTION = "export-public"

Entry = Callable[[str, str, int | None, str], AuditEntry]


def export_entry(entry: Entry, ring: str, versions: Sequence[int], format: str) -> AuditEntry:
    """The record of exporting ``ring``'s public keys ``versions`` as ``format``."""
    listed = ", ".join(f"v{n}" for n in versions) or "none"
    one = versions[0] if len(versions) == 1 else None
    return entry(EXPORT_ACTION, ring, one, f"public key exported as {format}: {listed}")


class ReadLog:
    """Loads of secret material, recorded per ring at most once per :data:`BATCH_INTERVAL`."""

    def __init__(
        self,
        append: Callable[[Sequence[AuditEntry]], None],
        entry: Entry,
        now: Callable[[], dt.datetime],
    ) -> None:
        self._append = append
        self._entry = entry
        self._now = now
        self._lock = threading.Lock()
        #: ring -> version -> (loads, first, last)
        self._pending: dict[str, dict[int, tuple[int, dt.datetime, dt.datetime]]] = {}
        self._written: dict[str, dt.datetime] = {}

    def loaded(self, ring: str, version: int) -> None:
        """Count one load of ``ring`` v``version``; write the ring's batch when it is due."""
        now = self._now()
        with self._lock:
            versions = self._pending.setdefault(ring, {})
            n, first, _ = versions.get(version, (0, now, now))
            versions[version] = (n + 1, first, now)
            last = self._written.get(ring)
            if last is not None and now - last < BATCH_INTERVAL:
                return
            batch = self._pending.pop(ring)
            self._written[ring] = now
        self._write(ring, batch)

    def flush(self) -> None:
        """Write every pending batch (on close)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for ring, batch in sorted(pending.items()):
            self._write(ring, batch)

    def _write(self, ring: str, batch: dict[int, tuple[int, dt.datetime, dt.datetime]]) -> None:
        entries = [
            self._entry(
                READ_ACTION,
                ring,
                number,
                f"{n} load{'s' if n != 1 else ''} of secret material, "
                f"{first.isoformat()} to {last.isoformat()}",
            )
            for number, (n, first, last) in sorted(batch.items())
        ]
        try:
            self._append(entries)
        except BaseException:  # not recorded: keep it for the next write
            with self._lock:
                merged = self._pending.setdefault(ring, {})
                for number, (n, first, last) in batch.items():
                    m, f, la = merged.get(number, (0, first, last))
                    merged[number] = (n + m, min(first, f), max(last, la))
            raise
