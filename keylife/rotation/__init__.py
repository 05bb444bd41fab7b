"""Rotation: the pure planner (:mod:`keylife.rotation.plan`) and the runner behind
``keylife rotate`` (:mod:`keylife.rotation.runner`).

Names are imported on first use, so ``import keylife.rotation.plan`` loads only the pure core.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .plan import Plan, Step, StepKind, plan_ring, plan_rotation
    from .results import RingResult, RunReport, StepResult
    from .runner import Runner, run

_LAZY = {
    "Plan": "plan",
    "Step": "plan",
    "StepKind": "plan",
    "plan_ring": "plan",
    "plan_rotation": "plan",
    "RingResult": "results",
    "Runner": "runner",
    "RunReport": "results",
    "StepResult": "results",
    "run": "runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'keylife.rotation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Plan",
    "RingResult",
    "RunReport",
    "Runner",
    "Step",
    "StepKind",
    "StepResult",
    "plan_ring",
    "plan_rotation",
    "run",
]
