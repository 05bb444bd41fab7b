"""Hypothesis properties of planning and applying rotation plans."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keylife
from keylife.lifecycle import TRANSITIONS, Action, State, ring_to_dict
from keylife.policy import DAY, DEFAULT_RULES, Policy, Purpose, PurposeRules
from keylife.rotation import StepKind, plan_rotation, run
from keylife.store.sqlite import MasterKeyFile, SqliteStore

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
STEP_ACTION = {
    StepKind.ACTIVATE: Action.ACTIVATE,
    StepKind.DEACTIVATE: Action.DEACTIVATE,
    StepKind.DESTROY: Action.DESTROY,
}


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    period = draw(st.integers(3, 120))
    lead = draw(st.integers(1, period - 1))
    grace = draw(st.integers(0, 60))
    destroy = draw(st.one_of(st.none(), st.integers(grace, grace + 30)))
    stage = draw(st.one_of(st.none(), st.integers(0, lead - 1))) if lead > 1 else None
    rules = PurposeRules(
        period * DAY,
        lead * DAY,
        grace * DAY,
        "aes-256",
        destroy_after=None if destroy is None else destroy * DAY,
        stage=None if stage is None else stage * DAY,
    )
    purposes = dict(DEFAULT_RULES)
    purposes[Purpose.DATA_ENCRYPTION] = rules
    return Policy(purposes=purposes)


_op = st.tuples(
    st.sampled_from(["create", "tick", "suspend", "deactivate", "compromise", "rotate"]),
    st.integers(0, 3),
    st.integers(0, 40 * 86400),
)
_creates = st.lists(
    st.tuples(st.just("create"), st.integers(0, 3), st.integers(0, 5 * 86400)),
    min_size=1,
    max_size=4,
)
ops = st.tuples(_creates, st.lists(_op, max_size=10)).map(lambda t: t[0] + t[1])


@contextmanager
def fresh_store() -> Iterator[tuple[Path, SqliteStore]]:
    d = Path(tempfile.mkdtemp(prefix="kl-rot-"))
    store = SqliteStore.init(d / "k.db", MasterKeyFile(d / "cfg" / "mk"))
    try:
        yield d, store
    finally:
        store.close()
        shutil.rmtree(d, ignore_errors=True)


def build(
    store: SqliteStore, policy: Policy, script: list[tuple[str, int, int]]
) -> keylife.FixedClock:
    clock = keylife.FixedClock(T0)
    m = keylife.KeyManager(store, policy=policy, actor="setup", clock=clock)
    for op, idx, seconds in script:
        name = f"ring-{idx}"
        exists = name in store.list_ring_names()
        try:
            if op == "create" and not exists:
                delay = dt.timedelta(seconds=seconds % (5 * 86400))
                m.create_ring(name, "aes-256", "data-encryption", activate_at=clock.now() + delay)
            elif op == "tick":
                clock.advance(dt.timedelta(seconds=seconds))
            elif exists and op in ("suspend", "deactivate"):
                ring = m.load(name)
                getattr(m, op)(name, ring.versions[-1].number)
            elif exists and op == "compromise":
                m.compromise(
                    name, version=m.load(name).versions[-1].number, occurred_at=clock.now()
                )
            elif exists and op == "rotate":
                m.rotate(name)
        except keylife.LifecycleError:
            pass  # not every random operation is allowed; refusals are tested elsewhere
    return clock


def snapshot(store: SqliteStore) -> tuple[object, ...]:
    rings = [ring_to_dict(r) for r in store.load_rings()]
    material = sorted(
        (r.name, v.number)
        for r in store.load_rings()
        for v in r.versions
        if store.has_material(r.name, v.number)
    )
    return (rings, material, [r.hash for r in store.read_audit()])


JUMPS = st.one_of(
    st.integers(0, 86400),
    st.integers(0, 400).map(lambda days: days * 86400 + 1),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(policy=policies(), script=ops, jump=JUMPS)
def test_apply_twice_equals_once_and_converges(
    policy: Policy, script: list[tuple[str, int, int]], jump: int
) -> None:
    with fresh_store() as (_, store):
        clock = build(store, policy, script)
        t = clock.now() + dt.timedelta(seconds=jump)
        m = keylife.KeyManager(store, policy=policy, actor="cron", clock=keylife.FixedClock(t))
        first = run(m, now=t)
        assert not first.failed
        once = snapshot(store)
        # after applying the plan for t, planning again for t yields nothing
        assert not plan_rotation(store.load_rings(), policy, t)
        second = run(m, now=t)
        assert second.nothing_due
        assert snapshot(store) == once
        # every ring ends with a primary unless an operator suspended it
        for ring in store.load_rings():
            primary = ring.primary(t)
            suspended = any(v.state is State.SUSPENDED for v in ring.versions)
            waiting = any(
                v.state is State.PRE_ACTIVE and v.activation and v.activation > t
                for v in ring.versions
            )
            assert primary is not None or suspended or waiting, ring_to_dict(ring)


@SETTINGS
@given(policy=policies(), script=ops, jump=JUMPS)
def test_planner_only_emits_allowed_transitions(
    policy: Policy, script: list[tuple[str, int, int]], jump: int
) -> None:
    with fresh_store() as (_, store):
        clock = build(store, policy, script)
        t = clock.now() + dt.timedelta(seconds=jump)
        rings = {r.name: r for r in store.load_rings()}
        plan = plan_rotation(rings.values(), policy, t)
        for name, ring in rings.items():
            # walk the ring's steps in order, tracking the state each version will be in
            states = {v.number: v.state for v in ring.versions}
            for step in plan.for_ring(name):
                assert step.due <= t
                if step.kind not in STEP_ACTION:
                    continue
                assert step.version is not None
                action = STEP_ACTION[step.kind]
                target = TRANSITIONS.get((states[step.version], action))
                assert target is not None, (states[step.version], step)
                states[step.version] = target
                if action is Action.ACTIVATE:  # the newer version supersedes older ones
                    for n, st_ in states.items():
                        if n < step.version and st_ in (State.ACTIVE, State.SUSPENDED):
                            states[n] = State.DEACTIVATED


def _digest(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


@SETTINGS
@given(policy=policies(), script=ops, jump=JUMPS)
def test_dry_run_leaves_store_byte_for_byte_unchanged(
    policy: Policy, script: list[tuple[str, int, int]], jump: int
) -> None:
    with fresh_store() as (d, store):
        clock = build(store, policy, script)
        store.close()
        before = _digest(d)
        again = SqliteStore(d / "k.db", MasterKeyFile(d / "cfg" / "mk"))
        t = clock.now() + dt.timedelta(seconds=jump)
        m = keylife.KeyManager(again, policy=policy, actor="cron", clock=keylife.FixedClock(t))
        report = run(m, now=t, dry_run=True)
        expected = plan_rotation(again.load_rings(), policy, t)
        assert [s.kind for r in report.rings for s in r.steps] == [
            s.kind.value for s in expected.steps
        ]
        again.close()
        assert _digest(d) == before


def test_a_run_that_started_earlier_does_not_rotate_again() -> None:
    """Run B plans at t0, waits for run A's lock; A rotates with its later clock t1. B must
    not see A's new version (activation t1 > t0) as 'no primary' and rotate a second time."""
    with fresh_store() as (_, store):
        policy = Policy()
        past = T0 - dt.timedelta(days=800)
        keylife.KeyManager(store, policy=policy, clock=keylife.FixedClock(past)).create_ring(
            "r", "aes-256", "data-encryption"
        )
        t0, t1 = T0, T0 + dt.timedelta(seconds=3)
        a = keylife.KeyManager(store, policy=policy, actor="a", clock=keylife.FixedClock(t1))
        assert run(a, now=t1).count("succeeded") == 1
        b = keylife.KeyManager(store, policy=policy, actor="b", clock=keylife.FixedClock(t0))
        assert not plan_rotation(store.load_rings(), policy, t0)
        assert run(b, now=t0).nothing_due
        assert [v.number for v in store.load_rings()[0].versions] == [1, 2]
