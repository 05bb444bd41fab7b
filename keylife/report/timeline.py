"""The report's SVG timeline: one row per ring, a bar per version span, a "now" line and the
window's upcoming events. Every text from the store is escaped; the SVG is inline and needs
no script, font or image."""

from __future__ import annotations

import datetime as dt
from html import escape

from .events import Event
from .model import Report, RingEntry, VersionEntry

__all__ = ["COLOURS", "render_timeline"]

ROW = 18
LABEL = 230
WIDTH = 1200
TOP = 28
PAST = dt.timedelta(days=365)

#: Span kind -> fill colour (also the legend).
COLOURS = {
    "pre-active": "#9fb3c8",
    "active": "#2e8b57",
    "suspended": "#f0a030",
    "processing-only": "#a8d5a2",
    "compromised": "#c62828",
    "destroyed": "#444444",
    "event": "#6a1b9a",
}


def _day(t: dt.datetime) -> str:
    return t.isoformat()[:10]


class _Scale:
    def __init__(self, start: dt.datetime, end: dt.datetime) -> None:
        self.start, self.end = start, end
        self.span = (end - start).total_seconds()

    def x(self, t: dt.datetime) -> float:
        t = min(max(t, self.start), self.end)
        return LABEL + (WIDTH - LABEL - 10) * (t - self.start).total_seconds() / self.span


def _months(scale: _Scale) -> list[dt.datetime]:
    """First days of the months inside the scale (every third one when it is long)."""
    step = 1 if scale.span < 200 * 86400 else 3
    year, month = scale.start.year, scale.start.month
    out: list[dt.datetime] = []
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        t = dt.datetime(year, month, 1, tzinfo=dt.UTC)
        if t > scale.end:
            return out
        if (month - 1) % step == 0:
            out.append(t)


def _spans(v: VersionEntry, far: dt.datetime) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """(kind, start, end) of each period of ``v``'s life."""
    stops = [t for t in (v.compromised, v.destroyed) if t is not None]
    out: list[tuple[str, dt.datetime, dt.datetime]] = []
    if v.activation is not None and v.activation > v.created:
        out.append(("pre-active", v.created, min([v.activation, *stops])))
    if v.activated or v.state == "pre-active":
        start = v.activation or v.created
        end = min([v.deactivation or far, *stops])
        if end > start:
            out.append(("suspended" if v.state == "suspended" else "active", start, end))
    if v.deactivation is not None and v.grace_end is not None:
        end = min([v.grace_end, *stops])
        if end > v.deactivation:
            out.append(("processing-only", v.deactivation, end))
    if v.compromised is not None:
        out.append(("compromised", v.compromised, v.destroyed or far))
    return out


def _row(r: RingEntry, i: int, scale: _Scale, events: list[Event]) -> list[str]:
    y = TOP + i * ROW
    name = escape(r.name)
    out = [
        f'<g class="ring" data-ring="{name}">',
        f'<text x="4" y="{y + 13}" class="label">{name}</text>',
    ]
    for v in r.versions:
        lane = y + 2 + (0 if v.number % 2 else 7)
        for kind, start, end in _spans(v, scale.end):
            if end < scale.start or start > scale.end:
                continue
            x0, x1 = scale.x(start), scale.x(end)
            tip = escape(f"{r.name} v{v.number} {kind} {_day(start)} to {_day(end)}")
            out.append(
                f'<rect x="{x0:.1f}" y="{lane}" width="{max(x1 - x0, 1.0):.1f}" height="7" '
                f'fill="{COLOURS[kind]}"><title>{tip}</title></rect>'
            )
        if v.destroyed is not None and scale.start <= v.destroyed <= scale.end:
            x = scale.x(v.destroyed)
            out.append(
                f'<rect x="{x - 1:.1f}" y="{lane}" width="3" height="7" '
                f'fill="{COLOURS["destroyed"]}"><title>{escape(r.name)} v{v.number} destroyed '
                f"{_day(v.destroyed)}</title></rect>"
            )
    for e in events:
        x = scale.x(e.due)
        tip = escape(f"{e.kind} v{e.version} due {_day(e.due)}: {e.reason}")
        out.append(
            f'<path class="event" d="M{x:.1f} {y + 3} l4 6 l-4 6 l-4 -6 z" '
            f'fill="{COLOURS["event"]}"><title>{tip}</title></path>'
        )
    out.append("</g>")
    return out


def render_timeline(report: Report) -> str:
    now = report.generated_at
    first = min((r.created for r in report.rings), default=now)
    start = max(now - PAST, min(first, now - dt.timedelta(days=30)) - dt.timedelta(days=14))
    scale = _Scale(start, now + dt.timedelta(days=max(report.window_days, 30)))
    groups: dict[str, list[RingEntry]] = {}
    for r in report.rings:  # grouped by purpose, so hundreds of rings stay readable
        groups.setdefault(r.purpose, []).append(r)
    height = TOP + ROW * (len(report.rings) + len(groups)) + 8
    parts = [
        f'<svg id="timeline" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        'aria-label="key version timeline">'
    ]
    for t in _months(scale):
        x = scale.x(t)
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{height}" class="grid"/>'
            f'<text x="{x + 2:.1f}" y="{TOP - 10}" class="tick">{t:%Y-%m}</text>'
        )
    by_ring = report.events_by_ring()
    i = 0
    for purpose in sorted(groups):
        members = groups[purpose]
        y = TOP + i * ROW + 13
        parts.append(f'<text x="4" y="{y}" class="group">{escape(purpose)} ({len(members)})</text>')
        i += 1
        for r in members:
            parts.extend(_row(r, i, scale, by_ring.get(r.name, [])))
            i += 1
    x = scale.x(now)
    parts.append(
        f'<line id="now" x1="{x:.1f}" y1="{TOP - 14}" x2="{x:.1f}" y2="{height}" '
        'stroke="#d32f2f" stroke-width="1.5"/>'
        f'<text x="{x + 3:.1f}" y="{TOP - 18}" class="tick now">now</text></svg>'
    )
    return "\n".join(parts)
