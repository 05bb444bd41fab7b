"""The report as Markdown: the same sections as the HTML, as tables.

Every value from the store is escaped for a table cell (``|``, backticks, angle brackets,
line breaks), so a ring name or a reason cannot break the table or inject markup.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from .layout import Section, sections
from .model import Report

__all__ = ["render_markdown"]

_SPECIAL = re.compile(r"([\\`*_\[\]|<>#])")


def cell(value: object) -> str:
    """``value`` safe inside a Markdown table cell."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] in ("ok", "bad"):
        value = value[1]  # the HTML colours it; a table cell shows the value
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.isoformat(" ", "minutes")[:16]
    text = str(value)
    if not text.isprintable():  # line breaks, tabs, controls: one line, controls shown
        text = " ".join(text.split())
        text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return _SPECIAL.sub(r"\\\1", text) or "-"


def _table(head: tuple[str, ...], rows: Sequence[Sequence[object]]) -> list[str]:
    if not rows:
        return ["_none_", ""]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return [*out, ""]


def _inventory(report: Report) -> list[str]:
    rows: list[tuple[object, ...]] = []
    for r in report.rings:
        for v in r.versions:
            later = "" if v.compliant_as_of is None else ("yes" if v.compliant_as_of else "NO")
            rows.append(
                (
                    r.name,
                    v.number,
                    r.purpose,
                    v.spec,
                    v.strength,
                    v.state + (" (primary)" if v.primary else ""),
                    v.created,
                    v.age_days,
                    v.deactivation,
                    "yes" if v.compliant else "NO: " + "; ".join(v.problems),
                    later + ("" if not v.problems_as_of else ": " + "; ".join(v.problems_as_of)),
                )
            )
    head = ("ring", "v", "purpose", "spec", "bits", "state", "created", "age (d)", "deactivation")
    return _table((*head, "compliant", "compliant as of"), rows)


def _audit(report: Report) -> list[str]:
    lines: list[str] = []
    verdict = "intact" if report.audit_ok else f"FAILED at record {report.audit_first_bad_seq}"
    lines += [
        f"{report.audit_records} records, chain {verdict}"
        + (f": {cell(report.audit_problem)}" if report.audit_problem else "")
        + f"; head {cell(report.audit_head_seq)} `{cell(report.audit_head_hash)}`.",
        "",
    ]
    cp = report.last_checkpoint
    lines += [
        "No checkpoint yet."
        if cp is None
        else f"Last checkpoint {cell(cp.at)}: {cell(cp.reason)}.",
        "",
        "### The log against the rings",
        "",
    ]
    lines += _table(
        ("ring", "record", "problem"), [(f.ring, f.seq, f.problem) for f in report.state]
    )
    lines += ["### Who acted", ""]
    lines += _table(("identity", "on behalf of", "records"), list(report.actors))
    lines += ["### Failures", ""]
    lines += _table(
        ("seq", "at", "identity", "on behalf of", "action", "ring", "v", "outcome"),
        [
            (f.seq, f.at, f.identity, f.actor, f.action, f.ring, f.version, f.outcome)
            for f in report.failures
        ],
    )
    return lines


def _storage(report: Report) -> list[str]:
    return [
        f"Key material is sealed in the store `{cell(report.store)}`, apart from the data it "
        "protects; this report holds metadata only.",
        "",
    ]


_CUSTOM = {"inventory": _inventory, "storage": _storage, "audit": _audit}


def _section(section: Section, report: Report) -> list[str]:
    lines = ["#" * section.level + " " + section.title, ""]
    if section.intro:
        lines += [cell(section.intro), ""]
    if section.custom:
        return lines + _CUSTOM[section.custom](report)
    return lines + _table(section.head, section.rows)


def render_markdown(report: Report) -> str:
    counts = report.counts()
    when = cell(report.generated_at)
    lines = [
        "# keylife compliance report",
        "",
        f"Generated {when} UTC for store `{cell(report.store)}` under policy "
        f"{cell(report.policy.get('profile'))} ({cell(report.policy.get('source'))}), minimum "
        f"strength {cell(report.policy.get('min_strength'))} bits"
        + (
            f"; as of {cell(report.as_of)}: {cell(report.policy.get('min_strength_as_of'))} bits"
            if report.as_of
            else ""
        )
        + ".",
        "",
        "## Summary",
        "",
        *_table(("measure", "count"), [(k.replace("_", " "), v) for k, v in counts.items()]),
    ]
    for section in sections(report):
        lines += _section(section, report)
    return "\n".join(lines)
