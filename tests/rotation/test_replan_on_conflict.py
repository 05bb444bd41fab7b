"""A lost answer to a commit that landed (a Vault leader killed mid-request) makes the writer
retry on the reloaded ring; the runner plans that ring again on every attempt, so it is never
rotated twice (issue 17 item 5; seen as {2: 499, 3: 1} in the Raft leader-kill test)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import keylife
from keylife.errors import ConflictError
from keylife.rotation import run
from keylife.store.sqlite import MasterKeyFile, SqliteStore

T0 = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


class LosesOneAnswer:
    """The embedded store, except that the first rotation commit lands and then reports a
    check-and-set conflict, as a commit whose answer was lost does on retry."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.lost = 0

    def commit(self, ring: Any, **kw: Any) -> Any:
        result = self._store.commit(ring, **kw)
        if not self.lost and kw.get("materials"):
            self.lost += 1
            raise ConflictError("the answer was lost; the write landed")
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_a_retried_rotation_is_planned_again_and_not_repeated(tmp_path: Path) -> None:
    store = SqliteStore.init(tmp_path / "k.db", MasterKeyFile(tmp_path / "mk"))
    past = keylife.KeyManager(store, clock=keylife.FixedClock(T0 - dt.timedelta(days=400)))
    past.create_ring("orders", "aes-256", "data-encryption")
    flaky = LosesOneAnswer(store)
    m = keylife.KeyManager(flaky, clock=keylife.FixedClock(T0))  # type: ignore[arg-type]
    report = run(m, now=T0)
    assert flaky.lost == 1 and report.ok
    assert [v.number for v in store.load_ring("orders").versions] == [1, 2]  # type: ignore[union-attr]
    store.close()
