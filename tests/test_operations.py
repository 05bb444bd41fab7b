"""The operations layer: one implementation of every transition, shared by operator and cron.

- an activation typed by an operator (``keylife key activate``) and the same activation applied
  by ``keylife rotate`` leave identical ring documents;
- at most one version protects at any instant, also through the CLI;
- a Hypothesis state machine drives the pure operations directly (no store), with the same
  invariants the manager's machine checks on SQLite;
- planning a certificate ring loads no ACME, HTTP or OpenSSL module.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import keylife
from keylife import operations as ops
from keylife import revocation
from keylife.errors import InvalidTransitionError, KeylifeError
from keylife.lifecycle import TRANSITIONS, Action, RevocationReason, Ring, State, ring_to_dict
from keylife.policy import Purpose, default_policy
from keylife.rotation import run
from keylife.rotation.plan import StepKind, plan_ring
from keylife.specs import parse_spec

T0 = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
KEYLIFE = str(Path(sys.executable).with_name("keylife"))


def _staged(tmp_path: Path, name: str) -> tuple[keylife.KeyManager, keylife.FixedClock]:
    """A store with ring ``name``: v1 active, v2 a staged successor activating at T0 + 1 day."""
    clock = keylife.FixedClock(T0)
    m = keylife.init(str(tmp_path / name / "k.db"), master_key_file=tmp_path / name / "mk")
    m = m.at(clock)
    m.create_ring("orders", "aes-256", "data-encryption")
    m.rotate("orders", reason="staged", stage=dt.timedelta(days=1))
    assert m.load("orders").get(2).state is State.PRE_ACTIVE  # type: ignore[union-attr]
    clock.advance(dt.timedelta(days=1))
    return m, clock


def _normalised(ring: Ring) -> dict[str, Any]:
    """The document without who, why and the (random) key fingerprints: an operator and cron
    differ there, and only there."""
    doc = ring_to_dict(ring)
    for v in doc["versions"]:
        v.pop("fingerprint")
        for e in v["events"]:
            e.pop("actor")
            e.pop("reason")
    return doc


def test_manual_activation_and_rotate_leave_identical_documents(tmp_path: Path) -> None:
    manual, _ = _staged(tmp_path, "manual")
    manual.activate("orders", 2)
    by_cron, clock = _staged(tmp_path, "cron")
    report = run(by_cron, now=clock.now())
    assert report.ok and [s.kind for s in report.rings[0].steps] == ["activate"]
    a, b = manual.load("orders"), by_cron.load("orders")
    assert _normalised(a) == _normalised(b)
    assert [v.state for v in a.versions] == [State.DEACTIVATED, State.ACTIVE]
    assert a.get(1).replaced_by == 2  # type: ignore[union-attr]
    for m in (manual, by_cron):
        m.close()


def test_cli_activation_supersedes_the_previous_primary(tmp_path: Path) -> None:
    m, _ = _staged(tmp_path, "cli")
    m.close()
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "KEYLIFE_STORE": str(tmp_path / "cli" / "k.db"),
        "KEYLIFE_MASTER_KEY_FILE": str(tmp_path / "cli" / "mk"),
    }
    done = subprocess.run(
        [KEYLIFE, "--json", "key", "activate", "orders", "2"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = subprocess.run(
        [KEYLIFE, "--json", "key", "show", "orders"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(shown.stdout)
    states = {v["number"]: v["state"] for v in doc["details"]}
    assert states == {1: "deactivated", 2: "active"}
    # v1 may not take protection back: resuming or re-activating it is refused, named
    again = subprocess.run(
        [KEYLIFE, "key", "activate", "orders", "1"], env=env, capture_output=True, text=True
    )
    assert again.returncode == 1 and "orders v1" in again.stderr
    assert "Traceback" not in again.stderr


def test_older_version_cannot_be_resumed_over_a_newer_primary(tmp_path: Path) -> None:
    m = keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk")
    m.create_ring("r", "ed25519", "signing")
    m.suspend("r", 1)
    m.rotate("r")  # no primary while v1 is suspended: v2 takes over
    with pytest.raises(InvalidTransitionError) as refused:
        m.resume("r", 1)
    assert (refused.value.ring, refused.value.version, refused.value.action) == ("r", 1, "resume")
    assert m.ring("r").primary().number == 2
    m.close()


def test_a_pre_active_version_overtaken_by_a_newer_one_is_destroyed_not_activated() -> None:
    policy = default_policy()
    spec = parse_spec("aes-256")
    c = ops.create_ring(
        "r",
        spec,
        "data-encryption",
        ops.NewKey("fp1"),
        actor="t",
        now=T0,
        activation=T0 + dt.timedelta(days=5),
        deactivation=T0 + dt.timedelta(days=300),
    )
    # nothing active: the planner makes v2 at once
    c2 = ops.rotate(
        c.ring, ops.NewKey("fp2"), actor="t", now=T0, cryptoperiod=dt.timedelta(days=365)
    )
    steps, _ = plan_ring(c2.ring, policy, T0 + dt.timedelta(days=6))
    assert [(s.kind, s.version) for s in steps] == [(StepKind.DESTROY, 1)]


def test_planning_a_certificate_ring_loads_no_acme_http_or_openssl() -> None:
    code = """
