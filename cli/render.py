"""Text and JSON renderings of rings and versions (never material)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from keylife.lifecycle import KeyVersion, Ring


def _short(value: dt.datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


def ring_summary(ring: Ring, now: dt.datetime) -> dict[str, Any]:
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
    }


def print_ring_table(rings: list[Ring], now: dt.datetime) -> None:
    if not rings:
        click.echo("no rings")
        return
    header = f"{'RING':<28} {'TYPE':<12} {'PURPOSE':<16} {'PRIMARY':>7} {'VERS':>4}  DEACTIVATES"
    click.echo(header)
    for ring in rings:
        p = ring.primary(now)
        click.echo(
            f"{ring.name:<28} {ring.spec.name:<12} {ring.purpose:<16} "
            f"{('v' + str(p.number)) if p else '-':>7} {len(ring.versions):>4}  "
            f"{_short(p.deactivation) if p else '-'}"
        )


def version_dict(v: KeyVersion) -> dict[str, Any]:
    from keylife.lifecycle import version_to_dict

    d = version_to_dict(v)
    d["ring"] = v.ring
    return d


def print_version(v: KeyVersion) -> None:
    click.echo(f"{v.ring} v{v.number}  {v.state.value}  {v.spec.name}  {v.purpose}")
    click.echo(f"  fingerprint   {v.fingerprint}")
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
        click.echo(f"  revocation    {v.revocation_reason.value} {v.revocation_message}".rstrip())
    if v.replaces is not None:
        click.echo(f"  replaces      v{v.replaces}")
    if v.replaced_by is not None:
        click.echo(f"  replaced by   v{v.replaced_by}")


def print_history(versions: list[KeyVersion]) -> None:
    for v in versions:
        for e in v.events:
            click.echo(
                f"{e.at.isoformat()}  v{v.number:<3} {e.action:<11} "
                f"{(e.from_state or '-'):>12} -> {e.to_state:<22} {e.actor}  {e.reason}"
            )
