"""Issue 13 item 4 on OpenBao: the operator token may delete the audit batches and head (its
policy allows delete on metadata); `audit verify` then says "0 records, chain intact", and
`audit verify --checkpoints` catches the wipe."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from keylife_cli.main import cli

from keylife.vault import open_store
from keylife.vault.policy import operator_policy_name
from tests.vault.conftest import DevServer, bao_dev, mounts, vault_env  # noqa: F401

pytestmark = pytest.mark.vault


def test_a_wipe_by_an_admin_token_is_caught_by_checkpoints(
    vault_env: DevServer,  # noqa: F811
    mounts: tuple[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    url = vault_env.store_url(*mounts)
    with open_store(url, create=True) as admin:
        policy = operator_policy_name(admin)
    status, made = vault_env.api("POST", "auth/token/create", {"policies": [policy], "ttl": "10m"})
    assert status == 200, made
    operator = made["auth"]["client_token"]
    monkeypatch.setenv("VAULT_TOKEN", operator)
    anchors = tmp_path / "anchors"

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--store", url, *args], catch_exceptions=False)

    assert run("key", "create", "orders", "--purpose", "data-encryption").exit_code == 0
    assert run("key", "rotate", "orders").exit_code == 0
    made_cp = run("audit", "checkpoint", "--out", str(anchors))
    assert made_cp.exit_code == 0, made_cp.output
    assert run("audit", "verify", "--checkpoints", str(anchors)).exit_code == 0

    kv = mounts[0]
    status, listing = vault_env.api("LIST", f"{kv}/metadata/audit", token=operator)
    assert status == 200, listing
    # The operator policy may not delete audit metadata (tests/vault/test_operator_wipe.py);
    # an administrator's token still can, and the checkpoints are what catch it.
    for batch in listing["data"]["keys"]:
        assert vault_env.api("DELETE", f"{kv}/metadata/audit/{batch}", token=operator)[0] == 403
        assert vault_env.api("DELETE", f"{kv}/metadata/audit/{batch}")[0] == 204
    assert vault_env.api("DELETE", f"{kv}/metadata/audit-head")[0] == 204

    plain = run("audit", "verify")
    assert plain.exit_code == 0 and "0 records, chain intact" in plain.output
    anchored = run("audit", "verify", "--checkpoints", str(anchors))
    assert anchored.exit_code == 1
    assert "records were removed (truncated or wiped)" in anchored.output
