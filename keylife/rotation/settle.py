"""Settling one ring: re-plan and apply its first due step until nothing is due, each ring's
failure its own."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from ..errors import KeylifeError, StoreUnavailableError
from .plan import Step, StepKind
from .results import RingResult, StepResult

__all__ = ["MAX_STEPS_PER_RING", "settle"]

log = logging.getLogger("keylife.rotate")

#: The most steps one ring takes in a run (a ring that never settles fails, named).
MAX_STEPS_PER_RING = 32


def settle(
    name: str,
    plan: Callable[[], tuple[list[Step], dt.datetime | None]],
    apply: Callable[[Step], int | None],
    *,
    once: frozenset[StepKind],
    on_failure: Callable[[KeylifeError], None] | None = None,
) -> RingResult:
    """Re-plan and apply the first due step until nothing is due (steps of a kind in ``once``
    at most once). A store outage propagates; any other error fails this ring only."""
    done: list[StepResult] = []
    next_due: dt.datetime | None = None
    try:
        for _ in range(MAX_STEPS_PER_RING):
            steps, next_due = plan()
            ran = {d.kind for d in done}
            steps = [s for s in steps if not (s.kind in once and s.kind.value in ran)]
            if not steps:
                return RingResult(name, "succeeded", tuple(done), next_due=next_due)
            step = steps[0]
            new = apply(step)
            log.info("%s: %s v%s done (%s)", name, step.kind.value, step.version, step.reason)
            done.append(StepResult(step.kind.value, step.version, "succeeded", step.reason, new))
        raise KeylifeError(f"ring {name} did not settle after {MAX_STEPS_PER_RING} steps")
    except StoreUnavailableError:
        raise
    except Exception as exc:
        if not isinstance(exc, KeylifeError):
            log.debug("%s: unexpected error", name, exc_info=True)
            exc = KeylifeError(f"unexpected {type(exc).__name__}: {exc}")
        log.error("%s: %s", name, exc)
        if on_failure is not None:
            on_failure(exc)
        failed = StepResult("error", None, "failed", str(exc))
        return RingResult(name, "failed", (*done, failed), str(exc), next_due)
