"""The report as one self-contained HTML page: inline CSS, an inline SVG timeline, no script,
font, image or link to fetch; prints well. Every value from the store is escaped."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from html import escape

from .layout import Section, sections
from .model import Report
from .timeline import COLOURS, render_timeline

__all__ = ["render_html"]

#: Nothing may be fetched or run: styles are inline, there is no script.
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:4px 0 12px;font-size:12.5px}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f5f7}td.bad,span.bad{color:#b71c1c;font-weight:600}td.ok{color:#1b5e20}
.meta{color:#555}.cards{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:6px 10px;min-width:110px}
.card b{display:block;font-size:20px}.card.bad b{color:#b71c1c}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
svg text.label{font-size:11px}svg text.group{font-size:12px;font-weight:600}
svg text.tick{font-size:10px;fill:#666}
svg line.grid{stroke:#eee}svg text.now{fill:#d32f2f}
.scroll{overflow-x:auto}
@media print{body{margin:8mm}h2{break-after:avoid}tr,g.ring{break-inside:avoid}}
"""


def _v(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.isoformat(" ", "minutes")[:16]
    return escape(str(value), quote=True) or "-"


def _table(head: Sequence[str], rows: Iterable[Sequence[object]], empty: str = "none") -> str:
    body = []
    for row in rows:
        cells = []
        for value in row:
            if isinstance(value, tuple) and len(value) == 2 and value[0] in ("ok", "bad"):
                cells.append(f'<td class="{value[0]}">{_v(value[1])}</td>')
            else:
                cells.append(f"<td>{_v(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        return f'<p class="meta">{escape(empty)}</p>'
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _verdict(ok: bool | None, problems: Sequence[str]) -> object:
    if ok is None:
        return None
    return ("ok", "yes") if ok else ("bad", "NO: " + "; ".join(problems))


def _inventory(report: Report) -> str:
    rows = []
    for r in report.rings:
        for v in r.versions:
            rows.append(
                (
                    r.name,
                    v.number,
                    r.kind,
                    r.purpose,
                    v.spec,
                    v.strength,
                    v.state + (" (primary)" if v.primary else ""),
                    v.created,
                    v.age_days,
                    v.activation,
                    v.deactivation,
                    v.destroyed,
                    _verdict(v.compliant, v.problems),
                    _verdict(v.compliant_as_of, v.problems_as_of),
                )
            )
    head = ["ring", "v", "kind", "purpose", "spec", "bits", "state", "created", "age (d)"]
    head += ["activation", "deactivation", "destroyed", "compliant now"]
    head.append(f"compliant {report.as_of:%Y-%m-%d}" if report.as_of else "compliant later")
    return _table(head, rows, "no rings")


def _audit(report: Report) -> str:
    verdict = (
        '<span class="ok">chain intact</span>'
        if report.audit_ok
        else f'<span class="bad">FAILED at record {_v(report.audit_first_bad_seq)}: '
        f"{_v(report.audit_problem)}</span>"
    )
    cp = report.last_checkpoint
    anchor = (
        "no checkpoint yet (<code>keylife audit checkpoint</code>)"
        if cp is None
        else f"last checkpoint {_v(cp.at)}: {_v(cp.reason)}"
    )
    return (
        f"<p>{report.audit_records} records; {verdict}; head record "
        f"{_v(report.audit_head_seq)}, hash <code>{_v(report.audit_head_hash)}</code>; "
        f"{anchor}.</p>"
        "<h3>The log against the rings</h3>"
        + _table(
            ("ring", "record", "problem"),
            [(f.ring, f.seq, ("bad", f.problem)) for f in report.state],
            "every ring is what the log last recorded",
        )
        + "<h3>Who acted (authenticated identity, on behalf of)</h3>"
        + _table(("identity", "on behalf of", "records"), report.actors)
        + "<h3>Failed operations (newest first)</h3>"
        + _table(
            ("seq", "at", "identity", "on behalf of", "action", "ring", "v", "outcome"),
            [
                (
                    f.seq,
                    f.at,
                    f.identity or f.actor,
                    f.actor,
                    f.action,
                    f.ring,
                    f.version,
                    ("bad", f.outcome),
                )
                for f in report.failures
            ],
        )
    )


def _cards(report: Report) -> str:
    counts = report.counts()
    bad = {"non_compliant", "non_compliant_as_of", "compromised", "failures", "state_findings"}
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card{" bad" if k in bad and n else ""}"><b>{n}</b>'
            f"{escape(k.replace('_', ' '))}</div>"
            for k, n in counts.items()
        )
        + "</div>"
    )


def _storage(report: Report) -> str:
    return (
        f"<p>Key material is sealed in the store <code>{_v(report.store)}</code>, apart from "
        "the data it protects; this report holds metadata only.</p>"
    )


_CUSTOM = {"inventory": _inventory, "storage": _storage, "audit": _audit}


def _section(section: Section, report: Report) -> str:
    tag = f"h{section.level}"
    parts = [f'<{tag} id="{section.id}">{escape(section.title)}</{tag}>']
    if section.intro:
        parts.append(f'<p class="meta">{escape(section.intro)}</p>')
    if section.custom:
        parts.append(_CUSTOM[section.custom](report))
    else:
        parts.append(_table(section.head, section.rows, section.empty))
    return "\n".join(parts)


def render_html(report: Report) -> str:
    p = report.policy
    as_of = (
        f"; as of {report.as_of:%Y-%m-%d}: {_v(p.get('min_strength_as_of'))} bits"
        if report.as_of
        else ""
    )
    legend = "".join(
        f'<span><i style="background:{c}"></i>{escape(k)}</span>' for k, c in COLOURS.items()
    )
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>keylife compliance report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>keylife compliance report</h1>",
        f'<p class="meta">Generated {_v(report.generated_at)} UTC for store '
        f"<code>{_v(report.store)}</code>; policy {_v(p.get('profile'))} "
        f"({_v(p.get('source'))}), minimum strength {_v(p.get('min_strength'))} bits{as_of}.</p>",
        _cards(report),
        '<h2 id="timeline-section">Timeline</h2>',
        f'<p class="legend">{legend}</p>',
        f'<div class="scroll">{render_timeline(report)}</div>',
    ]
    body = [_section(section, report) for section in sections(report)]
    return "\n".join([*head, *body, "</body></html>"]) + "\n"
