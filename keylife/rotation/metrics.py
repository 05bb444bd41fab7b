"""Prometheus textfile output of a rotation run, for node_exporter's textfile collector.

Besides the run itself, the file carries the store's state as the run left it
(:class:`StoreFacts`): each certificate's notAfter, the audit head's sequence number, the time
of the last audit checkpoint and the count of versions inside and outside the policy.
docs/operations.md lists every metric.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import KeylifeError
from ..files import atomic_write
from .results import RunReport

if TYPE_CHECKING:
    from ..writer import RingWriter

log = logging.getLogger("keylife.rotate")

_LAST_SUCCESS = re.compile(r"^keylife_rotate_last_success_timestamp_seconds\s+(\S+)\s*$", re.M)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass(frozen=True)
class StoreFacts:
    """The store's state for the textfile (:func:`store_facts` reads it)."""

    #: (ring, version, notAfter) of every certificate a version still holds.
    certificates: tuple[tuple[str, int, dt.datetime], ...] = ()
    audit_head_seq: int | None = None
    last_checkpoint: dt.datetime | None = None
    compliant: int = 0
    non_compliant: int = 0


def store_facts(manager: RingWriter, now: dt.datetime) -> StoreFacts | None:
    """Read :class:`StoreFacts` from ``manager``'s store; compliance is judged at ``now``.

    None when the store cannot be read (logged): the run's own metrics are still written."""
    try:
        return _read_facts(manager, now)
    except KeylifeError as exc:
        log.warning("store metrics left out of the textfile: %s", exc)
        return None


def _read_facts(manager: RingWriter, now: dt.datetime) -> StoreFacts:
    from ..clock import parse_time
    from ..report.certs import certificate_facts
    from ..report.model import compliance_counts

    rings = manager.rings()
    held = {(r.name, v.number) for r in rings for v in r.versions if v.has_material}
    certs = {k: f for k, f in certificate_facts(rings).items() if k in held}
    records = manager.store.read_audit()
    head_fn = getattr(manager.store, "audit_head", None)
    head = head_fn() if callable(head_fn) else None
    checkpoint = next(
        (r.at for r in reversed(records) if r.action == "checkpoint" and not r.damage), None
    )
    compliant, non_compliant = compliance_counts(rings, manager.policy, now)
    return StoreFacts(
        certificates=tuple(
            (ring, number, f.not_after)
            for (ring, number), f in sorted(certs.items())
            if f.not_after is not None
        ),
        audit_head_seq=head[0] if head else (records[-1].seq if records else 0),
        last_checkpoint=None if checkpoint is None else parse_time(checkpoint),
        compliant=compliant,
        non_compliant=non_compliant,
    )


def _store_lines(facts: StoreFacts) -> list[str]:
    lines = [
        "# HELP keylife_certificate_not_after_timestamp_seconds When each certificate expires.",
        "# TYPE keylife_certificate_not_after_timestamp_seconds gauge",
        *(
            f'keylife_certificate_not_after_timestamp_seconds{{ring="{_label(ring)}",'
            f'version="{number}"}} {not_after.timestamp():.3f}'
            for ring, number, not_after in facts.certificates
        ),
        "# HELP keylife_audit_head_sequence Sequence number of the newest audit record.",
        "# TYPE keylife_audit_head_sequence gauge",
    ]
    if facts.audit_head_seq is not None:
        lines.append(f"keylife_audit_head_sequence {facts.audit_head_seq}")
    lines += [
        "# HELP keylife_audit_last_checkpoint_timestamp_seconds When the newest signed audit "
        "checkpoint was made.",
        "# TYPE keylife_audit_last_checkpoint_timestamp_seconds gauge",
    ]
    if facts.last_checkpoint is not None:
        lines.append(
            "keylife_audit_last_checkpoint_timestamp_seconds "
            f"{facts.last_checkpoint.timestamp():.3f}"
        )
    return [
        *lines,
        "# HELP keylife_key_versions Key versions by compliance with the policy in force.",
        "# TYPE keylife_key_versions gauge",
        f'keylife_key_versions{{compliance="compliant"}} {facts.compliant}',
        f'keylife_key_versions{{compliance="non_compliant"}} {facts.non_compliant}',
    ]


def render(report: RunReport, previous: str = "", facts: StoreFacts | None = None) -> str:
    """The textfile for ``report`` (and ``facts``, when given); the last success time is
    carried over from ``previous``."""
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
    if facts is not None:
        lines += _store_lines(facts)
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


def write(path: str | Path, report: RunReport, facts: StoreFacts | None = None) -> None:
    """Write atomically (node_exporter must never read half a file), mode 0644.

    Failures raise :class:`KeylifeError` naming the path.
    """
    target = Path(path)
    text = render(report, _previous(target), facts)
    atomic_write(target, text.encode("utf-8"), mode=0o644, error=KeylifeError)
