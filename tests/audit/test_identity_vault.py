"""Issue 13 item 1 on OpenBao: a token whose display name is svc-a, run with --actor svc-b,
is recorded as svc-a (with its accessor) acting on behalf of svc-b."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

from keylife.vault import open_store
from keylife.vault.policy import operator_policy_name
from tests.vault.conftest import DevServer, bao_dev, mounts, vault_env  # noqa: F401

pytestmark = pytest.mark.vault


def test_vault_token_identity_is_recorded_beside_the_claimed_actor(
    vault_env: DevServer,  # noqa: F811
    mounts: tuple[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = vault_env.store_url(*mounts)
    with open_store(url, create=True) as admin:
        policy = operator_policy_name(admin)
    status, made = vault_env.api(
        "POST", "auth/token/create", {"policies": [policy], "display_name": "svc-a", "ttl": "10m"}
    )
    assert status == 200, made
    token, accessor = made["auth"]["client_token"], made["auth"]["accessor"]
    monkeypatch.setenv("VAULT_TOKEN", token)
    runner = CliRunner()
    created = runner.invoke(
        cli,
        ["--store", url, "--actor", "svc-b", "key", "create", "orders", "--purpose", "signing"],
        catch_exceptions=False,
    )
    assert created.exit_code == 0, created.output
    shown = runner.invoke(cli, ["--store", url, "--json", "audit", "show"])
    records = json.loads(shown.stdout)["records"]
    assert records and all(r["actor"] == "svc-b" for r in records)
    assert {r["identity"] for r in records} == {f"vault:token-svc-a accessor={accessor}"}
    assert token not in shown.stdout
    verified = runner.invoke(cli, ["--store", url, "audit", "verify"])
    assert verified.exit_code == 0, verified.output
    report = runner.invoke(cli, ["--store", url, "--json", "report"])
    actors = json.loads(report.stdout)["audit"]["actors"]
    assert actors == [
        {
            "identity": f"vault:token-svc-a accessor={accessor}",
            "on_behalf_of": "svc-b",
            "records": 2,
        }
    ]
