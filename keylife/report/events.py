"""Upcoming lifecycle events of one ring: the pure planner, stepped through time.

:func:`upcoming_events` calls :func:`keylife.rotation.plan.plan_ring` at ``now`` and then at
each next due date it names, up to the end of the window, and keeps every step once (by kind
and version, at the first date it falls due; one successor step per ring). The ring is not
changed between calls: events that only follow from a step being applied (the activation of a
successor that a rotation would create) are not predicted, which is what the plan can promise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..lifecycle import Ring
from ..policy import Policy
from ..rotation.plan import StepKind, plan_ring

__all__ = ["MAX_STEPS", "Event", "upcoming_events"]

#: Steps that make a ring's next version: only the first one in the window is kept.
SUCCESSOR = frozenset(
    {StepKind.ROTATE, StepKind.STAGE, StepKind.RENEW_CERTIFICATE, StepKind.ROLLOVER_ACCOUNT}
)

#: At most this many planner calls per ring (each lands on a distinct due date).
MAX_STEPS = 32


@dataclass(frozen=True)
class Event:
    due: dt.datetime
    ring: str
    version: int | None
    kind: str
    reason: str
    overdue: bool


def upcoming_events(
    ring: Ring, policy: Policy, now: dt.datetime, window: dt.timedelta
) -> tuple[list[Event], dt.datetime | None]:
    """Steps of ``ring`` due before ``now + window`` (overdue ones first), and the next due
    date after ``now``."""
    end = now + window
    seen: set[tuple[str, int | None]] = set()
    events: list[Event] = []
    at = now
    first_next: dt.datetime | None = None
    for _ in range(MAX_STEPS):
        steps, nxt = plan_ring(ring, policy, at)
        if at == now:
            first_next = nxt
        for s in steps:
            # one successor per ring: after a predicted rotation, the planner (which does not
            # apply it) would also report "no active version" once the primary expires
            key = ("successor", None) if s.kind in SUCCESSOR else (s.kind.value, s.version)
            if key in seen:
                continue
            seen.add(key)
            events.append(Event(s.due, ring.name, s.version, s.kind.value, s.reason, s.due < now))
        if nxt is None or nxt > end or nxt <= at:
            break
        at = nxt
    return events, first_next
