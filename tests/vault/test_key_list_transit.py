"""``keylife key list`` on Vault shows transit-resident rings (keys that never leave Vault),
marked, with their state summary, after the store's own rings (issue 14 item 6)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

import keylife
from keylife.clock import SystemClock
from keylife.vault import VaultKeyStore

pytestmark = pytest.mark.vault


def test_key_list_marks_transit_resident_rings(vault_store: VaultKeyStore) -> None:
    keylife.KeyManager(vault_store, actor="ops").create_ring("app", "aes-256", "data-encryption")
    transit = vault_store.transit_rings(actor="ops", clock=SystemClock())
    transit.create("docs")
    transit.rotate("docs")
    transit.create("apx")

    def listing(*args: str) -> str:
        result = CliRunner().invoke(
            cli, ["--store", vault_store.url, *args, "key", "list"], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        return result.output

    rings = json.loads(listing("--json"))["rings"]
    assert [(r["name"], r["transit"]) for r in rings] == [
        ("app", False),
        ("apx", True),
        ("docs", True),
    ]
    docs = rings[2]
    assert docs["key"] == "kl-docs" and docs["type"] == "aes256-gcm96"
    assert docs["primary"] == 2 and docs["versions"] == 2
    assert docs["state_summary"] == "v2 active, v1 processing"
    text = listing()
    assert "transit:docs" in text and "v2 active, v1 processing" in text
    assert "transit:apx" in text and "\napp " in text
    result = CliRunner().invoke(
        cli,
        ["--store", vault_store.url, "--json", "key", "list", "--prefix", "ap", "--limit", "2"],
        catch_exceptions=False,
    )
    assert [r["name"] for r in json.loads(result.output)["rings"]] == ["app", "apx"]
