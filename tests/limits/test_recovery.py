"""Issue 11, item 9: one version's material put back from a backup when its blob is lost or
corrupt; the fingerprint must match and nothing else in the store changes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner
from keylife_cli.main import cli

PASS = "a long backup passphrase"


def test_health_failure_then_per_version_recovery(tmp_path: Path) -> None:
    env = {
        "KEYLIFE_STORE": str(tmp_path / "k.db"),
        "KEYLIFE_MASTER_KEY_FILE": str(tmp_path / "mk"),
        "KEYLIFE_BACKUP_PASSPHRASE": PASS,
    }
    invoke = CliRunner(env=env).invoke
    assert invoke(cli, ["init"]).exit_code == 0
    for name in ("orders", "invoices"):
        assert invoke(cli, ["key", "create", name, "--purpose", "data-encryption"]).exit_code == 0
    archive = tmp_path / "b.klb"
    assert invoke(cli, ["backup", str(archive)]).exit_code == 0
    db = sqlite3.connect(tmp_path / "k.db")
    with db:
        db.execute("DELETE FROM material WHERE ring='orders'")
    db.close()
    broken = invoke(cli, ["rotate"])
    assert broken.exit_code == 1 and "--ring orders --version 1" in broken.output
    # the wrong version of the archive is refused by name
    wrong = invoke(cli, ["restore", str(archive), "--ring", "orders", "--version", "7"])
    assert wrong.exit_code == 1 and "orders v7" in wrong.output
    fixed = invoke(cli, ["--json", "restore", str(archive), "--ring", "orders", "--version", "1"])
    assert fixed.exit_code == 0, fixed.output
    assert invoke(cli, ["rotate"]).exit_code == 0
    audit = invoke(cli, ["--json", "audit", "show", "--ring", "orders"]).output
    assert "restore-material" in audit
    assert invoke(cli, ["audit", "verify"]).exit_code == 0


def test_material_that_is_not_the_recorded_key_is_refused(tmp_path: Path) -> None:
    """An archive from another store (same ring name, another key) cannot overwrite a key."""

    def env(store: str) -> dict[str, str]:
        return {
            "KEYLIFE_STORE": str(tmp_path / f"{store}.db"),
            "KEYLIFE_MASTER_KEY_FILE": str(tmp_path / f"{store}.mk"),
            "KEYLIFE_BACKUP_PASSPHRASE": PASS,
        }

    for store in ("a", "b"):
        invoke = CliRunner(env=env(store)).invoke
        assert invoke(cli, ["init"]).exit_code == 0
        assert invoke(cli, ["key", "create", "orders", "--purpose", "signing"]).exit_code == 0
    other = tmp_path / "other.klb"
    assert CliRunner(env=env("b")).invoke(cli, ["backup", str(other)]).exit_code == 0
    refused = CliRunner(env=env("a")).invoke(
        cli, ["restore", str(other), "--ring", "orders", "--version", "1"]
    )
    assert refused.exit_code == 1 and "fingerprint" in refused.output
