"""Vault stopped in the middle of `keylife rotate --concurrency 16` over 200 rings (Raft storage,
not dev mode): the run exits 3 within its deadline with a clear message, naming the rings it did
not attempt; once Vault is back, the next run completes with no version lost, each ring rotated
exactly once and the audit chain intact."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from keylife.vault import VaultKeyStore, open_store
from tests.vault.conftest import RaftCluster, http
from tests.vault.helpers import check_rings, seed_due_rings, start_rotate

pytestmark = [pytest.mark.vault, pytest.mark.slow]

N = 200
DEADLINE = 5.0


def audit_count(addr: str, token: str) -> int:
    status, body = http("GET", f"{addr}/v1/keylife/data/audit-head", token, timeout=2)
    return int(body["data"]["data"]["count"]) if status == 200 else 0


def test_vault_stopped_mid_rotation_then_next_run_completes(
    raft1: RaftCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", raft1.token)
    node = raft1.nodes[0]
    url = f"vault://127.0.0.1:{node.api_port}/keylife"
    with open_store(url, create=True) as store:
        names = seed_due_rings(store, N)

    proc = start_rotate(url, tmp_path, "--concurrency", "16", deadline=DEADLINE)
    try:
        end = time.monotonic() + 120
        while audit_count(node.addr, raft1.token) < 3 * 40:  # ~40 rings rotated
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < end
            time.sleep(0.05)
        stopped = time.monotonic()
        raft1.stop_all()  # Vault goes away mid-run
        out, err = proc.communicate(timeout=DEADLINE + 60)
        took = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err.decode()[-2000:]
    assert took < DEADLINE + 15, took
    report = json.loads(out)
    errors = [r["error"] for r in report["rings"] if r["status"] == "failed"]
    assert errors, report
    assert "Vault unavailable" in errors[0]
    assert node.addr in errors[0]  # names what was tried
    assert "Vault unavailable" in err.decode()
    rotated_before = sum(1 for r in report["rings"] if r["status"] == "succeeded")
    assert 0 < rotated_before < N
    skipped = [r for r in report["rings"] if r["status"] == "skipped"]
    assert skipped and all(r["error"].startswith("not attempted: ") for r in skipped)
    assert len(report["rings"]) == N  # every ring named: succeeded, failed or not attempted

    # Vault is back (sealed after the restart, as a real node would be)
    raft1.start(node)
    raft1.unseal(node)
    raft1.wait_active([node])
    proc = start_rotate(url, tmp_path, "--concurrency", "16", deadline=30)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-3000:]
    second = json.loads(out)
    assert not second["failed"]
    redone = {r["ring"] for r in second["rings"] if r["status"] == "succeeded"}
    assert {r["ring"] for r in skipped} <= redone  # the rest is finished by the next run

    with VaultKeyStore.from_url(url) as store:
        counts = check_rings(store, names)
        records = store.read_audit()
        from keylife.audit import verify_chain

        assert verify_chain(records, head=store.audit_head()).ok
    assert counts == {2: N}, counts
    creates = [(r.ring, r.version) for r in records if r.action == "create" and r.version == 2]
    assert sorted(creates) == sorted((n, 2) for n in names)  # each ring rotated exactly once