import datetime as dt, sys
from keylife.rotation.plan import plan_ring
from keylife.lifecycle import Ring
from keylife.policy import default_policy
from keylife import operations as ops
from keylife import revocation
from keylife.specs import parse_spec
now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
c = ops.create_ring("web", parse_spec("ec-p256"), "tls-server", ops.NewKey("fp"), actor="t",
    now=now, activation=now, deactivation=now + dt.timedelta(days=90),
    attributes={"acme": "{}"}, version_attributes={"certificate_pem": "x"})
steps, due = plan_ring(c.ring, default_policy(), now + dt.timedelta(days=80))
assert [s.kind.value for s in steps] == ["renew-certificate"], steps
loaded = sorted(m for m in sys.modules
                if m.split(".")[0] in ("acme", "josepy", "requests", "OpenSSL", "urllib3"))
print(",".join(loaded))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


# ---- the operations layer as a state machine, without a store ----------------------------

NAMES = ("alpha", "beta")
PERIOD = dt.timedelta(days=365)


class OperationsMachine(RuleBasedStateMachine):
    """Random requests against the pure operations; every change is checked like a store
    would see it: only allowed transitions, at most one protecting version, numbers never
    reused, material written exactly for new versions and erased exactly for destroyed ones."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.rings: dict[str, Ring] = {}
        self.material: dict[tuple[str, int], bool] = {}
        self.serial = 0

    def _key(self) -> ops.NewKey:
        self.serial += 1
        return ops.NewKey(f"fp{self.serial}")

    def _apply(self, change: ops.Change) -> None:
        before = self.rings.get(change.ring.name)
        for v in change.ring.versions:
            old = None if before is None else before.get(v.number)
            if old is None:
                assert v.number in change.new_versions
                assert v.state in (State.PRE_ACTIVE, State.ACTIVE)
            elif old.state is not v.state:
                for e in v.events[len(old.events) :]:
                    pair = (State(e.from_state), Action(e.action))  # type: ignore[arg-type]
                    assert TRANSITIONS[pair] is State(e.to_state)
        for n in change.new_versions:
            self.material[(change.ring.name, n)] = True
        for n in change.destroy:
            assert not change.ring.get(n).has_material  # type: ignore[union-attr]
            self.material[(change.ring.name, n)] = False
        assert len(change.audit) >= 1 or change.empty
        self.rings[change.ring.name] = change.ring

    @rule(name=st.sampled_from(NAMES), days=st.integers(-1, 3))
    def create(self, name: str, days: int) -> None:
        if name in self.rings:
            return
        activation = self.now + dt.timedelta(days=days)
        self._apply(
            ops.create_ring(
                name,
                parse_spec("aes-256"),
                Purpose.DATA_ENCRYPTION.value,
                self._key(),
                actor="sm",
                now=self.now,
                activation=activation,
                deactivation=activation + PERIOD,
            )
        )

    @rule(days=st.integers(1, 200))
    def tick(self, days: int) -> None:
        self.now += dt.timedelta(days=days)

    @precondition(lambda self: bool(self.rings))
    @rule(data=st.data(), stage=st.booleans())
    def rotate(self, data: st.DataObject, stage: bool) -> None:
        ring = self.rings[data.draw(st.sampled_from(sorted(self.rings)))]
        if "retired" in ring.attributes:  # a retired ring gains no version, ever
            with pytest.raises(KeylifeError, match="is retired"):
                ops.rotate(ring, self._key(), actor="sm", now=self.now, cryptoperiod=PERIOD)
            return
        change = ops.rotate(
            ring,
            self._key(),
            actor="sm",
            now=self.now,
            cryptoperiod=PERIOD,
            stage=dt.timedelta(days=2) if stage else None,
        )
        self._apply(change)
        if not stage:
            assert change.ring.primary(self.now).number == change.version.number  # type: ignore[union-attr]

    @precondition(lambda self: bool(self.rings))
    @rule(data=st.data(), action=st.sampled_from([a for a in Action if a is not Action.COMPROMISE]))
    def transition(self, data: st.DataObject, action: Action) -> None:
        ring = self.rings[data.draw(st.sampled_from(sorted(self.rings)))]
        number = data.draw(st.sampled_from([v.number for v in ring.versions]))
        before = ring.get(number)
        assert before is not None
        try:
            change = ops.transition_version(
                ring,
                number,
                action,
                actor="sm",
                now=self.now,
                reason="sm",
                cryptoperiod=PERIOD,
            )
        except InvalidTransitionError as exc:
            newer = [
                w
                for w in ring.versions
                if w.number > number and w.state in (State.ACTIVE, State.SUSPENDED)
            ]
            assert (before.state, action) not in TRANSITIONS or (
                action in (Action.ACTIVATE, Action.RESUME) and newer
            ), exc
            return
        self._apply(change)
        after = change.ring.get(number)
        assert after is not None and TRANSITIONS[(before.state, action)] is after.state

    @precondition(lambda self: bool(self.rings))
    @rule(data=st.data(), compromise=st.booleans())
    def revoke(self, data: st.DataObject, compromise: bool) -> None:
        ring = self.rings[data.draw(st.sampled_from(sorted(self.rings)))]
        number = data.draw(st.sampled_from([v.number for v in ring.versions]))
        why = RevocationReason.KEY_COMPROMISE if compromise else RevocationReason.SUPERSEDED
        try:
            if compromise:
                change = revocation.compromise(
                    ring,
                    number,
                    why,
                    actor="sm",
                    now=self.now,
                    occurred=self.now,
                    replacement=self._key(),
                    cryptoperiod=PERIOD,
                )
            else:
                change = revocation.revoke(ring, number, why, actor="sm", now=self.now)
        except KeylifeError:
            return
        self._apply(change)
        if compromise:
            assert change.replacement is not None
            assert change.ring.primary(self.now).number == change.replacement.number  # type: ignore[union-attr]

    @precondition(lambda self: bool(self.rings))
    @rule(data=st.data())
    def planned_steps_are_operations(self, data: st.DataObject) -> None:
        """What the planner asks for, the operations do (activation and expiry steps)."""
        ring = self.rings[data.draw(st.sampled_from(sorted(self.rings)))]
        steps, _ = plan_ring(ring, default_policy(), self.now)
        kinds = {StepKind.ACTIVATE: Action.ACTIVATE, StepKind.DEACTIVATE: Action.DEACTIVATE}
        kinds[StepKind.DESTROY] = Action.DESTROY
        for step in steps:
            if step.kind in kinds and step.version is not None:
                change = ops.transition_version(
                    self.rings[ring.name],
                    step.version,
                    kinds[step.kind],
                    actor="cron",
                    now=self.now,
                    reason=step.reason,
                    if_needed=True,
                    cryptoperiod=PERIOD,
                )
                self._apply(change)

    @invariant()
    def one_protecting_version_and_sound_numbers(self) -> None:
        for ring in self.rings.values():
            protecting = [v for v in ring.versions if v.protects_at(self.now)]
            assert len(protecting) <= 1, [(v.number, v.state) for v in protecting]
            numbers = [v.number for v in ring.versions]
            assert numbers == sorted(set(numbers)) and ring.next_version > max(numbers)
            for v in ring.versions:
                assert self.material[(ring.name, v.number)] == v.has_material


TestOperationsMachine = OperationsMachine.TestCase
TestOperationsMachine.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
