"""Several processes writing at once: no lost update, no reused version number, intact chain."""

from __future__ import annotations

import time
from pathlib import Path

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
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outputs.append(out.splitlines())

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
