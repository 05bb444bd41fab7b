"""What a rotation run did: frozen results per step, per ring and for the run (the JSON report
of ``keylife rotate --json``; the CLI maps them to exit codes)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

__all__ = ["RingResult", "RunReport", "StepResult"]


@dataclass(frozen=True)
class StepResult:
    kind: str
    version: int | None
    outcome: str  # succeeded | failed | planned
    message: str = ""
    new_version: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "version": self.version,
            "outcome": self.outcome,
            "message": self.message,
            "new_version": self.new_version,
        }


@dataclass(frozen=True)
class RingResult:
    ring: str
    status: str  # succeeded | failed | skipped | planned
    steps: tuple[StepResult, ...] = ()
    error: str = ""
    next_due: dt.datetime | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "ring": self.ring,
            "status": self.status,
            "steps": [s.to_dict() for s in self.steps],
            "error": self.error,
            "next_due": None if self.next_due is None else self.next_due.isoformat(),
        }


@dataclass(frozen=True)
class RunReport:
    as_of: dt.datetime
    dry_run: bool
    rings: tuple[RingResult, ...]
    rings_checked: int
    next_due: dict[str, dt.datetime | None] = field(default_factory=dict)
    aborted: str = ""

    @property
    def failed(self) -> list[str]:
        return [r.ring for r in self.rings if r.status == "failed"]

    @property
    def nothing_due(self) -> bool:
        return not self.rings

    @property
    def ok(self) -> bool:
        """Nothing failed and the run was not cut short."""
        return not self.aborted and not self.failed

    def count(self, status: str) -> int:
        return sum(1 for r in self.rings if r.status == status)

    def to_dict(self) -> dict[str, object]:
        return {
            "schema_version": 1,
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "rings_checked": self.rings_checked,
            "nothing_due": self.nothing_due,
            "summary": {s: self.count(s) for s in ("succeeded", "failed", "skipped", "planned")},
            "failed": self.failed,
            "aborted": self.aborted or None,
            "rings": [r.to_dict() for r in self.rings],
        }
