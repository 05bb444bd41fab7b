"""Text and JSON renderings of rings and versions (never material).

Human output passes every value that came from outside (ring names, actors, reasons,
attributes, paths) through :func:`clean`, so a newline or a terminal escape in a stored value
cannot forge lines or drive the terminal. JSON output is exact: it never goes through
:func:`clean`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from keylife.destruction import DestroySchedule
    from keylife.lifecycle import KeyVersion, Ring


# C0 controls, DEL, C1 controls, and the Unicode format characters that reorder or break text
# (bidi embeddings, overrides and isolates, line and paragraph separators, ALM, LRM, RLM).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    return _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def clean(value: object) -> str:
    """``value`` as text fit for a terminal or a log line: control characters are escaped
    (newline as ``\\n``, ESC as ``\\e``, others as ``\\xNN`` / ``\\uNNNN``)."""
    return _UNSAFE.sub(_escape, str(value))


def ring_summary(ring: Ring, now: dt.datetime) -> dict[str, Any]:
    if ring.damage:
        return {"name": ring.name, "damaged": ring.damage}
    primary = ring.primary(now)
    return {
        "name": ring.name,
        "type": ring.spec.name,
        "purpose": ring.purpose,
        "primary": None if primary is None else primary.number,
        "versions": len(ring.versions),
        "states": {v.number: v.state.value for v in ring.versions},
        "primary_deactivation": None
        if primary is None or primary.deactivation is None
        else primary.deactivation.isoformat(),
        "retired": ring.attributes.get("retired"),
        "destroy_scheduled": {str(n): due.isoformat() for n, due in _scheduled(ring)},
    }


def _scheduled(ring: Ring) -> list[tuple[int, dt.datetime]]:
    """Versions whose destruction is scheduled and not yet carried out, with the due date."""
    out = []
    for v in ring.versions:
        schedule = pending_schedule(v)
        if schedule is not None:
            out.append((v.number, schedule.due))
    return out


def pending_schedule(v: KeyVersion) -> DestroySchedule | None:
    """The destruction scheduled for ``v`` and not yet carried out; None also when the stored
    schedule is damaged (``keylife rotate`` then never destroys on its word)."""
    from keylife.destruction import pending
    from keylife.errors import CorruptRecordError

    try:
        return pending(v)
    except CorruptRecordError:
        return None


def version_dict(v: KeyVersion) -> dict[str, Any]:
    from keylife.lifecycle import version_to_dict

    d = version_to_dict(v)
    d["ring"] = v.ring
    schedule = pending_schedule(v)
    d["destroy_scheduled"] = None if schedule is None else json.loads(schedule.to_json())
    return d


def print_version(v: KeyVersion) -> None:
    click.echo(f"{clean(v.ring)} v{v.number}  {v.state.value}  {v.spec.name}  {clean(v.purpose)}")
    click.echo(f"  fingerprint   {clean(v.fingerprint)}")
    for label, value in (
        ("created", v.created),
        ("activation", v.activation),
        ("deactivation", v.deactivation),
        ("compromised", v.compromise_date),
        ("occurred", v.compromise_occurred),
        ("destroyed", v.destroy_date),
    ):
        if value is not None:
            click.echo(f"  {label:<13} {value.isoformat()}")
    if v.revocation_reason is not None:
        message = clean(v.revocation_message)
        click.echo(f"  revocation    {v.revocation_reason.value} {message}".rstrip())
    _print_schedule(v)
    if v.replaces is not None:
        click.echo(f"  replaces      v{v.replaces}")
    if v.replaced_by is not None:
        click.echo(f"  replaced by   v{v.replaced_by}")


def _print_schedule(v: KeyVersion) -> None:
    schedule = pending_schedule(v)
    if schedule is None:
        return
    click.echo(
        f"  scheduled     destruction {schedule.due.isoformat()} (requested by "
        f"{clean(schedule.requested_by)}: {clean(schedule.reason)})"
    )
    for a in schedule.approvals:
        click.echo(f"  approved      by {clean(a.actor)} ({clean(a.identity)}) {a.at.isoformat()}")


def print_history(versions: list[KeyVersion]) -> None:
    for v in versions:
        for e in v.events:
            click.echo(
                f"{e.at.isoformat()}  v{v.number:<3} {clean(e.action):<11} "
                f"{clean(e.from_state or '-'):>12} -> {clean(e.to_state):<22} "
                f"{clean(e.actor)}  {clean(e.reason)}"
            )
