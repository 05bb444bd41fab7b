"""``keylife key destroy|cancel-destroy|approve``: destruction with a waiting period.

``destroy`` schedules (the policy's ``destroy_wait`` later; a compromised version may wait
less), ``cancel-destroy`` undoes it, ``approve`` is the second actor of the two-person rule, and
``keylife rotate`` carries the destruction out when due.
"""

from __future__ import annotations

import datetime as dt

import click

from .context import Obj, emit, errors, pass_obj
from .render import pending_schedule, version_dict


def parse_wait(value: str | None) -> dt.timedelta | None:
    """``--wait``: a policy duration, or a usage error (exit 2)."""
    if value is None:
        return None
    from keylife.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--wait") from None


@click.command("destroy")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", default="", help="Why (recorded in the schedule and audit log).")
@click.option(
    "--wait",
    metavar="DURATION",
    help="Carry it out this much later (default and minimum: the policy's destroy_wait; "
    "a compromised version may wait less, down to 0s).",
)
@pass_obj
def destroy(obj: Obj, name: str, version: int, reason: str, wait: str | None) -> None:
    """Schedule the destruction of VERSION of ring NAME: `keylife rotate` erases its material
    when the wait is over (keeping its metadata); until then it stays readable and
    `keylife key cancel-destroy` undoes it."""
    delay = parse_wait(wait)
    with errors(obj), obj.manager() as m:
        v = m.destroy(name, version, reason=reason, wait=delay)
        second = m.policy.destroy_requires_second_actor
    schedule = pending_schedule(v)
    if schedule is None:
        text = f"{name} v{version} is now {v.state.value}"
    else:
        approval = " once a second actor approves (keylife key approve)" if second else ""
        text = (
            f"{name} v{version}: destruction scheduled for {schedule.due.isoformat()}; "
            f"`keylife rotate` carries it out then{approval}; undo with "
            f"keylife key cancel-destroy {name} {version}"
        )
    emit(obj, version_dict(v), text)


@click.command("cancel-destroy")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", default="", help="Why (recorded in the audit log).")
@pass_obj
def cancel_destroy(obj: Obj, name: str, version: int, reason: str) -> None:
    """Cancel the scheduled destruction of VERSION of ring NAME."""
    with errors(obj), obj.manager() as m:
        v = m.cancel_destroy(name, version, reason=reason)
    emit(obj, version_dict(v), f"{name} v{version}: destruction cancelled; {v.state.value}")


@click.command("approve")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", default="", help="Why (recorded in the audit log).")
@pass_obj
def approve(obj: Obj, name: str, version: int, reason: str) -> None:
    """Approve the scheduled destruction of VERSION of ring NAME as a second actor (the
    two-person rule, policy.destroy_requires_second_actor); the requester cannot approve."""
    with errors(obj), obj.manager() as m:
        v = m.approve_destroy(name, version, reason=reason)
    schedule = pending_schedule(v)
    due = "" if schedule is None else f"; due {schedule.due.isoformat()}"
    emit(obj, version_dict(v), f"{name} v{version}: destruction approved{due}")
