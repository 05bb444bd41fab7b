"""Issue 11, item 5: a ring can be retired, and cron never brings it (or a ring whose keys
were all destroyed) back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

import keylife
from keylife.errors import LifecycleError
from keylife.rotation import run

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture
def m(tmp_path: Path) -> Iterator[keylife.KeyManager]:
    with keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk") as manager:
        yield manager.at(keylife.FixedClock(T0))


def test_cessation_of_operation_retires_the_ring(m: keylife.KeyManager) -> None:
    m.create_ring("partner", purpose="signing")
    m.revoke("partner", 1, "cessation-of-operation")
    report = run(m)
    assert report.ok and not report.rings  # nothing made a new version
    assert [v.number for v in m.load("partner").versions] == [1]
    assert "retire" in [r.action for r in m.audit_records("partner")]


def test_a_ring_whose_only_key_was_destroyed_stays_empty(m: keylife.KeyManager) -> None:
    m.create_ring("gone", purpose="data-encryption")
    m.deactivate("gone", 1)
    m.destroy("gone", 1)  # scheduled; carried out by the run a destroy_wait later
    run(m, now=T0 + m.policy.destroy_wait)
    assert m.load("gone").get(1).state is keylife.State.DESTROYED  # type: ignore[union-attr]
    assert "retired" in m.load("gone").attributes
    run(m, now=T0 + 2 * m.policy.destroy_wait)
    assert [v.number for v in m.load("gone").versions] == [1]


def test_retire_stops_rotation_for_good_and_versions_run_out(m: keylife.KeyManager) -> None:
    m.create_ring("old", purpose="data-encryption")
    m.retire("old", reason="service decommissioned")
    with pytest.raises(LifecycleError, match="retired"):
        m.rotate("old")
    with pytest.raises(LifecycleError, match="retired"):
        m.import_key("old", bytes(range(32)), "aes-256", "data-encryption")
    # a year on: the version is deactivated on its date, never replaced
    later = m.at(keylife.FixedClock(T0 + dt.timedelta(days=400)))
    report = run(later)
    assert [s.kind for r in report.rings for s in r.steps] == ["deactivate"]
    assert [v.state.value for v in later.load("old").versions] == ["deactivated"]
    assert run(later).nothing_due
    with pytest.raises(LifecycleError, match="is retired"):
        m.retire("old")


def test_cli_retire(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from keylife_cli.main import cli

    env = {"KEYLIFE_STORE": str(tmp_path / "c.db"), "KEYLIFE_MASTER_KEY_FILE": str(tmp_path / "m")}
    invoke = CliRunner(env=env).invoke
    assert invoke(cli, ["init"]).exit_code == 0
    assert invoke(cli, ["key", "create", "x", "--purpose", "signing"]).exit_code == 0
    done = invoke(cli, ["--json", "key", "retire", "x", "--reason", "contract ended"])
    assert done.exit_code == 0 and "contract ended" in done.output
    assert invoke(cli, ["key", "rotate", "x"]).exit_code == 1
