"""``keylife key delete RING``: remove a ring whose versions are all destroyed."""

from __future__ import annotations

import click

from .context import Obj, emit, errors, pass_obj


@click.command("delete")
@click.argument("name")
@click.option("--reason", default="", help="Why (recorded in the audit log).")
@pass_obj
def delete(obj: Obj, name: str, reason: str) -> None:
    """Remove ring NAME once every version is destroyed. Its history stays in the audit log and
    its name is never reused. Refused (exit 1) while a version still holds material, naming it
    and the command that destroys it."""
    with errors(obj), obj.manager() as m:
        m.delete_ring(name, reason=reason)
    emit(
        obj,
        {"ring": name, "deleted": True},
        f"ring {name} deleted; its history stays in the audit log (`keylife audit show`)",
    )
