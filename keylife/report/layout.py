"""The report's sections, in order, once for every renderer.

:func:`sections` lists each section with its id, title and, for a table section, its header
and rows; the HTML and Markdown renderers walk the same list and only differ in how they draw
a heading, a paragraph and a table. A cell is a value, or ``("ok" | "bad", value)`` to mark it.
Sections whose body a renderer draws itself (the inventory, the audit state) carry ``custom``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .model import PROMISES, CertificateEntry, Report

__all__ = ["Section", "sections"]


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    head: tuple[str, ...] = ()
    rows: list[tuple[object, ...]] = field(default_factory=list)
    empty: str = "none"
    #: A plain-text paragraph before the table (renderers escape it).
    intro: str = ""
    #: The renderer draws this section's body itself ("inventory", "storage", "audit").
    custom: str = ""
    level: int = 2


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else value.isoformat(" ", "minutes")[:16]


def _exceptions(report: Report) -> Section:
    return Section(
        "exceptions",
        "Exceptions (revocation, compromise, recoveries, overrides)",
        ("ring", "v", "kind", "detail", "at", "by"),
        [
            (e.ring, e.version, ("bad", e.kind), e.detail, e.at or None, e.by or None)
            for e in report.exceptions
        ],
    )


def _events(report: Report) -> Section:
    return Section(
        "events",
        f"Upcoming events ({report.window_days} days)",
        ("due", "ring", "v", "event", "reason"),
        [
            (
                e.due,
                e.ring,
                e.version,
                ("bad", e.kind + " (overdue)") if e.overdue else e.kind,
                e.reason,
            )
            for e in report.events
        ],
    )


def _certificates(report: Report) -> Section:
    def root(c: CertificateEntry) -> str:
        if not c.root_subject:
            return "-"
        where = c.root_fingerprint if c.root_in_chain else "(not in the stored chain)"
        return f"{c.root_subject} {where}"

    return Section(
        "certificates",
        "TLS certificates",
        ("ring", "v", "state", "domains", "issuer", "trusted root", "serial", "notAfter"),
        [
            (
                c.ring,
                c.version,
                c.state,
                " ".join(c.domains),
                c.issuer,
                root(c),
                c.serial,
                c.not_after,
            )
            for c in report.certificates
        ],
    )


def _renewals(report: Report) -> Section:
    seen: dict[str, tuple[object, ...]] = {}
    for c in report.certificates:
        left = (
            None
            if c.days_left is None
            else (("bad", c.days_left) if c.days_left < 0 else c.days_left)
        )
        seen[c.ring] = (c.ring, c.version, _when(c.last_renewal), c.not_after, left)
    return Section(
        "renewals",
        "Certificate renewals",
        ("ring", "newest v", "last renewal", "notAfter", "days left"),
        list(seen.values()),
        level=3,
    )


RUN_HEAD: tuple[str, ...] = ("at", "identity", "on behalf of", "policy", "policy SHA-256")
RUN_HEAD += ("ok", "failed", "skipped", "outcome", "failed rings")


def _runs(report: Report) -> Section:
    return Section(
        "runs",
        "Last rotation runs",
        RUN_HEAD,
        [
            (
                r.at[:16].replace("T", " "),
                r.identity,
                r.actor,
                r.policy_source,
                r.policy_sha256,
                r.succeeded,
                ("bad", r.failed) if r.failed else r.failed,
                r.skipped,
                r.outcome if r.ok else ("bad", r.outcome),
                " ".join(r.failed_rings) or None,
            )
            for r in report.runs
        ],
        "no rotation run recorded (keylife rotate writes one record per run)",
    )


def _tls(report: Report) -> list[Section]:
    tls = report.tls
    if tls is None:
        return []
    counts = tls.verdicts()
    within = dt.timedelta(days=report.window_days)
    rollup: list[tuple[object, ...]] = [
        (f"verdict {v}", ("bad", n) if n and v != "pass" else n) for v, n in counts.items()
    ]
    rollup += [(f"rule {rule}", ("bad", n)) for rule, n in tls.rules()]
    rollup += [
        (f"certificate ends within {report.window_days} days", f"{e.target} {_when(e.not_after)}")
        for e in tls.expiring(report.generated_at, within)
    ]
    return [
        Section(
            "tls",
            "TLS endpoints",
            ("target", "server name", "verdict", "failed rules", "error", "trusted", "notAfter"),
            [
                (
                    e.target,
                    e.server_name,
                    ("ok", e.verdict) if e.verdict == "pass" else ("bad", e.verdict),
                    " ".join(e.findings) or None,
                    e.error or None,
                    None if e.trusted is None else ("yes" if e.trusted else ("bad", "no")),
                    e.not_after,
                )
                for e in tls.endpoints
            ],
            "no targets",
            intro=f"{len(tls.endpoints)} endpoints from {tls.source}, policy {tls.policy}.",
        ),
        Section("tls-rollup", "TLS roll-up", ("measure", "endpoints"), rollup, level=3),
    ]


def sections(report: Report) -> list[Section]:
    """Every section after the summary, in the order both renderers show them."""
    return [
        Section(
            "promises",
            "Promises and evidence",
            ("promise", "section"),
            [(t, s) for _, t, s in PROMISES],
        ),
        Section("inventory", "Inventory (approved lengths, dates, history)", custom="inventory"),
        _exceptions(report),
        _events(report),
        Section("storage", "Storage", custom="storage"),
        _certificates(report),
        _renewals(report),
        *_tls(report),
        _runs(report),
        Section("audit", "Audit and access", custom="audit"),
    ]
