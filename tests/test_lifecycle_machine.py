"""A Hypothesis state machine over the public API, on any store (the embedded store here;
tests/vault runs the same machine on OpenBao through the same store contract).

Rules: create, activate, suspend, resume, deactivate, revoke, rotate, schedule a destruction
(with or without a wait), cancel it, approve it (a second actor; the requester is refused), and
``keylife rotate`` (which carries out what is due), with a clock that only moves forward, under
a policy with the two-person rule. Invariants: at most one primary per ring, only allowed
transitions, history never shrinks, version numbers strictly increase; no version protects
outside [activation, deactivation]; no cryptoperiod exceeds the policy's unless an exception is
recorded; a retired ring never gains a version; destroyed material is never readable; a
scheduled destruction before its time leaves the material readable.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import keylife
from keylife.destruction import SCHEDULE, held, pending
from keylife.errors import (
    DestroyScheduleError,
    InvalidTransitionError,
    LifecycleError,
    MaterialUnavailableError,
)
from keylife.lifecycle import TRANSITIONS, Action, State
from keylife.limits import POLICY_EXCEPTION
from keylife.policy import Purpose, default_policy
from keylife.rotation import run
from keylife.store.base import KeyStore
from keylife.store.sqlite import MasterKeyFile, SqliteStore

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
RINGS = ("alpha", "beta", "gamma")
SPECS = {"alpha": "aes-256", "beta": "ed25519", "gamma": "hmac-sha256"}
PURPOSES = {"alpha": "data-encryption", "beta": "signing", "gamma": "authentication"}
ACTION_OF_EVENT = {a.value: a for a in Action}


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self, store: KeyStore) -> None:
        super().__init__()
        self.clock = keylife.FixedClock(T0)
        self.policy = replace(default_policy(), destroy_requires_second_actor=True)
        self.m = keylife.KeyManager(store, actor="machine", clock=self.clock, policy=self.policy)
        # the second actor of the two-person rule, on the same store
        self.second = keylife.KeyManager(
            store, actor="second", clock=self.clock, policy=self.policy
        )
        self.retired_at: dict[str, int] = {}  # ring -> its newest version when it retired
        self.events_seen: dict[tuple[str, int], int] = {}
        self.max_version: dict[str, int] = {}

    def teardown(self) -> None:
        self.m.close()

    def _existing(self) -> list[str]:
        return self.m.store.list_ring_names()

    @rule(name=st.sampled_from(RINGS), days_to_activation=st.integers(0, 3))
    def create(self, name: str, days_to_activation: int) -> None:
        activate_at = self.clock.now() + dt.timedelta(days=days_to_activation)
        try:
            self.m.create_ring(name, SPECS[name], PURPOSES[name], activate_at=activate_at)
        except keylife.AlreadyExistsError:
            assert name in self._existing()

    @rule(seconds=st.integers(1, 90 * 86400))
    def tick(self, seconds: int) -> None:
        self.clock.advance(dt.timedelta(seconds=seconds))

    @precondition(lambda self: bool(self._existing()))
    @rule(
        data=st.data(),
        verb=st.sampled_from(["activate", "suspend", "resume", "deactivate", "revoke"]),
    )
    def transition(self, data: st.DataObject, verb: str) -> None:
        name, version = self._pick(data)
        ring = self.m.load(name)
        before = ring.get(version)
        assert before is not None
        try:
            if verb == "revoke":
                reason = data.draw(st.sampled_from(["key-compromise", "superseded"]))
                after = self.m.revoke(name, version, reason, occurred_at=self.clock.now())
                action = Action.COMPROMISE if reason == "key-compromise" else Action.DEACTIVATE
                if action is Action.DEACTIVATE and before.state is State.DEACTIVATED:
                    # already out of use: the reason is recorded, the state stays
                    assert after.state is State.DEACTIVATED
                    assert after.revocation_reason is not None
                    assert after.events == before.events
                    return
            else:
                after = getattr(self.m, verb)(name, version)
                action = Action(verb)
        except DestroyScheduleError:
            # a version waiting to be destroyed is never put back into use
            assert verb in ("activate", "resume") and held(before)
            assert self.m.load(name).get(version) == before
            return
        except InvalidTransitionError as exc:
            action = Action.COMPROMISE if verb == "revoke" else Action(verb)
            if verb == "revoke":
                return
            superseded = any(
                w.number > version and w.state in (State.ACTIVE, State.SUSPENDED)
                for w in ring.versions
            )
            if (before.state, action) in TRANSITIONS:
                # the one refusal of an allowed transition: an older version may not take
                # protection back from a newer primary
                assert action in (Action.ACTIVATE, Action.RESUME) and superseded, exc
                assert exc.ring == name and exc.version == version
            assert self.m.load(name).get(version) == before  # refused: nothing changed
            return
        assert TRANSITIONS[(before.state, action)] is after.state
        if action in (Action.ACTIVATE, Action.RESUME):
            assert not held(before), "a version scheduled for destruction went into use"

    def _pick(self, data: st.DataObject) -> tuple[str, int]:
        """A version, most often one waiting to be destroyed (when there is one)."""
        waiting = [(r.name, v.number) for r in self.m.rings() for v in r.versions if held(v)]
        if waiting and data.draw(st.integers(0, 3)) > 0:
            return data.draw(st.sampled_from(waiting))
        name = data.draw(st.sampled_from(self._existing()))
        numbers = [v.number for v in self.m.load(name).versions]
        return name, data.draw(st.sampled_from(numbers))

    @precondition(lambda self: bool(self._existing()))
    @rule(data=st.data(), wait_days=st.sampled_from([None, 0, 3, 7, 10]))
    def destroy(self, data: st.DataObject, wait_days: int | None) -> None:
        name, number = self._pick(data)
        before = self.m.load(name).get(number)
        assert before is not None
        wait = None if wait_days is None else dt.timedelta(days=wait_days)
        try:
            after = self.m.destroy(name, number, wait=wait)
        except InvalidTransitionError:
            assert (before.state, Action.DESTROY) not in TRANSITIONS
            assert self.m.load(name).get(number) == before
            return
        except DestroyScheduleError as exc:
            short = wait is not None and wait < self.policy.destroy_wait
            assert held(before) or (short and before.state is not State.COMPROMISED), exc
            assert self.m.load(name).get(number) == before
            return
        # approval is required: nothing is erased yet, whatever the wait
        assert after.state is before.state and after.has_material
        schedule = pending(after)
        assert schedule is not None and schedule.requested_by == "machine"
        assert schedule.due == self.clock.now() + (
            self.policy.destroy_wait if wait is None else wait
        )

    @precondition(lambda self: bool(self._existing()))
    @rule(data=st.data())
    def cancel_destroy(self, data: st.DataObject) -> None:
        name, number = self._pick(data)
        before = self.m.load(name).get(number)
        assert before is not None
        try:
            after = self.m.cancel_destroy(name, number)
        except DestroyScheduleError:
            assert pending(before) is None
            assert self.m.load(name).get(number) == before
            return
        # cancel restores: the version is as it was, without the schedule
        rest = {k: v for k, v in before.attributes.items() if k != SCHEDULE}
        assert after == replace(before, attributes=rest)
        assert not held(after)

    @precondition(lambda self: bool(self._existing()))
    @rule(data=st.data(), same=st.booleans())
    def approve(self, data: st.DataObject, same: bool) -> None:
        name, number = self._pick(data)
        before = self.m.load(name).get(number)
        assert before is not None
        approver = self.m if same else self.second
        try:
            after = approver.approve_destroy(name, number)
        except DestroyScheduleError as exc:
            schedule = pending(before)
            if schedule is not None and same:
                assert "requested by machine" in str(exc) and exc.requester == "machine"
            else:
                assert schedule is None or schedule.approved  # nothing to approve, or done
            assert self.m.load(name).get(number) == before
            return
        assert not same, "the requester approved their own destruction"
        schedule = pending(after)
        assert schedule is not None and schedule.approved
        assert schedule.approvals[-1].actor == "second" and schedule.approvals[-1].identity

    @precondition(lambda self: bool(self._existing()))
    @rule()
    def rotate_run(self) -> None:
        report = run(self.m)
        assert report.ok, [(r.ring, r.error) for r in report.rings if r.error]

    @precondition(lambda self: bool(self._existing()))
    @rule(data=st.data())
    def rotate(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self._existing()))
        if "retired" in self.m.load(name).attributes:  # its last key was destroyed
            try:
                self.m.rotate(name)
            except LifecycleError as exc:
                assert "is retired" in str(exc)
                return
            raise AssertionError("a retired ring gained a version")
        v = self.m.rotate(name)
        assert self.m.ring(name).primary().number == v.number

    @invariant()
    def at_most_one_primary_and_sound_history(self) -> None:
        now = self.clock.now()
        for ring in self.m.rings():
            protecting = [v for v in ring.versions if v.protects_at(now)]
            assert len(protecting) <= 1, [(v.number, v.state.value) for v in protecting]
            primary = ring.primary(now)
            assert primary is None or primary.number == protecting[0].number
            numbers = [v.number for v in ring.versions]
            assert numbers == sorted(set(numbers))
            assert ring.next_version > max(numbers)
            assert max(numbers) >= self.max_version.get(ring.name, 0)
            self.max_version[ring.name] = max(numbers)
            for v in ring.versions:
                key = (ring.name, v.number)
                assert len(v.events) >= self.events_seen.get(key, 0), "history shrank"
                self.events_seen[key] = len(v.events)
                # every recorded event is an allowed transition
                for e in v.events[1:]:
                    assert e.from_state is not None
                    pair = (State(e.from_state), ACTION_OF_EVENT[e.action])
                    assert TRANSITIONS[pair] is State(e.to_state)
                has = self.m.store.has_material(ring.name, v.number)
                assert has == v.has_material, (v.state, has)

    @invariant()
    def dates_and_material_follow_the_policy(self) -> None:
        now = self.clock.now()
        for ring in self.m.rings():
            newest = max(v.number for v in ring.versions)
            if ring.name in self.retired_at:
                assert newest == self.retired_at[ring.name], "a retired ring gained a version"
            elif "retired" in ring.attributes:
                self.retired_at[ring.name] = newest
            period = self.policy.rules(Purpose(ring.purpose)).cryptoperiod
            for v in ring.versions:
                if v.protects_at(now):  # never outside [activation, deactivation)
                    assert v.activation is not None and v.activation <= now
                    assert v.deactivation is not None and now < v.deactivation
                if v.activation and v.deactivation and POLICY_EXCEPTION not in v.attributes:
                    assert v.deactivation - v.activation <= period
                if not v.has_material:  # destroyed material is never readable
                    try:
                        self.m.ring(ring.name).version(v.number)
                    except MaterialUnavailableError:
                        pass
                    else:
                        raise AssertionError(f"{ring.name} v{v.number} is destroyed but readable")
                schedule = pending(v)
                if schedule is not None and schedule.due > now:
                    # scheduled, not yet due: the material is still there and opens
                    assert self.m.store.get_material(ring.name, v.number, v.spec) is not None

    @invariant()
    def audit_chain_verifies(self) -> None:
        assert self.m.verify_audit().ok


SETTINGS = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def run_machine(factory: Callable[[], KeyStore], machine_settings: settings = SETTINGS) -> None:
    """Run the machine with a fresh store from ``factory`` for every example."""
    run_state_machine_as_test(lambda: LifecycleMachine(factory()), settings=machine_settings)


def test_lifecycle_machine_on_the_embedded_store(tmp_path: Path) -> None:
    def fresh() -> KeyStore:
        d = Path(tempfile.mkdtemp(prefix="kl-sm-", dir=tmp_path))
        return SqliteStore.init(d / "k.db", MasterKeyFile(d / "cfg" / "mk"))

    run_machine(fresh)
