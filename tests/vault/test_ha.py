"""Three-node Raft cluster: the leader is SIGKILLed during `keylife rotate --concurrency 16` over
200 rings; the run finishes through the surviving nodes, no version is lost, no ring is rotated
twice, and the audit chain (appended in groups by the run's threads) verifies."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from keylife.audit import verify_chain
from keylife.vault import VaultKeyStore, open_store
from tests.vault.conftest import RaftCluster
from tests.vault.helpers import check_rings, seed_due_rings, start_rotate
from tests.vault.test_outage import audit_count

pytestmark = [pytest.mark.vault, pytest.mark.slow]

N = 200


@pytest.fixture
def raft3(tmp_path: Path) -> RaftCluster:
    cluster = RaftCluster(tmp_path / "raft3", 3)
    try:
        cluster.form()
        yield cluster  # type: ignore[misc]
    finally:
        cluster.stop_all()


def test_leader_killed_during_rotation(
    raft3: RaftCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", raft3.token)
    hosts = ",".join(n.addr.split("://")[1] for n in raft3.nodes)
    url = f"vault://{hosts}/keylife"
    with open_store(url, create=True) as store:
        names = seed_due_rings(store, N)
    leader = raft3.leader()
    survivors = [n for n in raft3.nodes if n is not leader]

    proc = start_rotate(url, tmp_path, "--concurrency", "16", deadline=30)
    try:
        end = time.monotonic() + 120
        while audit_count(leader.addr, raft3.token) < 3 * 40:  # ~40 rings rotated
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < end
            time.sleep(0.05)
        raft3.kill(leader)  # SIGKILL, mid-run
        killed = time.monotonic()
        new_leader = raft3.wait_active(survivors)
        failover = time.monotonic() - killed
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()[-3000:]
    report = json.loads(out)
    assert not report["failed"]
    assert failover < 20

    with VaultKeyStore.from_url(f"vault://{new_leader.addr.split('://')[1]}/keylife") as store:
        counts = check_rings(store, names)
        records = store.read_audit()
        assert verify_chain(records, head=store.audit_head()).ok
    assert counts == {2: N}, counts  # every ring rotated, none twice, no version lost
    creates = sorted((r.ring, r.version) for r in records if r.action == "create")
    assert creates == sorted((n, 2) for n in names)
    rotated = [r["ring"] for r in report["rings"] if r["status"] == "succeeded"]
    assert sorted(rotated) == sorted(names)
