"""``keylife rotate --dry-run --window``: the pure planner stepping through time
(:func:`keylife.rotation.forecast.forecast`), its properties and the command."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keylife import operations as ops
from keylife.errors import KeylifeError
from keylife.lifecycle import Action, Ring
from keylife.policy import DAY, DEFAULT_RULES, Policy, Purpose, PurposeRules
from keylife.rotation.forecast import forecast
from keylife.rotation.plan import StepKind, plan_rotation

from .conftest import StoreEnv
from .test_rotation_properties import policies

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
KEY = ops.NewKey("fp")


@st.composite
def rings(draw: st.DrawFn) -> list[Ring]:
    """Up to four data-encryption rings made with the pure operations: created at some day,
    maybe staged, then maybe rotated, suspended or deactivated later."""
    out = []
    for i in range(draw(st.integers(1, 4))):
        created = T0 + draw(st.integers(0, 60)) * DAY
        activation = created + draw(st.sampled_from([0, 0, 5, 30])) * DAY
        ring = ops.create_ring(
            f"ring-{i}",
            _spec(),
            "data-encryption",
            KEY,
            actor="t",
            now=created,
            activation=activation,
            deactivation=activation + draw(st.integers(5, 200)) * DAY,
        ).ring
        later = created + draw(st.integers(0, 40)) * DAY
        action = draw(st.sampled_from(["none", "rotate", "suspend", "deactivate"]))
        try:
            if action == "rotate":
                ring = ops.rotate(ring, KEY, actor="t", now=later, cryptoperiod=90 * DAY).ring
            elif action in ("suspend", "deactivate") and ring.primary(later) is not None:
                ring = ops.transition_version(
                    ring, 1, Action(action), actor="t", now=later, reason="test"
                ).ring
        except KeylifeError:  # an operation the state does not allow: keep the ring
            pass
        out.append(ring)
    return out


def _spec():  # type: ignore[no-untyped-def]
    from keylife.specs import parse_spec

    return parse_spec("aes-256")


NOW = st.integers(0, 400).map(lambda d: T0 + d * DAY)
SETTINGS = settings(max_examples=100, deadline=10_000, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(rings(), policies(), NOW)
def test_a_window_of_zero_is_exactly_todays_plan(rs: list[Ring], policy: Policy, now) -> None:  # type: ignore[no-untyped-def]
    result = forecast(rs, policy, now, dt.timedelta(0))
    assert [f.step for f in result.steps] == list(plan_rotation(rs, policy, now).steps)
    assert all(f.at == now for f in result.steps)


@SETTINGS
@given(rings(), policies(), NOW, st.integers(0, 500))
def test_steps_are_in_date_order_and_begin_with_todays_plan(
    rs: list[Ring], policy: Policy, now: dt.datetime, days: int
) -> None:
    result = forecast(rs, policy, now, days * DAY)
    when = [f.at for f in result.steps]
    assert when == sorted(when)
    assert all(now <= w <= now + days * DAY for w in when)
    today = plan_rotation(rs, policy, now).steps
    if today:
        assert result.steps[0].step == today[0]
        assert [f.step for f in result.steps[: len(today)]] == list(today)
    # data-encryption rings never wait on a CA; only a policy rotating every few days over a
    # long window can reach the bound on planner calls
    assert all(why.startswith("more than") for why in result.stopped.values())


def test_the_forecast_applies_each_step_before_planning_again() -> None:
    """A 90-day key over a year: rotated four times, each successor's own rotation foreseen
    and each superseded version destroyed 60 days later; a ring planned but never changed
    would show the first rotation only."""
    purposes = dict(DEFAULT_RULES)
    purposes[Purpose.DATA_ENCRYPTION] = PurposeRules(
        90 * DAY, 14 * DAY, 30 * DAY, "aes-256", destroy_after=60 * DAY
    )
    policy = Policy(purposes=purposes)
    ring = ops.create_ring(
        "orders",
        _spec(),
        "data-encryption",
        KEY,
        actor="t",
        now=T0,
        activation=T0,
        deactivation=T0 + 90 * DAY,
    ).ring
    result = forecast([ring], policy, T0, 365 * DAY)
    kinds = [(f.step.kind, f.step.version) for f in result.steps]
    rotations = [v for k, v in kinds if k is StepKind.ROTATE]
    assert rotations == [1, 2, 3, 4], kinds
    assert (StepKind.DEACTIVATE, 1) not in kinds  # the rotation superseded v1 first
    assert [v for k, v in kinds if k is StepKind.DESTROY] == [1, 2, 3, 4]  # day 136..364
    assert [f.at for f in result.steps if f.step.kind is StepKind.ROTATE] == [
        T0 + d * DAY
        for d in (76, 152, 228, 304)  # 90-day period, 14-day lead time
    ]


def test_rotate_dry_run_window_prints_the_quarter_and_writes_nothing(
    store_env: StoreEnv,
) -> None:
    with store_env.manager() as m:
        m.create_ring("soon", "aes-256", "data-encryption", deactivate_at=m.now() + 30 * DAY)
        m.create_ring("later", "aes-256", "data-encryption", deactivate_at=m.now() + 80 * DAY)
        before = len(m.store.read_audit())
    text = store_env.run("rotate", "--dry-run", "--window", "90d")
    assert text.returncode == 0, text.stderr
    lines = [x for x in text.stdout.splitlines() if ": rotate v1" in x]
    assert [x.split()[2] for x in lines] == ["soon:", "later:"]  # date order, not name order
    doc = json.loads(store_env.run("--json", "rotate", "--dry-run", "--window", "90d").stdout)
    assert [s["ring"] for s in doc["steps"]] == ["soon", "later"] and doc["dry_run"] is True
    assert [s["at"] for s in doc["steps"]] == sorted(s["at"] for s in doc["steps"])
    with store_env.manager() as m:
        assert len(m.store.read_audit()) == before
        assert [len(m.load(n).versions) for n in ("soon", "later")] == [1, 1]
    refused = store_env.run("rotate", "--window", "90d")
    assert refused.returncode == 2 and "needs --dry-run" in refused.stderr
    assert store_env.run("rotate", "--dry-run", "--window", "9999d").returncode == 2
