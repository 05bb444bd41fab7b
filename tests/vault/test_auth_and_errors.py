"""AppRole login, `keylife init` on a Vault URL, and failures wrapped in keylife's errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

import keylife
from keylife.errors import StoreError, StoreUnavailableError
from keylife.vault import VaultKeyStore, open_store
from keylife.vault.policy import operator_policy_name
from tests.vault.conftest import DevServer, free_port

pytestmark = pytest.mark.vault


def test_approle_from_files(
    vault_env: DevServer, mounts: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = vault_env.store_url(*mounts)
    with open_store(url, create=True) as admin:
        policy = operator_policy_name(admin)
    status, _ = vault_env.api("POST", "sys/auth/approle", {"type": "approle"})
    assert status in (204, 400)  # 400: already enabled by another test
    role = f"kl-{mounts[0]}"
    assert (
        vault_env.api(
            "POST", f"auth/approle/role/{role}", {"token_policies": [policy], "token_ttl": "20m"}
        )[0]
        == 204
    )
    role_id = vault_env.api("GET", f"auth/approle/role/{role}/role-id")[1]["data"]["role_id"]
    secret_id = vault_env.api("POST", f"auth/approle/role/{role}/secret-id")[1]["data"]["secret_id"]
    (tmp_path / "role").write_text(role_id + "\n")
    (tmp_path / "secret").write_text(secret_id + "\n")
    monkeypatch.delenv("VAULT_TOKEN")
    monkeypatch.setenv("KEYLIFE_VAULT_ROLE_ID_FILE", str(tmp_path / "role"))
    monkeypatch.setenv("KEYLIFE_VAULT_SECRET_ID_FILE", str(tmp_path / "secret"))
    with keylife.open(VaultKeyStore.from_url(url), actor="approle") as m:
        m.create_ring("via-approle", "aes-256")
        assert m.ring("via-approle").primary().number == 1
        assert m.store.client.token not in (None, vault_env.token)  # type: ignore[attr-defined]
    # a wrong secret id: a clear refusal, not a traceback from hvac
    (tmp_path / "secret").write_text("not-a-secret-id")
    with pytest.raises(StoreError, match="AppRole login"), VaultKeyStore.from_url(url) as s:
        s.load_ring("via-approle")


def test_keylife_init_on_vault(vault_env: DevServer, mounts: tuple[str, str]) -> None:
    url = vault_env.store_url(*mounts)
    runner = CliRunner()
    result = runner.invoke(cli, ["--store", url, "init"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    status, cfg = vault_env.api("GET", f"{mounts[0]}/config")
    assert status == 200 and cfg["data"]["cas_required"] is True
    with keylife.open(url) as m:
        m.create_ring("after-init", "aes-256")
        assert m.store.list_ring_names() == ["after-init"]
        assert m.verify_audit().ok


def test_unreachable_vault_fails_within_deadline_naming_addresses(
    vault_env: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = [free_port(), free_port()]
    monkeypatch.setenv("KEYLIFE_VAULT_DEADLINE", "1.5")
    url = f"vault://127.0.0.1:{dead[0]},127.0.0.1:{dead[1]}/keylife"
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info, VaultKeyStore.from_url(url) as store:
        store.load_ring("x")
    took = time.monotonic() - start
    assert 1.4 < took < 4
    message = str(info.value)
    assert "Vault unavailable" in message and "deadline" in message
    assert f"127.0.0.1:{dead[0]}" in message and f"127.0.0.1:{dead[1]}" in message
    assert "connection refused" in message
    # the CLI: exit code 3 and the same message, no traceback
    result = CliRunner().invoke(cli, ["--store", url, "key", "list"])
    assert result.exit_code == 3, result.output
    assert "Vault unavailable" in result.output and "Traceback" not in result.output


def test_first_address_dead_second_alive(vault_env: DevServer, mounts: tuple[str, str]) -> None:
    live = vault_env.addr.split("://")[1]
    url = f"vault://127.0.0.1:{free_port()},{live}/{mounts[0]}?transit={mounts[1]}"
    with open_store(url, create=True) as store:
        assert store.list_ring_names() == []
