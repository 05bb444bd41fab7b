"""Answers that are not Vault's (issue 17 item 6), through the fault-injecting proxy.

A maintenance page, an empty body, ``{}`` or an HTML 404 in Vault's place is "Vault
unavailable: unexpected answer from ADDRESS" (exit 3), never "no rings" / "nothing was due" /
"0 records, chain intact". A well-formed empty listing where the store's marker says rings
exist is refused too. Transient faults (a dropped connection, 503 twice, a slow answer) are
retried and the command succeeds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

from keylife.vault import VaultKeyStore
from tests.vault.conftest import DevServer
from tests.vault.helpers import seed_due_rings
from tests.vault.proxy import Fault, FaultProxy

pytestmark = pytest.mark.vault


@pytest.fixture
def proxy(bao_dev: DevServer) -> Iterator[FaultProxy]:
    p = FaultProxy(bao_dev.addr)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def seeded(
    vault_store: VaultKeyStore,
    mounts: tuple[str, str],
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> str:
    """Two due rings; returns the store URL through the proxy."""
    seed_due_rings(vault_store, 2)
    monkeypatch.setenv("KEYLIFE_VAULT_DEADLINE", "2")
    monkeypatch.chdir(tmp_path)
    return proxy.store_url(*mounts)


def run(url: str, *args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, ["--json", "--store", url, *args])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


@pytest.mark.parametrize(
    ("kind", "status", "path", "command"),
    [
        ("html", 200, "/rings", ("key", "list")),
        ("empty", 200, "/rings", ("rotate",)),
        ("object", 200, "/rings", ("rotate", "--dry-run")),
        ("object", 200, "audit", ("audit", "verify")),
        ("html", 404, "metadata/rings", ("key", "list")),
        ("html", 404, "audit-head", ("audit", "verify")),
        ("empty", 200, "audit-head", ("audit", "verify")),
    ],
)
def test_not_a_vault_answer_is_unavailable(
    seeded: str, proxy: FaultProxy, kind: str, status: int, path: str, command: tuple[str, ...]
) -> None:
    proxy.add(Fault(kind, path=path, status=status))
    code, doc = run(seeded, *command)
    text = json.dumps(doc)
    assert code == 3, text
    assert f"unexpected answer from {proxy.addr}" in text


def test_vault_shaped_empty_listing_against_the_marker(seeded: str, proxy: FaultProxy) -> None:
    proxy.add(Fault("body", path="metadata/rings", status=404, body={"errors": []}))
    for command in (("key", "list"), ("rotate",)):
        code, doc = run(seeded, *command)
        assert code == 3, doc
        assert "marker" in json.dumps(doc)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_lasting_error_status_is_unavailable(seeded: str, proxy: FaultProxy, status: int) -> None:
    proxy.add(Fault("status", status=status))
    code, doc = run(seeded, "key", "list")
    assert code == 3, doc
    assert "Vault unavailable" in json.dumps(doc) and f"HTTP {status}" in json.dumps(doc)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", status=503, times=2),
        Fault("status", status=429, times=1),
        Fault("html", status=502, times=1),
        Fault("drop", method="GET", times=1),
        Fault("delay", seconds=0.3, times=5),
    ],
    ids=["503-twice", "429-once", "502-html-once", "drop-once", "slow"],
)
def test_transient_faults_are_retried(seeded: str, proxy: FaultProxy, fault: Fault) -> None:
    proxy.add(fault)
    code, doc = run(seeded, "key", "list")
    assert code == 0, doc
    assert fault.seen >= 1
    assert len(doc["rings"]) == 2  # type: ignore[arg-type]
