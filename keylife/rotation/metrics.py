"""Prometheus textfile output of a rotation run, for node_exporter's textfile collector."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import KeylifeError
from ..files import atomic_write
from .results import RunReport

_LAST_SUCCESS = re.compile(r"^keylife_rotate_last_success_timestamp_seconds\s+(\S+)\s*$", re.M)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(report: RunReport, previous: str = "") -> str:
    """The textfile for ``report``; the last success time is carried over from ``previous``."""
    run_ts = report.as_of.timestamp()
    last_success = run_ts if not report.failed else None
    if last_success is None:
        m = _LAST_SUCCESS.search(previous)
        try:
            last_success = float(m.group(1)) if m else None
        except ValueError:  # a garbled previous file: start afresh
            last_success = None
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


#: The most of a previous textfile read back (for its last-success time).
_PREVIOUS_MAX = 1 << 20


def check_writable(path: str | Path) -> None:
    """Raise :class:`KeylifeError` now if the metrics file could not be written later.

    ``keylife rotate`` calls this before applying anything, so a mistyped ``--metrics-file``
    fails the run before any key changes, not after.
    """
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise KeylifeError(
            f"cannot write metrics file {target}: directory {directory} does not exist"
        )
    if target.is_dir():
        raise KeylifeError(f"cannot write metrics file {target}: it is a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise KeylifeError(
            f"cannot write metrics file {target}: no write permission in {directory}"
        )


def _previous(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(_PREVIOUS_MAX).decode("utf-8", errors="replace")
    except OSError:
        return ""


def write(path: str | Path, report: RunReport) -> None:
    """Write atomically (node_exporter must never read half a file), mode 0644.

    Failures raise :class:`KeylifeError` naming the path.
    """
    target = Path(path)
    text = render(report, _previous(target))
    atomic_write(target, text.encode("utf-8"), mode=0o644, error=KeylifeError)
