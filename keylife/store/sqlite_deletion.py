"""Deleting a ring from the embedded store (:meth:`SqliteStore.delete_ring`).

The ring's row goes; its name goes into the table ``deleted_rings`` (made on the first
deletion) with the highest version number the ring issued, so the name is never created again
(:func:`refuse_deleted`, called by every create) and no version number is ever issued twice
under it. Both run inside the store's write transaction, with the audit records the caller
appends in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from ..audit import AuditEntry
from ..errors import ConflictError, NotFoundError, RingNotEmptyError
from .base import deleted_names, deleted_ring_error

__all__ = ["TOMBSTONES", "delete_ring", "refuse_deleted", "remember_deleted"]

TOMBSTONES = (
    "CREATE TABLE IF NOT EXISTS deleted_rings (name TEXT PRIMARY KEY, issued INTEGER NOT NULL)"
)


def _issued(doc: str) -> int:
    """The highest version number a stored ring document issued (0 if it does not say)."""
    try:
        nxt = json.loads(doc).get("next_version")
    except (ValueError, AttributeError):
        return 0
    return nxt - 1 if isinstance(nxt, int) and not isinstance(nxt, bool) and nxt > 1 else 0


def delete_ring(db: sqlite3.Connection, name: str, expected_revision: int) -> None:
    """Remove ring ``name`` at revision ``expected_revision`` (inside a write transaction)."""
    row = db.execute("SELECT revision, doc FROM rings WHERE name=?", (name,)).fetchone()
    if row is None:
        raise NotFoundError(f"no ring named {name!r}")
    if int(row[0]) != expected_revision:
        raise ConflictError(
            f"ring {name} changed underneath (revision {row[0]}, expected {expected_revision})"
        )
    left = tuple(
        int(r[0])
        for r in db.execute(
            "SELECT version FROM material WHERE ring=? ORDER BY version", (name,)
        ).fetchall()
    )
    if left:
        raise RingNotEmptyError(
            f"ring {name} cannot be deleted: the store still holds material of "
            f"{', '.join(f'v{n}' for n in left)}; destroy it first (`keylife key destroy "
            f"{name} N`)",
            ring=name,
            versions=left,
        )
    db.execute(TOMBSTONES)
    db.execute("INSERT OR REPLACE INTO deleted_rings VALUES (?, ?)", (name, _issued(str(row[1]))))
    db.execute("DELETE FROM rings WHERE name=?", (name,))


def refuse_deleted(db: sqlite3.Connection, name: str) -> None:
    """Raise :class:`RingDeletedError` when ``name`` belonged to a deleted ring."""
    try:
        row = db.execute("SELECT 1 FROM deleted_rings WHERE name=?", (name,)).fetchone()
    except sqlite3.OperationalError:  # no such table: this store never deleted a ring
        return
    if row is not None:
        raise deleted_ring_error(name)


def remember_deleted(db: sqlite3.Connection, entries: Sequence[AuditEntry]) -> None:
    """Tombstones for the rings whose successful ``delete`` record is in ``entries``: a store
    restored from a backup, or migrated, refuses their names as the source did."""
    names = deleted_names(entries)
    if not names:
        return
    db.execute(TOMBSTONES)
    db.executemany("INSERT OR IGNORE INTO deleted_rings VALUES (?, 0)", [(n,) for n in names])
