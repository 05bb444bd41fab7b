"""A run whose lease lapsed stops before writing (issue 17 item 5); an expired token stops a
run with "token expired", exit 3, and the lease released where possible (item 7).

Runner A reaches Vault through the fault proxy, whose Transit encrypt answers are slower than
A's lease; runner B takes the lapsed lease and rotates every ring. A must not commit on top
(before: it committed ``v1 -> v3``).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

import keylife
from keylife.rotation.results import RunReport
from keylife.rotation.runner import LEASE_NAME, Runner
from keylife.vault import VaultKeyStore
from tests.vault.conftest import DevServer
from tests.vault.helpers import check_rings, seed_due_rings
from tests.vault.proxy import Fault, FaultProxy

pytestmark = pytest.mark.vault


@pytest.fixture
def proxy(bao_dev: DevServer) -> Iterator[FaultProxy]:
    p = FaultProxy(bao_dev.addr)
    try:
        yield p
    finally:
        p.close()


def test_lapsed_lease_stops_the_run_before_it_writes(
    vault_store: VaultKeyStore,
    proxy: FaultProxy,
    mounts: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    names = seed_due_rings(vault_store, 3, prefix="lap")
    proxy.add(Fault("delay", path="/encrypt/keylife", seconds=3.0))
    reports: list[RunReport] = []

    def run_a() -> None:
        with keylife.open(VaultKeyStore.from_url(proxy.store_url(*mounts)), actor="a") as m:
            reports.append(Runner(m, lease_ttl=dt.timedelta(seconds=2), holder="runner-a").run())

    a = threading.Thread(target=run_a)
    a.start()
    end = time.monotonic() + 10
    while (lease := vault_store.read_lease(LEASE_NAME)) is None or lease.holder != "runner-a":
        assert time.monotonic() < end
        time.sleep(0.02)
    with keylife.open(VaultKeyStore.from_url(vault_store.url), actor="b") as m:
        b = Runner(m, lease_ttl=dt.timedelta(seconds=60), wait=10, holder="runner-b").run()
    assert not b.failed and len(b.rings) == 3
    a.join(30)
    (report_a,) = reports
    assert "lease" in report_a.aborted and "lap-" in report_a.aborted, report_a
    assert not [r for r in report_a.rings if r.status == "succeeded"]
    assert check_rings(vault_store, names) == {2: 3}  # each rotated once, by B


def test_expired_token_stops_the_run_and_releases_the_lease(
    vault_store: VaultKeyStore,
    proxy: FaultProxy,
    mounts: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    seed_due_rings(vault_store, 4, prefix="tok")
    # from the first ring's material write on, Vault sees a dead token (lease paths excepted,
    # so the release can be observed)
    proxy.add(Fault("revoke", path="/v1/", exclude="leases/", armed_by="/data/m/"))
    result = CliRunner().invoke(cli, ["--json", "--store", proxy.store_url(*mounts), "rotate"])
    doc = json.loads(result.stdout)
    assert result.exit_code == 3, doc
    text = json.dumps(doc)
    assert "token expired or was revoked" in text
    statuses = [r["status"] for r in doc["rings"]]
    assert statuses.count("succeeded") == 0 and "skipped" in statuses, statuses
    lease = vault_store.read_lease(LEASE_NAME)
    assert lease is None  # released
