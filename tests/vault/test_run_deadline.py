"""A whole-run deadline, and SIGTERM finishing the current commit (issue 17 item 8).

Vault's answers are slowed by the fault proxy. With a deadline, rings not reached in time are
skipped, named, and the lease is released; SIGTERM lets the ring in progress finish, releases
the lease and prints the report (before: the process died with the lease held).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import keylife
from keylife.rotation.runner import LEASE_NAME, Runner
from keylife.vault import VaultKeyStore
from tests.vault.conftest import DevServer
from tests.vault.helpers import check_rings, seed_due_rings, start_rotate
from tests.vault.proxy import Fault, FaultProxy

pytestmark = pytest.mark.vault


@pytest.fixture
def proxy(bao_dev: DevServer) -> Iterator[FaultProxy]:
    p = FaultProxy(bao_dev.addr)
    try:
        yield p
    finally:
        p.close()


@pytest.mark.parametrize("concurrency", [1, 2])
def test_deadline_bounds_the_whole_run(
    vault_store: VaultKeyStore,
    proxy: FaultProxy,
    mounts: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    concurrency: int,
) -> None:
    """With threads, rings in flight at the deadline finish and no new ring starts."""
    monkeypatch.chdir(tmp_path)
    names = seed_due_rings(vault_store, 4 + 4 * concurrency, prefix="dl")
    proxy.add(Fault("delay", path="/v1/", seconds=0.1))
    with keylife.open(VaultKeyStore.from_url(proxy.store_url(*mounts)), actor="a") as m:
        start = time.monotonic()
        report = Runner(m, deadline=4.0, concurrency=concurrency).run()
        took = time.monotonic() - start
    assert "deadline of 4 s passed" in report.aborted, report
    skipped = [r.ring for r in report.rings if r.status == "skipped"]
    assert skipped and all("deadline" in r.error for r in report.rings if r.status == "skipped")
    assert report.count("succeeded") >= 1
    assert took < 4.0 + 10  # at most the ring in progress past the deadline
    assert vault_store.read_lease(LEASE_NAME) is None
    counts = check_rings(vault_store, names)
    assert counts[2] == report.count("succeeded") and counts[1] == len(skipped)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_sigterm_finishes_the_commit_releases_the_lease_and_reports(
    vault_store: VaultKeyStore,
    proxy: FaultProxy,
    mounts: tuple[str, str],
    tmp_path: Path,
    concurrency: int,
) -> None:
    """SIGTERM: the rings in flight (one per thread) finish, none starts after it."""
    names = seed_due_rings(vault_store, 8, prefix="sig")
    proxy.add(Fault("delay", path="/v1/", seconds=0.1))
    proc = start_rotate(
        proxy.store_url(*mounts), tmp_path, "--concurrency", str(concurrency), deadline=10
    )
    try:
        end = time.monotonic() + 60
        while not any(m == "POST" and "/data/rings/" in p for m, p in proxy.requests):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < end
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err.decode()[-2000:]
    report = json.loads(out)
    assert "stopped by SIGTERM" in report["aborted"]
    statuses = [r["status"] for r in report["rings"]]
    assert "succeeded" in statuses and "skipped" in statuses and "failed" not in statuses
    assert vault_store.read_lease(LEASE_NAME) is None
    counts = check_rings(vault_store, names)
    assert counts[2] == statuses.count("succeeded") and counts[1] == statuses.count("skipped")
