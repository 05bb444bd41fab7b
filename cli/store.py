"""``keylife store rekey`` (and ``migrate`` when the Vault backend is installed)."""

from __future__ import annotations

import click

from .context import Obj, emit, errors, fail, pass_obj


class _StoreGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "migrate"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "migrate":
            import importlib

            try:
                command = importlib.import_module("keylife_cli.store_migrate").migrate
            except (ImportError, AttributeError):
                return None
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_StoreGroup)
def store() -> None:
    """Store maintenance."""


@store.command()
@pass_obj
def rekey(obj: Obj) -> None:
    """Replace the embedded store's master key and re-seal every blob in one transaction,
    bound to the store's id. On Vault: re-seal every blob bound to the store's id."""
    with errors(obj), obj.manager() as m:
        do = getattr(m.store, "rekey", None)
        bind = getattr(m.store, "reseal", None)
        if do is None and bind is None:
            fail(obj, f"{m.store.url} has no master key to replace or blobs to re-seal")
        if do is not None:
            kcv = do()
            sid = getattr(m.store, "store_id", None)
            doc = {"rekeyed": True, "master_key_check_value": kcv, "store_id": sid}
            text = f"master key replaced (kcv {kcv}); blobs bound to store id {sid}"
        else:
            assert bind is not None
            sid, count = bind(m.now)
            doc = {"rekeyed": False, "resealed": count, "store_id": sid}
            text = f"{count} blobs re-sealed, bound to store id {sid}"
        m.store.append_audit([m.entry("rekey", None, None, text)])
    emit(obj, doc, text)
