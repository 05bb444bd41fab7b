"""Pure rotation planning: ``plan_rotation(rings, policy, now) -> Plan``.

No I/O, no clock: the same rings, policy and ``now`` always give the same plan. The rules, in
the order they apply to each ring (docs/operations.md has them as a table):

1. **activate** a pre-active version whose activation date has come (older active versions are
   then superseded: deactivated, still processing in the grace period);
2. **deactivate** an active or suspended version whose deactivation date has come;
3. **destroy** a deactivated version when the purpose sets ``destroy_after`` and that long has
   passed since its deactivation;
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

A ring with a suspended version and no primary is left alone: suspension is an operator's hold.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..certificates import (
    CERTIFICATE_PEM,
    CERTIFICATE_REVOKED,
    certificate_due,
    is_account_ring,
    is_certificate_ring,
    retry_after,
)
from ..lifecycle import KeyVersion, Ring, State
from ..policy import Policy, Purpose


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


def plan_ring(
    ring: Ring, policy: Policy, now: dt.datetime
) -> tuple[list[Step], dt.datetime | None]:
    """Steps due for one ring at ``now``, and the next moment something falls due after it."""
    try:
        rules = policy.rules(Purpose(ring.purpose))
    except ValueError:
        return [], None
    steps: list[Step] = []
    future: list[dt.datetime] = []
    # State after the date-driven steps, to decide on rotation.
    states: dict[int, State] = {v.number: v.state for v in ring.versions}
    deactivation: dict[int, dt.datetime | None] = {v.number: v.deactivation for v in ring.versions}

    for v in ring.versions:
        if v.state is State.PRE_ACTIVE and v.activation is not None:
            if v.activation <= now:
                steps.append(
                    Step(
                        StepKind.ACTIVATE,
                        ring.name,
                        v.number,
                        "activation date reached",
                        v.activation,
                    )
                )
                states[v.number] = State.ACTIVE
            else:
                future.append(v.activation)
    activated = [s.version for s in steps if s.version is not None]
    newest_activated = max(activated, default=None)
    for v in ring.versions:
        if (
            newest_activated is not None
            and v.number < newest_activated
            and states[v.number] in (State.ACTIVE, State.SUSPENDED)
        ):
            # superseded when the newer version activates (done in the same write)
            states[v.number] = State.DEACTIVATED
            deactivation[v.number] = now
    for v in ring.versions:
        if states[v.number] in (State.ACTIVE, State.SUSPENDED) and v.deactivation is not None:
            if v.deactivation <= now:
                steps.append(
                    Step(
                        StepKind.DEACTIVATE,
                        ring.name,
                        v.number,
                        "deactivation date reached",
                        v.deactivation,
                    )
                )
                states[v.number] = State.DEACTIVATED
            else:
                future.append(v.deactivation)
    if rules.destroy_after is not None:
        for v in ring.versions:
            end = deactivation[v.number]
            if states[v.number] is State.DEACTIVATED and end is not None:
                when = end + rules.destroy_after
                if when <= now:
                    steps.append(
                        Step(StepKind.DESTROY, ring.name, v.number, "retention period ended", when)
                    )
                else:
                    future.append(when)

    def protects(v: KeyVersion) -> bool:
        end = deactivation[v.number]
        return (
            states[v.number] is State.ACTIVE
            and (v.activation is None or v.activation <= now)
            and (end is None or now < end)
            and (v.protect_stop is None or now < v.protect_stop)
        )

    primary = max((v for v in ring.versions if protects(v)), key=lambda v: v.number, default=None)
    # A successor is waiting when a newer version is pre-active, or already active but not
    # yet in its active period (written by a run whose clock was ahead of ours).
    waiting = [
        v
        for v in ring.versions
        if (primary is None or v.number > primary.number)
        and (
            states[v.number] is State.PRE_ACTIVE
            or (
                states[v.number] is State.ACTIVE and v.activation is not None and v.activation > now
            )
        )
    ]
    suspended = any(states[v.number] is State.SUSPENDED for v in ring.versions)

    if is_certificate_ring(ring):
        for v in ring.versions:
            if (
                v.state in (State.COMPROMISED, State.DESTROYED_COMPROMISED)
                and CERTIFICATE_PEM in v.attributes
                and CERTIFICATE_REVOKED not in v.attributes
            ):
                steps.append(
                    Step(
                        StepKind.REVOKE_CERTIFICATE,
                        ring.name,
                        v.number,
                        "compromised key's certificate not yet revoked at the CA",
                        v.compromise_date or now,
                    )
                )
        if primary is not None and CERTIFICATE_PEM not in primary.attributes:
            steps.append(
                Step(
                    StepKind.RENEW_CERTIFICATE,
                    ring.name,
                    primary.number,
                    "primary holds no certificate",
                    now,
                )
            )
        elif primary is not None:
            due = certificate_due(primary, now)
            if due is not None:
                retry = retry_after(primary)
                if due > now and retry is not None and retry <= now:
                    steps.append(
                        Step(
                            StepKind.REFRESH_RENEWAL_INFO,
                            ring.name,
                            primary.number,
                            "the CA's renewal window is due to be asked again (Retry-After)",
                            retry,
                        )
                    )
                elif retry is not None:
                    future.append(retry)
                if due <= now:
                    steps.append(
                        Step(
                            StepKind.RENEW_CERTIFICATE,
                            ring.name,
                            primary.number,
                            "certificate renewal window reached",
                            due,
                        )
                    )
                else:
                    future.append(due)
        elif not waiting and not suspended:
            steps.append(
                Step(StepKind.RENEW_CERTIFICATE, ring.name, None, "no valid certificate", now)
            )
    elif primary is None:
        if not waiting and not suspended and not is_account_ring(ring):
            kind = StepKind.ROTATE
            steps.append(Step(kind, ring.name, None, "ring has no active version", now))
    elif not waiting:
        ends = [e for e in (deactivation[primary.number], primary.protect_stop) if e is not None]
        end = min(ends, default=None)
        if end is not None:
            due = end - rules.lead_time
            if due <= now:
                kind = StepKind.STAGE if rules.stage is not None else StepKind.ROTATE
                if is_account_ring(ring):
                    kind = StepKind.ROLLOVER_ACCOUNT
                steps.append(
                    Step(
                        kind,
                        ring.name,
                        primary.number,
                        f"v{primary.number} stops protecting {end.isoformat()} (lead time "
                        f"{rules.lead_time.days}d)",
                        due,
                    )
                )
            else:
                future.append(due)
    next_due = min((f for f in future if f > now), default=None)
    return steps, next_due


def plan_rotation(rings: Iterable[Ring], policy: Policy, now: dt.datetime) -> Plan:
    """Every step due at ``now`` across ``rings``, ring by ring in name order."""
    steps: list[Step] = []
    next_due: dict[str, dt.datetime | None] = {}
    for ring in sorted(rings, key=lambda r: r.name):
        ring_steps, nxt = plan_ring(ring, policy, now)
        steps.extend(ring_steps)
        next_due[ring.name] = nxt
    return Plan(now, tuple(steps), next_due)
