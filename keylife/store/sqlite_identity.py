"""The embedded store's id and the sealing bound to it (see :class:`keylife.sealing.Sealer`).

``keylife init`` gives a new store a random id in its ``meta`` table; a store whose blobs
predate the id keeps reading them in the old format until ``keylife store rekey``, which
re-seals every blob bound to a new id in the same transaction as the key change
(:func:`reseal_all`). From then on the store refuses old-format blobs.
"""

from __future__ import annotations

import sqlite3

from ..sealing import MasterKey, Sealer, associated_data, new_store_id

__all__ = ["INIT_STORE_ID", "reseal_all"]

#: Run by ``init`` with a fresh id: only a store with no sealed blob yet gets one.
INIT_STORE_ID = (
    "INSERT OR IGNORE INTO meta SELECT 'store_id', ? WHERE NOT EXISTS (SELECT 1 FROM material)"
)


def reseal_all(db: sqlite3.Connection, old: Sealer, new: MasterKey) -> Sealer:
    """Re-seal every blob under ``new`` bound to the store's id (made now for a store without
    one) and record the id; call inside the rekey transaction. The new sealer."""
    sealer = Sealer(new, old.store_id or new_store_id())
    rows = db.execute("SELECT ring, version, blob FROM material").fetchall()
    for ring, version, blob in rows:
        ad = associated_data(ring, version)
        plain = old.open(bytes(blob), ad, what=f"{ring} v{version}")
        db.execute(
            "UPDATE material SET blob=? WHERE ring=? AND version=?",
            (sealer.seal(plain, ad), ring, version),
        )
    db.execute("INSERT OR REPLACE INTO meta VALUES ('store_id', ?)", (sealer.store_id,))
    return sealer
