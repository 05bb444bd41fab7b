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
@click.option(
    "--checkpoints",
    type=click.Path(dir_okay=False),
    help="Also prove the log still holds every head checkpointed in this file.",
)
@pass_obj
def verify(obj: Obj, checkpoints: str | None) -> None:
    """Check the hash chain; exit 1 naming the first changed, removed or reordered record.

    With --checkpoints, a log that was truncated, wiped or rolled back since a checkpoint
    fails too (the chain alone cannot show that).
    """
    from keylife.auditstate import check_state
    from keylife.checkpoint import check_checkpoints, read_checkpoints

    with errors(obj):
        anchors = None if checkpoints is None else read_checkpoints(checkpoints)
        with obj.manager() as m:
            report = m.verify_audit()
            records, rings = m.store.read_audit(), m.rings()
            state = check_state(records, rings)
            found = None if anchors is None else check_checkpoints(records, anchors, rings)
    document: dict[str, object] = {
        "ok": report.ok and not state and (found is None or found.ok),
        "records": report.records,
        "first_bad_seq": report.first_bad_seq,
        "problem": report.problem,
    }
    if state:  # only when the log and the state disagree (the document stays as it was)
        document["state"] = [f.to_dict() for f in state]
    if found is not None:
        document["checkpoints"] = found.to_dict()

    def text() -> None:
        if report.ok:
            click.echo(f"audit log verified: {report.records} records, chain intact")
        else:
            click.echo(
                f"audit log FAILED verification at record {report.first_bad_seq}: "
                f"{clean(report.problem)}"
            )
        for finding in state:
            click.echo(f"state FAILED: {clean(finding.problem)}")
        if found is not None and found.ok:
            click.echo(f"{found.checked} checkpoints: every checkpointed head is in the log")
        elif found is not None:
            for problem in found.problems:
                click.echo(f"checkpoint FAILED: {clean(problem)}")

    emit(obj, document, text)
    if not document["ok"]:
        sys.exit(EXIT_FAILED)


@audit.command()
@click.option("--ring", default=None, help="The Ed25519 ring that signs (default: created).")
@click.option(
    "--out", type=click.Path(dir_okay=False), help="Append the checkpoint line to this file."
)
@pass_obj
def checkpoint(obj: Obj, ring: str | None, out: str | None) -> None:
    """Sign the log's head (record count, last hash, time, store) and print it as one line.

    Keep the lines outside the store (a file elsewhere, syslog, a ticket): `keylife audit
    verify --checkpoints FILE` then proves the log still holds every one of them.
    """
    from keylife.checkpoint import DEFAULT_RING, append_checkpoint, make_checkpoint

    with errors(obj), obj.manager() as m:
        made = make_checkpoint(m, ring=ring or DEFAULT_RING)
        if out is not None:
            append_checkpoint(out, made)
    if obj.as_json:
        import json

        click.echo(json.dumps(json.loads(made.to_line()), indent=2, sort_keys=True))
    else:
        click.echo(made.to_line())
