"""The embedded store's named leases (the rotation lock): one row per lease in ``leases``,
taken and released inside the store's write transactions."""

from __future__ import annotations

import datetime as dt
import sqlite3

from .base import Lease

__all__ = ["acquire", "read", "release"]


def acquire(
    db: sqlite3.Connection,
    name: str,
    holder: str,
    expires: dt.datetime,
    now: dt.datetime,
    takeover_from: str | None,
) -> Lease | None:
    """Take lease ``name`` for ``holder`` until ``expires`` unless another holder has it
    unexpired (``takeover_from``: a holder known to be dead); None when held."""
    row = db.execute("SELECT holder, expires FROM leases WHERE name=?", (name,)).fetchone()
    if (
        row is not None
        and row[0] not in (holder, takeover_from)
        and dt.datetime.fromisoformat(row[1]) > now
    ):
        return None
    db.execute(
        "INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (name, holder, expires.isoformat())
    )
    return Lease(name, holder, expires)


def read(db: sqlite3.Connection, name: str) -> Lease | None:
    """Lease ``name`` as stored, expired or not; None when there is none."""
    row = db.execute("SELECT holder, expires FROM leases WHERE name=?", (name,)).fetchone()
    return None if row is None else Lease(name, row[0], dt.datetime.fromisoformat(row[1]))


def release(db: sqlite3.Connection, name: str, holder: str) -> None:
    """Drop lease ``name`` if ``holder`` holds it."""
    db.execute("DELETE FROM leases WHERE name=? AND holder=?", (name, holder))
