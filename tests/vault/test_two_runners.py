"""Two `keylife rotate` processes against the same Vault at once rotate each due ring once."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import keylife
from keylife.lifecycle import State
from keylife.vault import VaultKeyStore, open_store
from tests.vault.conftest import DevServer

pytestmark = pytest.mark.vault

N = 80


def keylife_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from keylife_cli.main import main; main()", *args]


def make_due_rings(url: str, n: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with keylife.open(VaultKeyStore.from_url(url), actor="setup") as m:
        for i in range(n):
            m.create_ring(
                f"svc-{i:03d}",
                "ec-p256",
                "signing",
                activate_at=now,
                deactivate_at=now + dt.timedelta(hours=1),  # inside the lead time: due
            )


@pytest.mark.parametrize("wait", [False, True], ids=["exit-4", "wait"])
def test_two_rotate_processes_rotate_each_ring_once(
    vault_env: DevServer, mounts: tuple[str, str], tmp_path: Path, wait: bool
) -> None:
    url = vault_env.store_url(*mounts)
    open_store(url, create=True).close()
    make_due_rings(url, N)
    env = {**os.environ, "KEYLIFE_STORE": url}
    procs = [
        subprocess.Popen(
            # Without --wait the run that does not get the lease exits 4 (or finds nothing
            # due); with --wait it re-plans under the lease for the current time and finds
            # nothing left (a run that re-planned at its start time used to rotate again).
            keylife_cmd(
                "--json", "--actor", f"runner-{i}", "rotate", *(["--wait", "120"] if wait else [])
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    expected = ([0, 0],) if wait else ([0, 0], [0, 4])
    assert codes in expected, [err.decode()[-2000:] for _o, err in outputs]
    reports = [json.loads(out) for out, _ in outputs]
    reports = [r for r in reports if "rings" in r]  # the locked-out run prints an error document

    with keylife.open(VaultKeyStore.from_url(url)) as m:
        rings = m.rings()
        records = m.audit_records()
        assert m.verify_audit().ok
    assert len(rings) == N
    for ring in rings:
        assert [v.number for v in ring.versions] == [1, 2], (
            ring.name,
            [(r.seq, r.actor, r.action, r.version, r.at) for r in records if r.ring == ring.name],
            [
                [(x["ring"], x["steps"]) for x in rep["rings"] if x["ring"] == ring.name]
                for rep in reports
            ],
            [rep["as_of"] for rep in reports],
        )
        assert [v.state for v in ring.versions] == [State.DEACTIVATED, State.ACTIVE]
    creates = Counter((r.ring, r.version) for r in records if r.action == "create")
    assert all(creates[(f"svc-{i:03d}", 2)] == 1 for i in range(N))
    # each ring was rotated by exactly one of the two runs
    rotated = Counter(
        ring["ring"]
        for report in reports
        for ring in report["rings"]
        if any(s["kind"] == "rotate" and s["outcome"] == "succeeded" for s in ring["steps"])
    )
    assert sorted(rotated) == sorted(r.name for r in rings)
    assert set(rotated.values()) == {1}
    actors = {r.actor for r in records if r.action == "create" and r.version == 2}
    assert actors <= {"runner-0", "runner-1"} and actors
