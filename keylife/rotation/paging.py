"""Planning a large store a page at a time, so a run holds at most a page of rings (plus the
due ones) in memory however many the store has.

:func:`plan_pages` plans each page with the same pure planner and keeps only what the run
needs afterwards: the steps, every ring's next event and planned revision, the due rings
themselves (the runner applies them from this snapshot) and the damaged ones' reasons. The
health check then reads the pages again (:func:`replanned_pages`), skipping a ring written
since it was planned: its record is void and the next run plans it afresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from ..lifecycle import Ring
from ..policy import Policy
from .plan import Plan, Step, plan_rotation

__all__ = ["PagedPlan", "plan_pages", "replanned_pages"]


@dataclass
class PagedPlan:
    """What planning the pages left: the plan, and per ring what the run keeps."""

    plan: Plan
    due: dict[str, Ring] = field(default_factory=dict)
    counts: dict[str, dict[int, int]] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)
    damaged: dict[str, str] = field(default_factory=dict)


def plan_pages(
    pages: Iterable[list[Ring]],
    policy: Policy,
    now: dt.datetime,
    counts_of: Callable[[Ring], dict[int, int]],
) -> PagedPlan:
    """Plan every page at ``now``; steps in ring-name order, as one call over all would."""
    steps: list[Step] = []
    next_due: dict[str, dt.datetime | None] = {}
    out = PagedPlan(Plan(now, ()))
    for page in pages:
        counts = {r.name: counts_of(r) for r in page}
        planned = plan_rotation(page, policy, now, counts)
        steps.extend(planned.steps)
        next_due.update(planned.next_due)
        due = set(planned.rings)
        for ring in page:
            out.revisions[ring.name] = ring.revision
            if ring.damage:
                out.damaged[ring.name] = ring.damage
            if ring.name in due or ring.damage:
                out.due[ring.name] = ring
                out.counts[ring.name] = counts[ring.name]
    out.plan = Plan(now, tuple(steps), next_due)
    return out


def replanned_pages(
    pages: Iterable[list[Ring]], revisions: Mapping[str, int]
) -> Iterator[list[Ring]]:
    """The pages again, each without the rings written since they were planned."""
    for page in pages:
        yield [r for r in page if revisions.get(r.name) == r.revision]
