"""Top-level verbs that are not in a noun group."""

from __future__ import annotations

import click

from .context import Obj, emit, errors, pass_obj


@click.command()
@pass_obj
def init(obj: Obj) -> None:
    """Create the store and, if none exists, its master key (idempotent)."""
    with errors(obj):
        manager = obj.manager(create=True)
        url = manager.store.url
        manager.close()
    emit(obj, {"store": url, "initialised": True}, f"keylife store ready at {url}")


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (source it, or save it where your shell looks)."""
    from click.shell_completion import get_completion_class

    from .main import cli

    completer = get_completion_class(shell)
    assert completer is not None
    click.echo(completer(cli, {}, "keylife", "_KEYLIFE_COMPLETE").source())
