"""``keylife store migrate --from SRC --to DST``: copy a store to another backend and verify."""

from __future__ import annotations

import click

from .context import Obj, emit, errors, pass_obj


@click.command()
@click.option("--from", "source", required=True, help="Source store (path, sqlite:///, vault://).")
@click.option("--to", "target", required=True, help="Empty target store (created if needed).")
@pass_obj
def migrate(obj: Obj, source: str, target: str) -> None:
    """Copy every ring, version, material (re-sealed for the target) and the audit log from
    SRC to the empty DST, then verify the copy (rings, material, audit chain)."""
    import keylife
    from keylife.store.migrate import migrate as do_migrate

    with errors(obj):
        src = keylife.open(
            source, policy=obj.policy, actor=obj.actor, master_key_file=obj.master_key_file
        )
        try:
            dst = keylife.init(target, policy=obj.policy, master_key_file=obj.master_key_file)
            try:
                report = do_migrate(src.store, dst.store, actor=src.actor, now=src.now())
            finally:
                dst.close()
        finally:
            src.close()
    emit(
        obj,
        report.to_dict(),
        f"copied {report.rings} rings ({report.versions} versions, {report.materials} "
        f"materials) and {report.audit_records} audit records from {report.source} to "
        f"{report.target}; copy verified",
    )
