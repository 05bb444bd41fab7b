"""Issue 11, item 5: `keylife key delete RING` removes a ring whose versions are all destroyed,
keeps its history in the audit log, and `keylife audit verify` tells a recorded deletion from
a ring that disappeared unrecorded."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from keylife_cli.main import cli

import keylife


def run(tmp: Path, *args: str) -> Result:
    base = ["--store", str(tmp / "k.db"), "--master-key-file", str(tmp / "mk")]
    return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    with keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk") as m:
        m.create_ring("old", "aes-256", "data-encryption")
        m.create_ring("spare", "aes-256", "data-encryption")
    return tmp_path


def _carry_out(store: Path) -> None:
    """Run the planner a destroy_wait from now: scheduled destructions are carried out."""
    with keylife.open(str(store / "k.db"), master_key_file=store / "mk") as m:
        later = keylife.FixedClock(m.now() + m.policy.destroy_wait + dt.timedelta(minutes=1))
        assert keylife.rotation.run(m.at(later), rings=["old"]).ok


def _delete_old(store: Path) -> None:
    """Destroy ring "old"'s one version (scheduled, then carried out), then delete the ring."""
    with keylife.open(str(store / "k.db"), master_key_file=store / "mk") as m:
        m.deactivate("old", 1)
        m.destroy("old", 1)
    _carry_out(store)
    with keylife.open(str(store / "k.db"), master_key_file=store / "mk") as m:
        m.delete_ring("old")


def test_cli_delete_refused_until_every_version_is_destroyed(store: Path) -> None:
    refused = run(store, "key", "delete", "old")
    assert refused.exit_code == 1
    assert "v1 (active) still holds key material" in refused.output
    assert "keylife key destroy old N" in refused.output
    assert run(store, "key", "deactivate", "old", "1").exit_code == 0
    assert run(store, "key", "destroy", "old", "1").exit_code == 0  # scheduled
    refused_still = run(store, "key", "delete", "old")
    assert refused_still.exit_code == 1 and "v1" in refused_still.output
    _carry_out(store)
    done = run(store, "--json", "key", "delete", "old", "--reason", "decommissioned")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"ring": "old", "deleted": True}
    assert "old" not in run(store, "key", "list").output
    assert run(store, "key", "show", "old").exit_code == 1
    history = json.loads(run(store, "--json", "audit", "show", "--ring", "old").stdout)
    actions = [(r["action"], r["outcome"]) for r in history["records"]]
    assert actions[0] == ("create", "success") and actions[-1] == ("delete", "success")
    assert ("delete", "failure") in [(a, o.split(":")[0]) for a, o in actions]  # the refusal
    verified = run(store, "audit", "verify")
    assert verified.exit_code == 0, verified.output  # a recorded deletion, not a vanished ring
    again = run(store, "key", "create", "old", "--purpose", "data-encryption")
    assert again.exit_code == 1 and "was deleted" in again.output
    assert run(store, "rotate").exit_code == 0
    assert run(store, "key", "show", "old").exit_code == 1  # rotation never recreates it


def test_an_unrecorded_disappearance_is_still_reported(store: Path) -> None:
    _delete_old(store)
    with closing(sqlite3.connect(store / "k.db")) as con, con:
        con.execute("DELETE FROM rings WHERE name='spare'")
    result = run(store, "audit", "verify")
    assert result.exit_code == 1
    assert "ring spare vanished" in result.output
    assert "ring old" not in result.output


def test_a_deleted_ring_put_back_is_reported(store: Path) -> None:
    with keylife.open(str(store / "k.db"), master_key_file=store / "mk") as m:
        m.deactivate("old", 1)
        m.destroy("old", 1)
    _carry_out(store)
    with closing(sqlite3.connect(store / "k.db")) as con, con:
        saved = con.execute("SELECT name, revision, doc FROM rings WHERE name='old'").fetchone()
    with keylife.open(str(store / "k.db"), master_key_file=store / "mk") as m:
        m.delete_ring("old")
    with closing(sqlite3.connect(store / "k.db")) as con, con:
        con.execute("INSERT INTO rings VALUES (?, ?, ?)", saved)
    result = run(store, "audit", "verify")
    assert result.exit_code == 1
    assert "ring old is still in the store, but record" in result.output
    assert "keylife key delete old" in result.output


def test_a_restored_or_migrated_store_still_refuses_a_deleted_name(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tombstone travels with the audit log: a backup restored into an empty store, or a
    store migrated, refuses the deleted ring's name as the source does."""
    _delete_old(store)
    monkeypatch.setenv("KEYLIFE_BACKUP_PASSPHRASE", "a long backup passphrase")
    assert run(store, "backup", str(store / "b.klb")).exit_code == 0
    restored = store / "restored"
    restored.mkdir()
    back = CliRunner().invoke(
        cli,
        ["--store", str(restored / "k.db"), "--master-key-file", str(restored / "mk"), "restore",
         str(store / "b.klb")],
        catch_exceptions=False,
    )  # fmt: skip
    assert back.exit_code == 0, back.output
    migrated = str(store / "migrated.db")
    moved = run(store, "store", "migrate", "--from", str(store / "k.db"), "--to", migrated)
    assert moved.exit_code == 0, moved.output
    for target, key in (
        (restored / "k.db", restored / "mk"),
        (store / "migrated.db", store / "mk"),
    ):
        again = CliRunner().invoke(
            cli,
            ["--store", str(target), "--master-key-file", str(key), "key", "create", "old",
             "--purpose", "data-encryption"],
            catch_exceptions=False,
        )  # fmt: skip
        assert again.exit_code == 1 and "was deleted" in again.output, (target, again.output)
