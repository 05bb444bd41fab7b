"""What ``keylife rotate`` will do over a window: the pure planner, stepping through time.

:func:`forecast` plans each ring at ``now`` with :func:`~keylife.rotation.plan.plan_ring`,
applies the planned steps to a simulated copy of the ring with the pure operations of
:mod:`keylife.operations` (a fresh key is a placeholder fingerprint, never material), plans
again at the same moment until nothing more is due, then moves to the next due date the planner
names, up to ``now + window``. Nothing is read or written: the same rings, policy, ``now`` and
window always give the same forecast.

A step whose result only the CA decides (a certificate renewal, a revocation, a renewal-window
refresh) is listed, and that ring's forecast ends there: the certificate the CA will issue is
not known in advance. The ring's entry in :attr:`Forecast.stopped` says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import KeylifeError
from ..lifecycle import Action, Ring
from ..operations import NewKey, rotate, transition_version
from ..policy import Policy, Purpose
from ..specs import KeySpec, parse_spec
from .plan import Step, StepKind, plan_ring

__all__ = ["MAX_EVENTS_PER_RING", "Forecast", "ForecastStep", "forecast", "forecast_ring"]

#: At most this many planner calls per ring (a bound, so a long window always ends).
MAX_EVENTS_PER_RING = 512
#: At most this many re-plans at one moment before the ring is reported as not settling.
MAX_SETTLE = 8
#: The actor and fingerprint the simulated changes carry (never written anywhere).
ACTOR = "keylife-forecast"
PLACEHOLDER = "forecast"

_TRANSITION = {
    StepKind.ACTIVATE: Action.ACTIVATE,
    StepKind.DEACTIVATE: Action.DEACTIVATE,
    StepKind.DESTROY: Action.DESTROY,
}
#: Steps whose outcome the CA decides: listed, then that ring's forecast ends.
_CA_DECIDES = frozenset(
    {StepKind.RENEW_CERTIFICATE, StepKind.REVOKE_CERTIFICATE, StepKind.REFRESH_RENEWAL_INFO}
)


@dataclass(frozen=True)
class ForecastStep:
    """A planned ``step`` and the moment ``at`` a run would apply it (an overdue step: now)."""

    at: dt.datetime
    step: Step

    def to_dict(self) -> dict[str, object]:
        return {"at": self.at.isoformat(), **self.step.to_dict()}


@dataclass(frozen=True)
class Forecast:
    now: dt.datetime
    end: dt.datetime
    steps: tuple[ForecastStep, ...]
    #: Rings whose forecast ended early, and why.
    stopped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "as_of": self.now.isoformat(),
            "until": self.end.isoformat(),
            "steps": [s.to_dict() for s in self.steps],
            "stopped": dict(sorted(self.stopped.items())),
        }


def _successor_spec(ring: Ring, policy: Policy, purpose: Purpose, at: dt.datetime) -> KeySpec:
    """The ring's spec while the policy allows it, else the purpose's default type (as the
    manager chooses)."""
    try:
        policy.check(ring.spec, purpose, at)
        return ring.spec
    except KeylifeError:
        return parse_spec(policy.rules(purpose).default_type)


def _apply(ring: Ring, step: Step, policy: Policy, at: dt.datetime) -> Ring:
    """``ring`` after ``step`` at ``at``, through the pure operations the runner's manager
    calls."""
    purpose = Purpose(ring.purpose)
    rules = policy.rules(purpose)
    if step.kind in _TRANSITION:
        assert step.version is not None
        return transition_version(
            ring,
            step.version,
            _TRANSITION[step.kind],
            actor=ACTOR,
            now=at,
            reason=step.reason,
            if_needed=True,
            cryptoperiod=rules.cryptoperiod if step.kind is StepKind.ACTIVATE else None,
        ).ring
    # rotate, stage, rollover-account: a successor with a placeholder fingerprint
    spec = _successor_spec(ring, policy, purpose, at)
    return rotate(
        ring,
        NewKey(PLACEHOLDER, spec),
        actor=ACTOR,
        now=at,
        cryptoperiod=rules.cryptoperiod,
        stage=rules.stage if step.kind is StepKind.STAGE else None,
        reason=step.reason,
    ).ring


def forecast_ring(
    ring: Ring, policy: Policy, now: dt.datetime, end: dt.datetime
) -> tuple[list[ForecastStep], str]:
    """Every step of ``ring`` due by ``end``, in date order, and why the forecast ended early
    (empty when it ran to ``end``)."""
    out: list[ForecastStep] = []
    at = now
    for _ in range(MAX_EVENTS_PER_RING):
        nxt: dt.datetime | None = None
        for _ in range(MAX_SETTLE):
            steps, nxt = plan_ring(ring, policy, at)
            if not steps:
                break
            for step in steps:
                out.append(ForecastStep(at, step))
                if step.kind in _CA_DECIDES:
                    return (
                        out,
                        f"{step.kind.value} at {at.isoformat()}: the CA decides what follows",
                    )
                try:
                    ring = _apply(ring, step, policy, at)
                except KeylifeError as exc:
                    return out, f"{step.kind.value} at {at.isoformat()} cannot be simulated: {exc}"
        else:
            return out, f"ring does not settle at {at.isoformat()} (policy loop)"
        if nxt is None or nxt > end or nxt <= at:
            return out, ""
        at = nxt
    return out, f"more than {MAX_EVENTS_PER_RING} planner calls before {end.isoformat()}"


def forecast(
    rings: Iterable[Ring], policy: Policy, now: dt.datetime, window: dt.timedelta
) -> Forecast:
    """Every step due within ``window`` of ``now`` across ``rings``, in date order (rings in
    name order at the same moment, as :func:`~keylife.rotation.plan.plan_rotation` lists
    them)."""
    end = now + window
    steps: list[ForecastStep] = []
    stopped: dict[str, str] = {}
    for ring in sorted(rings, key=lambda r: r.name):
        ring_steps, why = forecast_ring(ring, policy, now, end)
        steps.extend(ring_steps)
        if why:
            stopped[ring.name] = why
    steps.sort(key=lambda s: s.at)  # stable: name order, then plan order, at one moment
    return Forecast(now, end, tuple(steps), stopped)
