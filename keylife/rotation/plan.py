"""Pure rotation planning: ``plan_rotation(rings, policy, now) -> Plan``.

No I/O, no clock: the same rings, policy and ``now`` always give the same plan. The rules, in
the order they apply to each ring (docs/operations.md has them as a table):

1. **activate** a pre-active version whose activation date has come (older active versions are
   then superseded: deactivated, still processing in the grace period); a pre-active version
   that a newer active version overtook never protects: it is **destroyed** instead;
2. **deactivate** an active or suspended version whose deactivation date has come;
3. **destroy** a deactivated version when the purpose sets ``destroy_after`` and that long has
   passed since its deactivation (retention is policy-approved: no wait, no second actor);
   **destroy** a version whose scheduled destruction (``keylife key destroy``) is due and, under
   ``policy.destroy_requires_second_actor``, approved by a second actor. A version scheduled for
   destruction is never activated;
4. **rotate** (create a successor and promote it) when the primary is within ``lead_time`` of its
   deactivation, or when there is no primary, unless a successor is already waiting; with a
   ``stage`` window the successor is created pre-active and rule 1 promotes it later
   (**stage**);
5. **renew-certificate** instead of rule 4 for rings that hold ACME certificates, when the
   renewal time (ARI window, or a third of the lifetime left) has come, or at once when the
   primary holds no certificate (after a compromise whose CA could not be reached);
   With ARI, the window is asked again once its Retry-After has passed
   (**refresh-renewal-info**);
6. **revoke-certificate** for a compromised version whose certificate the CA has not yet
   confirmed revoked (the CA was unreachable during ``keylife key compromise``);
7. **rollover-account** instead of rule 4 for ACME account keys: the CA must be told of the new
   key (keyChange), so a fresh key alone would lose the account. An account ring with no
   primary is left for an operator.

8. **rotate** at once, to the purpose's default type, when the policy in force no longer allows
   the primary's type for a new key (reason ``policy: ...``).
9. **rotate** (or **stage**) at once when the primary has encrypted the purpose's
   ``max_messages`` (``counts``: messages per version, as the store counted them; reason
   ``... max_messages ...``).

A ring with a suspended version and no primary is left alone: suspension is an operator's hold.
A retired ring (``keylife key retire``, a revocation for cessation of operation, or an operator
destroying its last key) gets no new version: rules 4, 5 and 7 do not apply to it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..certificates import (
    CERTIFICATE_PEM,
    CERTIFICATE_REVOKED,
    certificate_due,
    is_account_ring,
    is_certificate_ring,
    retry_after,
)
from ..changes import retired
from ..destruction import DestroySchedule, held, pending, ready
from ..errors import CorruptRecordError
from ..lifecycle import KeyVersion, Ring, State
from ..limits import spec_violation
from ..policy import TRANSITION_DATE, Policy, Purpose


class StepKind(enum.Enum):
    ACTIVATE = "activate"
    DEACTIVATE = "deactivate"
    DESTROY = "destroy"
    ROTATE = "rotate"
    STAGE = "stage"
    RENEW_CERTIFICATE = "renew-certificate"
    ROLLOVER_ACCOUNT = "rollover-account"
    REVOKE_CERTIFICATE = "revoke-certificate"
    REFRESH_RENEWAL_INFO = "refresh-renewal-info"


@dataclass(frozen=True)
class Step:
    kind: StepKind
    ring: str
    version: int | None
    reason: str
    due: dt.datetime

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "ring": self.ring,
            "version": self.version,
            "reason": self.reason,
            "due": self.due.isoformat(),
        }


@dataclass(frozen=True)
class Plan:
    now: dt.datetime
    steps: tuple[Step, ...]
    next_due: dict[str, dt.datetime | None] = field(default_factory=dict)

    @property
    def rings(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.steps:
            seen.setdefault(s.ring, None)
        return list(seen)

    def for_ring(self, name: str) -> list[Step]:
        return [s for s in self.steps if s.ring == name]

    def __bool__(self) -> bool:
        return bool(self.steps)

    def to_dict(self) -> dict[str, object]:
        return {
            "as_of": self.now.isoformat(),
            "steps": [s.to_dict() for s in self.steps],
            "next_due": {k: (v.isoformat() if v else None) for k, v in self.next_due.items()},
        }


@dataclass
class _Sim:
    """One ring's state as the date-driven steps leave it, while a plan is being made."""

    ring: Ring
    now: dt.datetime
    steps: list[Step] = field(default_factory=list)
    future: list[dt.datetime] = field(default_factory=list)
    states: dict[int, State] = field(default_factory=dict)
    deactivation: dict[int, dt.datetime | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.states = {v.number: v.state for v in self.ring.versions}
        self.deactivation = {v.number: v.deactivation for v in self.ring.versions}

    def step(
        self, kind: StepKind, version: int | None, reason: str, due: dt.datetime | None = None
    ) -> None:
        self.steps.append(Step(kind, self.ring.name, version, reason, due or self.now))

    def at(self, when: dt.datetime) -> bool:
        """True when ``when`` has come; otherwise remember it as a future event."""
        if when <= self.now:
            return True
        self.future.append(when)
        return False

    def protects(self, v: KeyVersion) -> bool:
        end = self.deactivation[v.number]
        return (
            self.states[v.number] is State.ACTIVE
            and (v.activation is None or v.activation <= self.now)
            and (end is None or self.now < end)
            and (v.protect_stop is None or self.now < v.protect_stop)
        )


def _activations(sim: _Sim) -> None:
    """Rule 1: pre-active versions whose date has come activate, superseding older ones; one
    that a newer version overtook (it left pre-active first) never protects and is destroyed
    instead."""
    versions = sim.ring.versions
    for v in versions:
        if v.state is not State.PRE_ACTIVE or v.activation is None or held(v):
            continue  # a version scheduled for destruction is never put into use
        if not sim.at(v.activation):
            continue
        newer = [
            w.number for w in versions if w.number > v.number and w.state is not State.PRE_ACTIVE
        ]
        if newer:
            sim.step(
                StepKind.DESTROY,
                v.number,
                f"superseded by v{max(newer)} before its activation",
                v.activation,
            )
            sim.states[v.number] = State.DESTROYED
            continue
        sim.step(StepKind.ACTIVATE, v.number, "activation date reached", v.activation)
        sim.states[v.number] = State.ACTIVE
        for w in versions:  # superseded in the same write
            if w.number < v.number and sim.states[w.number] in (State.ACTIVE, State.SUSPENDED):
                sim.states[w.number] = State.DEACTIVATED
                sim.deactivation[w.number] = sim.now


def _expiries(sim: _Sim, destroy_after: dt.timedelta | None) -> None:
    """Rules 2 and 3: deactivation dates, then the retention period after deactivation."""
    for v in sim.ring.versions:
        live = sim.states[v.number] in (State.ACTIVE, State.SUSPENDED)
        if live and v.deactivation is not None and sim.at(v.deactivation):
            sim.step(StepKind.DEACTIVATE, v.number, "deactivation date reached", v.deactivation)
            sim.states[v.number] = State.DEACTIVATED
    if destroy_after is None:
        return
    for v in sim.ring.versions:
        end = sim.deactivation[v.number]
        gone = sim.states[v.number] is State.DEACTIVATED
        if gone and end is not None and sim.at(end + destroy_after):
            sim.step(StepKind.DESTROY, v.number, "retention period ended", end + destroy_after)


def _scheduled(sim: _Sim, second_actor: bool) -> None:
    """Rule 3, an operator's request: a scheduled destruction whose time has come (and, with the
    two-person rule, that a second actor approved)."""
    stepped = {s.version for s in sim.steps if s.kind is StepKind.DESTROY}
    for v in sim.ring.versions:
        if v.number in stepped or not held(v):
            continue
        if not ready(v, sim.now, second_actor=second_actor):
            schedule = _schedule_or_none(v)
            if schedule is not None and schedule.due > sim.now:
                sim.future.append(schedule.due)
            continue
        schedule = pending(v)
        assert schedule is not None
        approval = ", approved" if schedule.approved else ""
        sim.step(
            StepKind.DESTROY,
            v.number,
            f"destruction scheduled by {schedule.requested_by}{approval}, due "
            f"{schedule.due.isoformat()}",
            schedule.due,
        )
        sim.states[v.number] = State.DESTROYED


def _schedule_or_none(v: KeyVersion) -> DestroySchedule | None:
    try:
        return pending(v)
    except CorruptRecordError:
        return None


def destroy_due(ring: Ring, number: int, policy: Policy, now: dt.datetime) -> bool:
    """Whether the planner destroys version ``number`` of ``ring`` at ``now`` (retention, an
    overtaken pre-active version, or a scheduled destruction that is due)."""
    steps, _ = plan_ring(ring, policy, now)
    return any(s.kind is StepKind.DESTROY and s.version == number for s in steps)


def _successor_waiting(sim: _Sim, primary: KeyVersion | None) -> bool:
    """A newer version is pre-active, or already active but not yet in its active period
    (written by a run whose clock was ahead of ours)."""
    for v in sim.ring.versions:
        if primary is not None and v.number <= primary.number:
            continue
        state = sim.states[v.number]
        if held(v):
            continue
        if state is State.PRE_ACTIVE or (
            state is State.ACTIVE and v.activation is not None and v.activation > sim.now
        ):
            return True
    return False


def _certificate_steps(sim: _Sim, primary: KeyVersion | None, idle: bool) -> None:
    """Rules 5 and 6 for rings whose versions are ACME certificates."""
    for v in sim.ring.versions:
        if (
            v.state in (State.COMPROMISED, State.DESTROYED_COMPROMISED)
            and CERTIFICATE_PEM in v.attributes
            and CERTIFICATE_REVOKED not in v.attributes
        ):
            sim.step(
                StepKind.REVOKE_CERTIFICATE,
                v.number,
                "compromised key's certificate not yet revoked at the CA",
                v.compromise_date,
            )
    if primary is None:
        if idle:
            sim.step(StepKind.RENEW_CERTIFICATE, None, "no valid certificate")
        return
    if CERTIFICATE_PEM not in primary.attributes:
        sim.step(StepKind.RENEW_CERTIFICATE, primary.number, "primary holds no certificate")
        return
    due = certificate_due(primary, sim.now)
    if due is None:
        return
    retry = retry_after(primary)
    if due > sim.now and retry is not None and retry <= sim.now:
        sim.step(
            StepKind.REFRESH_RENEWAL_INFO,
            primary.number,
            "the CA's renewal window is due to be asked again (Retry-After)",
            retry,
        )
    elif retry is not None:
        sim.future.append(retry)
    if sim.at(due):
        sim.step(
            StepKind.RENEW_CERTIFICATE, primary.number, "certificate renewal window reached", due
        )


def _rotation_step(
    sim: _Sim, policy: Policy, primary: KeyVersion | None, idle: bool, counts: Mapping[int, int]
) -> None:
    """Rules 4 and 7: a successor before the primary stops protecting, or when there is none,
    or at once when the policy no longer allows the primary's type (rule 8) or the primary
    encrypted ``max_messages`` (rule 9)."""
    rules = policy.rules(Purpose(sim.ring.purpose))
    account = is_account_ring(sim.ring)
    if primary is None:
        if idle and not account:
            sim.step(StepKind.ROTATE, None, "ring has no active version")
        return
    if _successor_waiting(sim, primary):
        return
    outdated = spec_violation(sim.ring, primary, policy, sim.now)
    if outdated and not account:
        # the policy moved on: replace the key with the purpose's default type now
        sim.step(StepKind.ROTATE, primary.number, f"policy: {outdated}")
        return
    used = counts.get(primary.number, 0)
    if rules.max_messages is not None and used >= rules.max_messages and not account:
        sim.step(
            StepKind.STAGE if rules.stage is not None else StepKind.ROTATE,
            primary.number,
            f"v{primary.number} encrypted {used} messages, max_messages is {rules.max_messages}",
        )
        return
    if sim.now < TRANSITION_DATE and spec_violation(sim.ring, primary, policy, TRANSITION_DATE):
        sim.future.append(TRANSITION_DATE)  # the one date the policy's verdict changes on
    ends = [e for e in (sim.deactivation[primary.number], primary.protect_stop) if e is not None]
    if not ends:
        return
    end = min(ends)
    if sim.at(end - rules.lead_time):
        kind = StepKind.STAGE if rules.stage is not None else StepKind.ROTATE
        sim.step(
            StepKind.ROLLOVER_ACCOUNT if account else kind,
            primary.number,
            f"v{primary.number} stops protecting {end.isoformat()} (lead time "
            f"{rules.lead_time.days}d)",
            end - rules.lead_time,
        )


def plan_ring(
    ring: Ring, policy: Policy, now: dt.datetime, counts: Mapping[int, int] | None = None
) -> tuple[list[Step], dt.datetime | None]:
    """Steps due for one ring at ``now``, and the first moment after ``now`` at which its plan
    may change (None: never). When nothing is due at ``now``, nothing is due before that moment:
    :mod:`keylife.rotation.schedule` skips the ring until then, so a rule that compares a date
    with ``now`` must put that date in ``sim.future`` (``sim.at``) when it lies ahead.
    ``counts``: messages encrypted per version (``KeyStore.encryption_counts``), for rule 9; a
    count that grows does not change the ring, so the embedded store voids a quiet ring's record
    whenever its count is written (:mod:`keylife.store.sqlite_schedule`)."""
    try:
        rules = policy.rules(Purpose(ring.purpose))
    except ValueError:
        return [], None
    sim = _Sim(ring, now)
    _activations(sim)
    _expiries(sim, rules.destroy_after)
    _scheduled(sim, policy.destroy_requires_second_actor)
    primary = max(
        (v for v in ring.versions if sim.protects(v)), key=lambda v: v.number, default=None
    )
    for v in ring.versions:  # the dates protects() and _successor_waiting() compare with now
        sim.future += [w for w in (v.activation, sim.deactivation[v.number], v.protect_stop) if w]
    suspended = any(state is State.SUSPENDED for state in sim.states.values())
    idle = not suspended and not _successor_waiting(sim, primary) and not retired(ring)
    if is_certificate_ring(ring):  # a retired certificate ring only gets revocations
        _certificate_steps(sim, None if retired(ring) else primary, idle)
    elif not retired(ring):
        _rotation_step(sim, policy, primary, idle, counts or {})
    next_due = min((f for f in sim.future if f > now), default=None)
    return sim.steps, next_due


def plan_rotation(
    rings: Iterable[Ring],
    policy: Policy,
    now: dt.datetime,
    counts: Mapping[str, Mapping[int, int]] | None = None,
) -> Plan:
    """Every step due at ``now`` across ``rings``, ring by ring in name order (``counts``:
    messages encrypted per ring and version)."""
    steps: list[Step] = []
    next_due: dict[str, dt.datetime | None] = {}
    for ring in sorted(rings, key=lambda r: r.name):
        ring_steps, nxt = plan_ring(ring, policy, now, (counts or {}).get(ring.name))
        steps.extend(ring_steps)
        next_due[ring.name] = nxt
    return Plan(now, tuple(steps), next_due)


def rotation_due(
    ring: Ring, policy: Policy, now: dt.datetime, counts: Mapping[int, int] | None = None
) -> bool:
    """Whether the planner would make a successor for ``ring`` at ``now`` (rotate or stage)."""
    steps, _ = plan_ring(ring, policy, now, counts)
    return any(s.kind in (StepKind.ROTATE, StepKind.STAGE) for s in steps)
