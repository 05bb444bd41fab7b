"""Per-version encryption counts in the embedded store: the ``encryptions`` table.

``encryptions(ring, version, count)``: messages encrypted per version, as added by
:meth:`SqliteStore.add_encryptions` (``count = count + n`` in the store's write transaction, so
additions from several processes never overwrite each other). The table is created the first
time a count is added, so stores made before it existed need no migration.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

__all__ = ["add", "read"]

TABLE = (
    "CREATE TABLE IF NOT EXISTS encryptions ("
    "ring TEXT NOT NULL, version INTEGER NOT NULL, count INTEGER NOT NULL, "
    "PRIMARY KEY (ring, version))"
)
_ADD = (
    "INSERT INTO encryptions VALUES (?, ?, ?) "
    "ON CONFLICT (ring, version) DO UPDATE SET count = count + excluded.count"
)


def add(
    db: sqlite3.Connection, counts: Mapping[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """Add ``counts`` inside the caller's write transaction; the new totals."""
    db.execute(TABLE)
    totals: dict[tuple[str, int], int] = {}
    for (ring, version), n in sorted(counts.items()):
        if n <= 0:
            continue
        db.execute(_ADD, (ring, int(version), int(n)))
        row = db.execute(
            "SELECT count FROM encryptions WHERE ring=? AND version=?", (ring, int(version))
        ).fetchone()
        totals[(ring, int(version))] = int(row[0])
    return totals


def read(db: sqlite3.Connection, ring: str) -> dict[int, int]:
    """The counts of ``ring`` per version ({} before any count was added)."""
    exists = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='encryptions'"
    ).fetchone()
    if exists is None:
        return {}
    rows = db.execute(
        "SELECT version, count FROM encryptions WHERE ring=? ORDER BY version", (ring,)
    ).fetchall()
    return {int(v): int(c) for v, c in rows}
