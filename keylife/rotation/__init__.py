"""Rotation: the pure planner and the runner behind ``keylife rotate``."""

from .plan import Plan, Step, StepKind, plan_ring, plan_rotation
from .runner import RingResult, Runner, RunReport, StepResult, run

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
