"""Issue 11, item 7: when the policy in force no longer allows a ring's type, the planner
replaces the key with the purpose's default type, and `policy check --store` lists what is
outside today's policy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner
from keylife_cli.main import cli

import keylife
from keylife.limits import violations
from keylife.rotation import run
from keylife.rotation.plan import StepKind, plan_ring

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def test_a_ring_made_under_a_weaker_policy_is_flagged_and_rotated(tmp_path: Path) -> None:
    with keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk") as first:
        old = first.at(keylife.FixedClock(T0))
        old.create_ring("legacy", "rsa-2048", "signing")
        strict = keylife.open(old.store, policy="128-bit", clock=keylife.FixedClock(T0))
        ring = strict.load("legacy")
        found = violations([ring], strict.policy, T0)
        assert [(v.ring, v.version, v.rule) for v in found] == [("legacy", 1, "spec")]
        steps, _ = plan_ring(ring, strict.policy, T0)
        assert [(s.kind, s.version) for s in steps] == [(StepKind.ROTATE, 1)]
        assert steps[0].reason.startswith("policy: rsa-2048")
        report = run(strict, now=T0)
        assert report.ok
        after = strict.load("legacy")
        assert after.spec.name == "ec-p256"  # the purpose's default type
        assert [v.spec.name for v in after.versions] == ["rsa-2048", "ec-p256"]
        assert strict.ring("legacy").primary().number == 2
        assert run(strict, now=T0).nothing_due  # converged
        # v1 still holds material (it processes in its grace period) and is still listed
        assert [v.version for v in violations([after], strict.policy, T0)] == [1]


def test_policy_check_store_lists_versions_outside_todays_policy(tmp_path: Path) -> None:
    env = {"KEYLIFE_STORE": str(tmp_path / "c.db"), "KEYLIFE_MASTER_KEY_FILE": str(tmp_path / "m")}
    invoke = CliRunner(env=env).invoke
    assert invoke(cli, ["init"]).exit_code == 0
    assert (
        invoke(
            cli, ["key", "create", "old", "--type", "rsa-2048", "--purpose", "signing"]
        ).exit_code
        == 0
    )
    clean = invoke(cli, ["policy", "check", "--store"])
    assert clean.exit_code == 0 and "within the policy" in clean.output
    flagged = invoke(cli, ["--policy", "128-bit", "--json", "policy", "check", "--store"])
    assert flagged.exit_code == 1
    assert '"ring": "old"' in flagged.output and '"rule": "spec"' in flagged.output
