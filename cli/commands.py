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
