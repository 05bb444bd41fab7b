"""``keylife vault gc``: material blobs that no ring references, found and (on request) erased.

A blob ``m/<ring>/<version>/<id>`` is written before the commit point that references it, so a
crash, a kill or a lost check-and-set can leave one that no ring document names; so does a ring
document deleted outside keylife. :func:`collect` lists every blob whose ring document does not
name it in ``mat`` and that is older than ``min_age`` (a write in flight references its blob
within seconds; the default margin is an hour). It erases them (every KV version and the
metadata) only with ``apply``. Blobs whose age cannot be read are never erased.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .client import q
from .kv import KV

__all__ = ["DEFAULT_MIN_AGE", "GcReport", "Orphan", "collect"]

DEFAULT_MIN_AGE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Orphan:
    ring: str
    version: int
    blob: str
    created: dt.datetime | None

    @property
    def path(self) -> str:
        return f"m/{q(self.ring)}/{self.version}/{self.blob}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ring": self.ring,
            "version": self.version,
            "blob": self.blob,
            "created": self.created.isoformat() if self.created else None,
        }


@dataclass
class GcReport:
    dry_run: bool
    min_age: dt.timedelta
    orphans: list[Orphan] = field(default_factory=list)  # old enough: removed unless dry run
    young: list[Orphan] = field(default_factory=list)  # too recent (or age unknown): kept
    removed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "min_age_seconds": int(self.min_age.total_seconds()),
            "orphans": [o.to_dict() for o in self.orphans],
            "kept_young": [o.to_dict() for o in self.young],
            "removed": self.removed,
        }


def _when(raw: str) -> dt.datetime | None:
    """Vault's ``created_time`` (RFC 3339 with nanoseconds) as a UTC datetime."""
    try:
        return dt.datetime.fromisoformat(raw[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return None


def _folders(kv: KV, path: str, what: str) -> list[str]:
    return sorted(k[:-1] for k in kv.list(path, what=what) if k.endswith("/"))


def collect(
    kv: KV, *, now: dt.datetime, min_age: dt.timedelta = DEFAULT_MIN_AGE, apply: bool = False
) -> GcReport:
    """Find (and with ``apply``, erase) unreferenced material blobs older than ``min_age``."""
    report = GcReport(dry_run=not apply, min_age=min_age)
    for ring in _folders(kv, "m/", "list material"):
        got = kv.read(f"rings/{q(ring)}", what=f"read ring {ring}")
        mat = got.data.get("mat") if got is not None else None
        named = {str(k): str(v) for k, v in mat.items()} if isinstance(mat, dict) else {}
        for number in _folders(kv, f"m/{q(ring)}/", f"list material of {ring}"):
            if not number.isdigit():
                continue
            where = f"m/{q(ring)}/{number}/"
            blobs = kv.list_versions(where, what=f"list material of {ring} v{number}")
            if blobs is None:  # no detailed listing: ages unknown
                blobs = {k: (0, "") for k in kv.list(where, what=f"list {where}")}
            for blob, (_v, created) in sorted(blobs.items()):
                if named.get(number) == blob or blob.endswith("/"):
                    continue
                when = _when(created)
                orphan = Orphan(ring, int(number), blob, when)
                if when is None or now - when < min_age:
                    report.young.append(orphan)
                else:
                    report.orphans.append(orphan)
    if apply:
        for orphan in report.orphans:
            kv.destroy(orphan.path, what=f"erase unreferenced material of {orphan.ring}")
            report.removed += 1
    return report
