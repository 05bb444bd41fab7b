"""A store that goes away mid-run stops the run (exit 3) instead of failing every ring."""

from __future__ import annotations

import datetime as dt
from typing import Any

import keylife
from keylife.errors import StoreUnavailableError
from keylife.rotation import run
from keylife.store.sqlite import SqliteStore

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class DiesAfter:
    """The real store, until ``commits`` writes have gone through (a unit-test fault wrapper)."""

    def __init__(self, store: SqliteStore, commits: int) -> None:
        self._store = store
        self._left = commits
        self.url = store.url

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        if self._left <= 0:
            raise StoreUnavailableError("store at fake://down unavailable (connection refused)")
        self._left -= 1
        return self._store.commit(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_store_outage_stops_the_run_and_the_next_run_catches_up(sqlite_store: SqliteStore) -> None:
    past = keylife.KeyManager(sqlite_store, clock=keylife.FixedClock(T0 - dt.timedelta(days=800)))
    for i in range(6):
        past.create_ring(f"r{i}", "aes-256", "data-encryption")
    flaky = DiesAfter(sqlite_store, commits=5)  # r0, r1 (2 steps each), then r2 half-way
    m = keylife.KeyManager(flaky, clock=keylife.FixedClock(T0))  # type: ignore[arg-type]
    report = run(m, now=T0)
    assert report.aborted
    assert "unavailable" in report.aborted
    statuses = [(r.ring, r.status) for r in report.rings]
    assert statuses[:3] == [("r0", "succeeded"), ("r1", "succeeded"), ("r2", "failed")]
    assert [s for _, s in statuses[3:]] == ["skipped"] * 3
    assert report.to_dict()["aborted"]
    again = run(keylife.KeyManager(sqlite_store, clock=keylife.FixedClock(T0)), now=T0)
    assert again.ok
    assert sorted(r.ring for r in again.rings) == ["r2", "r3", "r4", "r5"]
    for ring in sqlite_store.load_rings():
        assert [v.number for v in ring.versions] == [1, 2]
