"""Several processes writing at once: no lost update, no reused version number, intact chain."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from keylife import contention, writer
from keylife.errors import ConflictError
from keylife.keygen import fingerprint
from keylife.writer import RingWriter

WORKER = r"""
import os, sys, time
import keylife

db, key_file, me, go, rounds = sys.argv[1:6]
m = keylife.open(db, master_key_file=key_file, actor=f"worker-{me}")
while not os.path.exists(go):
    time.sleep(0.001)
for j in range(int(rounds)):
    v = m.rotate("shared")
    print("rotated shared", v.number, v.fingerprint, flush=True)
    v = m.create_ring(f"p{me}-{j}", "ec-p256", "signing")
    print("created", f"p{me}-{j}", v.number, v.fingerprint, flush=True)
    try:
        m.create_ring("contested", "aes-256", "data-encryption")
        print("created contested 1 -", flush=True)
    except keylife.AlreadyExistsError:
        pass
"""

WORKERS = 4
ROUNDS = 8


def test_concurrent_writers(store, tmp_path: Path) -> None:
    with store.open() as m:
        m.create_ring("shared", "ec-p256", "signing")
    go = tmp_path / "go"
    procs = [
        store.python(WORKER, str(store.db), str(store.key_file), str(i), str(go), str(ROUNDS))
        for i in range(WORKERS)
    ]
    time.sleep(1.0)  # let every worker import keylife and open the store
    go.touch()
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=120)
            results.append((p.returncode, out, err))
    finally:  # a failed wait still ends every worker and closes its pipes
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
    for returncode, _out, err in results:
        assert returncode == 0, err
    outputs = [out.splitlines() for _rc, out, _err in results]

    shared_numbers = [int(line.split()[2]) for out in outputs for line in out if "shared" in line]
    assert len(shared_numbers) == WORKERS * ROUNDS
    assert len(set(shared_numbers)) == len(shared_numbers), "a version number was reused"
    contested = [line for out in outputs for line in out if "contested" in line]
    assert len(contested) == 1, "two writers both created the same ring"

    with store.open() as m:
        shared = m.load("shared")
        numbers = [v.number for v in shared.versions]
        # No lost update: the first version plus every reported rotation, nothing missing.
        assert numbers == list(range(1, WORKERS * ROUNDS + 2))
        assert sorted(shared_numbers) == numbers[1:]
        assert sum(v.protects_at(m.now()) for v in shared.versions) == 1
        # Each rotation superseded exactly the primary it saw: a clean chain of replacements.
        for v in shared.versions[1:]:
            assert v.replaces == v.number - 1
        for v in shared.versions[:-1]:
            assert v.state.value == "deactivated" and v.replaced_by == v.number + 1
        for out in outputs:
            for line in out:
                _, ring, number, fp = line.split()
                if fp != "-":
                    version = m.load(ring).get(int(number))
                    assert fingerprint(RingWriter.material(m, version)) == fp
        assert len(m.rings()) == 2 + WORKERS * ROUNDS
        assert m.verify_audit().ok
        records = m.audit_records()
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        actors = {r.actor for r in records}
        assert {f"worker-{i}" for i in range(WORKERS)} <= actors
    assert store.sh("audit", "verify").returncode == 0


class LosingStore:
    """The embedded store, except that its first ``losses`` ring commits lose a
    check-and-set race (as they would to another writer)."""

    def __init__(self, inner: object, losses: int) -> None:
        self._inner = inner
        self.losses = losses
        self.commits = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def commit(self, *args: object, **kwargs: object) -> object:
        self.commits += 1
        if self.commits <= self.losses:
            raise ConflictError("check-and-set lost")
        return self._inner.commit(*args, **kwargs)  # type: ignore[attr-defined]


def test_a_writer_that_keeps_losing_keeps_trying_within_its_patience(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More losses in a row than CAS_RETRIES, within CAS_PATIENCE: the rotation lands."""
    monkeypatch.setattr(writer, "cas_backoff", lambda attempt: time.sleep(0.01))
    with store.open() as m:
        m.create_ring("busy", "aes-256", "data-encryption")
        losing = LosingStore(m.store, losses=contention.CAS_RETRIES + 4)
        m.store = losing  # type: ignore[assignment]
        assert m.rotate("busy").number == 2
        assert losing.commits == contention.CAS_RETRIES + 5
        assert m.verify_audit().ok


def test_a_writer_that_never_wins_gives_up_when_its_patience_is_spent(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past CAS_RETRIES attempts and CAS_PATIENCE seconds: ConflictError, nothing written,
    the refusal audited."""
    monkeypatch.setattr(contention, "CAS_PATIENCE", 0.3)
    monkeypatch.setattr(writer, "cas_backoff", lambda attempt: time.sleep(0.01))
    with store.open() as m:
        m.create_ring("busy", "aes-256", "data-encryption")
        inner = m.store
        losing = LosingStore(inner, losses=10**6)
        m.store = losing  # type: ignore[assignment]
        started = time.monotonic()
        with pytest.raises(ConflictError, match="kept changing underneath"):
            m.rotate("busy")
        assert 0.3 <= time.monotonic() - started < 5
        assert losing.commits >= contention.CAS_RETRIES
        m.store = inner  # type: ignore[assignment]
        assert [v.number for v in m.load("busy").versions] == [1]
        assert m.audit_records()[-1].outcome.startswith("failure: ring busy kept changing")
