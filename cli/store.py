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
    """Replace the embedded store's master key and re-seal every blob in one transaction."""
    with errors(obj), obj.manager() as m:
        do = getattr(m.store, "rekey", None)
        if do is None:
            fail(obj, f"{m.store.url} has no master key to replace (only the embedded store)")
        kcv = do()
        m.store.append_audit([m.entry("rekey", None, None, f"master key replaced (kcv {kcv})")])
    emit(obj, {"rekeyed": True, "master_key_check_value": kcv}, f"master key replaced (kcv {kcv})")
