"""Prometheus textfile output of a rotation run, for node_exporter's textfile collector."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .runner import RunReport

_LAST_SUCCESS = re.compile(r"^keylife_rotate_last_success_timestamp_seconds\s+(\S+)\s*$", re.M)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(report: RunReport, previous: str = "") -> str:
    """The textfile for ``report``; the last success time is carried over from ``previous``."""
    run_ts = report.as_of.timestamp()
    last_success = run_ts if not report.failed else None
    if last_success is None:
        m = _LAST_SUCCESS.search(previous)
        last_success = float(m.group(1)) if m else None
    lines = [
        "# HELP keylife_rotate_last_run_timestamp_seconds When the last rotation run happened.",
        "# TYPE keylife_rotate_last_run_timestamp_seconds gauge",
        f"keylife_rotate_last_run_timestamp_seconds {run_ts:.3f}",
        "# HELP keylife_rotate_last_success_timestamp_seconds Last run in which no ring failed.",
        "# TYPE keylife_rotate_last_success_timestamp_seconds gauge",
    ]
    if last_success is not None:
        lines.append(f"keylife_rotate_last_success_timestamp_seconds {last_success:.3f}")
    steps: dict[tuple[str, str], int] = {}
    for r in report.rings:
        for s in r.steps:
            if s.outcome == "succeeded":
                steps[(r.ring, s.kind)] = steps.get((r.ring, s.kind), 0) + 1
    lines += [
        "# HELP keylife_rotate_steps Steps applied in the last run, by ring and kind.",
        "# TYPE keylife_rotate_steps gauge",
        *(
            f'keylife_rotate_steps{{ring="{_label(ring)}",kind="{kind}"}} {n}'
            for (ring, kind), n in sorted(steps.items())
        ),
        "# HELP keylife_rotate_failures Rings that failed in the last run.",
        "# TYPE keylife_rotate_failures gauge",
        f"keylife_rotate_failures {len(report.failed)}",
        *(f'keylife_rotate_ring_failed{{ring="{_label(r)}"}} 1' for r in report.failed),
        "# HELP keylife_rotate_rings_checked Rings the last run looked at.",
        "# TYPE keylife_rotate_rings_checked gauge",
        f"keylife_rotate_rings_checked {report.rings_checked}",
        "# HELP keylife_ring_next_due_timestamp_seconds When each ring next has a step due.",
        "# TYPE keylife_ring_next_due_timestamp_seconds gauge",
        *(
            f'keylife_ring_next_due_timestamp_seconds{{ring="{_label(ring)}"}} '
            f"{due.timestamp():.3f}"
            for ring, due in sorted(report.next_due.items())
            if due is not None
        ),
    ]
    return "\n".join(lines) + "\n"


def write(path: str | Path, report: RunReport) -> None:
    """Write atomically (node_exporter must never read half a file)."""
    path = Path(path)
    try:
        previous = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        previous = ""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render(report, previous), encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
