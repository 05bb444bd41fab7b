"""The embedded store's large-store capabilities (:mod:`keylife.store.schedule`).

**Quiet records.** Table ``schedule`` holds one row per ring the planner found nothing due for:
the ring's revision, the planner digest, when (``checked``) and until when (``until``) it is
quiet, and its next event. Times are integer microseconds since the Unix epoch (UTC). A row is
trusted only while the ring is still at that revision, for the same digest, and
``checked <= now < until``. On top of the revision check, triggers delete a ring's row whenever
its ``rings`` row is updated or deleted or any of its ``material`` rows changes; triggers live
in the database, so writers that do not know this table (an older keylife, ``sqlite3``) void
the rows too. The table, its index and triggers are created by the first run that records rows;
a store without them is planned in full, as before.

**Paging.** :func:`iter_rings` reads rings a page at a time in name order (keyset pagination,
the lock held per page only), so listing 100,000 rings never holds them all.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager

from ..lifecycle import Ring, decode_ring
from .schedule import QuietRing, RingsToPlan
from .sqlite_counts import TABLE as COUNTS_TABLE

__all__ = ["SCHEDULE_SCHEMA", "iter_rings", "remember_quiet", "rings_to_plan"]

SCHEDULE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS schedule (name TEXT PRIMARY KEY, revision INTEGER NOT NULL, "
    "digest TEXT NOT NULL, checked INTEGER NOT NULL, until INTEGER NOT NULL, next_due INTEGER)"
    " WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS schedule_until ON schedule(until)",
    # a covering index: the quiet check reads names and revisions, never the documents
    "CREATE INDEX IF NOT EXISTS rings_name_revision ON rings(name, revision)",
    "CREATE TRIGGER IF NOT EXISTS schedule_ring_update AFTER UPDATE ON rings BEGIN "
    "DELETE FROM schedule WHERE name IN (old.name, new.name); END",
    "CREATE TRIGGER IF NOT EXISTS schedule_ring_delete AFTER DELETE ON rings BEGIN "
    "DELETE FROM schedule WHERE name = old.name; END",
    "CREATE TRIGGER IF NOT EXISTS schedule_ring_insert AFTER INSERT ON rings BEGIN "
    "DELETE FROM schedule WHERE name = new.name; END",
    "CREATE TRIGGER IF NOT EXISTS schedule_material_insert AFTER INSERT ON material BEGIN "
    "DELETE FROM schedule WHERE name = new.ring; END",
    "CREATE TRIGGER IF NOT EXISTS schedule_material_update AFTER UPDATE ON material BEGIN "
    "DELETE FROM schedule WHERE name IN (old.ring, new.ring); END",
    "CREATE TRIGGER IF NOT EXISTS schedule_material_delete AFTER DELETE ON material BEGIN "
    "DELETE FROM schedule WHERE name = old.ring; END",
    # a ring's encryption count can make it due (max_messages) without writing the ring
    COUNTS_TABLE,
    "CREATE TRIGGER IF NOT EXISTS schedule_count_insert AFTER INSERT ON encryptions BEGIN "
    "DELETE FROM schedule WHERE name = new.ring; END",
    "CREATE TRIGGER IF NOT EXISTS schedule_count_update AFTER UPDATE ON encryptions BEGIN "
    "DELETE FROM schedule WHERE name IN (old.ring, new.ring); END",
)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)
#: Rings read per page by :func:`iter_rings` (and per lookup batch by :func:`rings_to_plan`).
PAGE = 256

Reading = Callable[[], AbstractContextManager[sqlite3.Connection]]


def micros(when: dt.datetime) -> int:
    return (when - _EPOCH) // _MICRO


def _time(value: object) -> dt.datetime | None:
    """A stored time; None for anything else (a tampered row: the run then reports no next
    event for the ring, and still plans it when its record ends)."""
    if not isinstance(value, int):
        return None
    try:
        return _EPOCH + value * _MICRO
    except OverflowError:
        return None


def _revision(value: object) -> int:
    return value if isinstance(value, int) else -1


def has_schedule(db: sqlite3.Connection) -> bool:
    row = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schedule'"
    ).fetchone()
    return row is not None


_CHECK = (
    "SELECT r.name, s.name IS NOT NULL, s.next_due FROM rings r "
    "LEFT JOIN schedule s ON s.name = r.name AND s.revision = r.revision AND s.digest = ? "
    "AND typeof(s.checked) = 'integer' AND typeof(s.until) = 'integer' "
    "AND s.checked <= ? AND s.until > ? ORDER BY r.name"
)


_NAMED = (
    "SELECT name, doc, revision FROM rings WHERE name IN (SELECT value FROM json_each(?)) "
    "ORDER BY name"
)


def rings_to_plan(reading: Reading, digest: str, now: dt.datetime) -> RingsToPlan:
    """See :meth:`keylife.store.schedule.SchedulingStore.rings_to_plan`: the names are read
    now, the rings a page at a time when the run asks (``reading()``: the connection under the
    store's lock)."""
    quiet: dict[str, dt.datetime | None] = {}
    load: list[str] = []
    with reading() as db:
        if not has_schedule(db):
            load = [str(n) for (n,) in db.execute("SELECT name FROM rings ORDER BY name")]
        else:
            at = micros(now)
            for name, valid, next_due in db.execute(_CHECK, (digest, at, at)):
                if valid:
                    quiet[str(name)] = _time(next_due)
                else:
                    load.append(str(name))

    def load_named(names: Sequence[str]) -> list[Ring]:
        with reading() as db:
            rows = db.execute(_NAMED, (json.dumps(list(names)),)).fetchall()
        return [decode_ring(doc, _revision(rev), str(n)) for n, doc, rev in rows]

    return RingsToPlan(tuple(load), quiet, load_named)


def remember_quiet(db: sqlite3.Connection, quiet: Sequence[QuietRing]) -> int:
    """See :meth:`keylife.store.schedule.SchedulingStore.remember_quiet` (inside a write
    transaction: the row is written only if the ring is still at the entry's revision)."""
    for statement in SCHEDULE_SCHEMA:
        db.execute(statement)
    written = 0
    for q in quiet:
        cursor = db.execute(
            "INSERT OR REPLACE INTO schedule SELECT name, revision, ?, ?, ?, ? FROM rings "
            "WHERE name = ? AND revision = ?",
            (
                q.digest,
                micros(q.checked),
                micros(q.until),
                None if q.next_due is None else micros(q.next_due),
                q.name,
                q.revision,
            ),
        )
        written += max(cursor.rowcount, 0)
    return written


def iter_rings(
    reading: Reading, *, prefix: str = "", limit: int | None = None, page: int | None = None
) -> Iterator[Ring]:
    """Rings whose name starts with ``prefix`` in name order, at most ``limit``, ``page`` at a
    time; ``reading()`` gives the connection under the store's lock for one page."""
    left = limit
    last: str | None = None
    page = page or PAGE
    while left is None or left > 0:
        size = page if left is None else min(page, left)
        with reading() as db:
            if last is None:
                rows = db.execute(
                    "SELECT name, doc, revision FROM rings WHERE name >= ? ORDER BY name LIMIT ?",
                    (prefix, size),
                ).fetchall()
            else:
                rows = db.execute(
                    "SELECT name, doc, revision FROM rings WHERE name > ? ORDER BY name LIMIT ?",
                    (last, size),
                ).fetchall()
        for name, doc, rev in rows:
            if not str(name).startswith(prefix):
                return
            yield decode_ring(doc, _revision(rev), str(name))
        if len(rows) < size:
            return
        last = str(rows[-1][0])
        if left is not None:
            left -= len(rows)
