"""The config file: store, master key and policy without flags or environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

import keylife


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_config_file_chooses_store_key_and_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home_config = Path(str(tmp_path)) / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home_config))
    store = tmp_path / "elsewhere" / "k.db"
    key = tmp_path / "keys" / "master.key"
    _write(
        home_config / "keylife" / "config.toml",
        f'store = "{store}"\nmaster_key_file = "{key}"\npolicy = "128-bit"\n',
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert store.exists() and key.exists()
    refused = runner.invoke(
        cli, ["key", "create", "old", "--type", "rsa-2048", "--purpose", "signing"]
    )
    assert refused.exit_code == 1 and "128-bit profile" in refused.output
    assert runner.invoke(cli, ["key", "create", "ok", "--purpose", "signing"]).exit_code == 0
    with keylife.open() as m:  # the library reads the same file
        assert m.store.url.endswith(str(store)) and m.policy.profile == "128-bit"
        assert m.store.list_ring_names() == ["ok"]
    # flags and environment variables win over the file
    other = tmp_path / "other.db"
    assert runner.invoke(cli, ["--store", str(other), "init"]).exit_code == 0
    assert other.exists()
    monkeypatch.setenv("KEYLIFE_POLICY", "default")
    with keylife.open() as m:
        assert m.policy.profile == "default"


def test_config_file_errors_name_the_file_and_the_allowed_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = _write(tmp_path / "c.toml", 'store = "x.db"\ncolour = "blue"\n')
    monkeypatch.setenv("KEYLIFE_CONFIG", str(bad))
    result = CliRunner().invoke(cli, ["key", "list"])
    assert result.exit_code == 1
    assert (
        str(bad) in result.output
        and "colour" in result.output
        and "master_key_file" in result.output
    )
    monkeypatch.setenv("KEYLIFE_CONFIG", str(tmp_path / "missing.toml"))
    result = CliRunner().invoke(cli, ["key", "list"])
    assert result.exit_code == 1 and "not found" in result.output
