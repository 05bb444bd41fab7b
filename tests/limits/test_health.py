"""Issue 11, item 8: every `keylife rotate` checks that each primary (and staged successor)
opens and is the key its metadata describes; a bad one fails its ring with the recovery step,
even when nothing was due."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import keylife
from keylife.rotation import run


@pytest.fixture
def m(tmp_path: Path) -> Iterator[keylife.KeyManager]:
    with keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk") as manager:
        manager.create_ring("orders", purpose="data-encryption")
        manager.create_ring("invoices", purpose="data-encryption")
        manager.create_ring("signing", purpose="signing")
        yield manager


def _sql(m: keylife.KeyManager, query: str, *args: object) -> list[tuple[object, ...]]:
    db = sqlite3.connect(m.store.url.removeprefix("sqlite://"))
    try:
        with db:
            return db.execute(query, args).fetchall()
    finally:
        db.close()


def test_nothing_due_but_a_primary_unreadable_fails_that_ring(m: keylife.KeyManager) -> None:
    assert run(m).nothing_due  # healthy: nothing due, nothing failed
    blob = _sql(m, "SELECT blob FROM material WHERE ring='orders' AND version=1")[0][0]
    assert isinstance(blob, bytes)
    _sql(m, "UPDATE material SET blob=? WHERE ring='orders' AND version=1", blob[:-1] + b"\0")
    report = run(m)
    assert not report.ok and report.failed == ["orders"]
    (orders,) = report.rings
    assert "v1 cannot be opened" in orders.error
    assert "keylife restore ARCHIVE --ring orders --version 1" in orders.error


def test_a_swapped_blob_is_caught_by_its_fingerprint(m: keylife.KeyManager) -> None:
    """Someone with write access to the store but not the master key cannot make a ring use
    another ring's key: the blob is bound to its ring, and its fingerprint is checked."""
    other = _sql(m, "SELECT blob FROM material WHERE ring='invoices' AND version=1")[0][0]
    _sql(m, "UPDATE material SET blob=? WHERE ring='orders' AND version=1", other)
    report = run(m)
    assert report.failed == ["orders"]
    assert "orders" in report.rings[0].ring


def test_cli_exit_code(m: keylife.KeyManager, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from keylife_cli.main import cli

    _sql(m, "DELETE FROM material WHERE ring='signing' AND version=1")
    env = {"KEYLIFE_STORE": str(tmp_path / "k.db"), "KEYLIFE_MASTER_KEY_FILE": str(tmp_path / "mk")}
    done = CliRunner(env=env).invoke(cli, ["rotate"])
    assert done.exit_code == 1 and "signing" in done.output
