"""Issue 14 item 4: OpenBao's BAO_* variables work like VAULT_* (VAULT_* wins), an unset
VAULT_ADDR is named when nothing answers, and vaults:// refuses a plain-HTTP address."""

from __future__ import annotations

import pytest

from keylife.errors import StoreError
from keylife.vault.settings import VaultSettings
from keylife.vault.url import StoreLocation


def test_bao_names_are_read_and_vault_names_win() -> None:
    env = {"BAO_ADDR": "https://bao.example:8200", "BAO_TOKEN": "t-bao", "HOME": "/nonexistent"}
    s = VaultSettings.from_env(env=env)
    assert s.addresses == ["https://bao.example:8200"] and s.token == "t-bao"
    assert not s.address_defaulted
    both = VaultSettings.from_env(env={**env, "VAULT_ADDR": "https://v.example:8200"})
    assert both.addresses == ["https://v.example:8200"]


def test_an_unset_address_is_named_when_nothing_answers() -> None:
    s = VaultSettings.from_env(env={"HOME": "/nonexistent"})
    assert s.address_defaulted and s.addresses == ["https://127.0.0.1:8200"]


def test_vaults_refuses_plain_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:8200")
    with pytest.raises(StoreError, match="plain HTTP"):
        StoreLocation.parse("vaults:///keylife")
    assert StoreLocation.parse("vault:///keylife").settings.addresses == ["http://127.0.0.1:8200"]


def test_cli_says_vault_addr_is_not_set(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update(HOME=str(tmp_path), KEYLIFE_VAULT_DEADLINE="1", VAULT_TOKEN="x")
    keylife = str(Path(sys.executable).with_name("keylife"))
    done = subprocess.run(
        [keylife, "--store", "vaults:///keylife", "key", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "VAULT_ADDR (or BAO_ADDR) is not set" in done.stderr and "Traceback" not in done.stderr
