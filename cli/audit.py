"""``keylife audit show|verify``"""

from __future__ import annotations

import sys

import click

from .context import EXIT_FAILED, Obj, emit, errors, pass_obj
from .render import clean


@click.group()
def audit() -> None:
    """Show and verify the hash-chained audit log."""


@audit.command()
@click.option("--ring", help="Only records about this ring.")
@pass_obj
def show(obj: Obj, ring: str | None) -> None:
    """Print audit records, oldest first."""
    with errors(obj), obj.manager() as m:
        records = m.audit_records(ring)

    def text() -> None:
        # Every field came from outside (--actor, --reason, ring names): escaped, so a value
        # cannot forge a record line or drive the terminal. --json prints them exactly.
        for r in records:
            if r.damage:
                click.echo(f"{r.seq:>6}  DAMAGED: {clean(r.damage)}")
                continue
            where = clean(r.ring or "-") + (f" v{r.version}" if r.version is not None else "")
            # the claimed actor, then [the identity the store authenticated] when recorded
            who = clean(r.actor) + (f" [{clean(r.identity)}]" if r.identity else "")
            click.echo(
                f"{r.seq:>6}  {clean(r.at)}  {who:<12} {clean(r.action):<11} "
                f"{where:<24} {clean(r.outcome)}" + (f"  {clean(r.reason)}" if r.reason else "")
            )

    emit(obj, {"records": [r.to_dict() for r in records]}, text)


@audit.command()
@pass_obj
def verify(obj: Obj) -> None:
    """Check the hash chain; exit 1 naming the first changed, removed or reordered record."""
    with errors(obj), obj.manager() as m:
        report = m.verify_audit()
    emit(
        obj,
        {
            "ok": report.ok,
            "records": report.records,
            "first_bad_seq": report.first_bad_seq,
            "problem": report.problem,
        },
        f"audit log verified: {report.records} records, chain intact"
        if report.ok
        else f"audit log FAILED verification at record {report.first_bad_seq}: "
        f"{clean(report.problem)}",
    )
    if not report.ok:
        sys.exit(EXIT_FAILED)
