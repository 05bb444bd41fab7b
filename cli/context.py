"""Shared CLI plumbing: options object, output, and mapping errors to exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from keylife.manager import KeyManager

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_LOCKED = 4


@dataclass
class Obj:
    store: str | None
    master_key_file: str | None
    policy: str | None
    actor: str | None
    as_json: bool

    def manager(self, *, create: bool = False) -> KeyManager:
        import keylife

        opener = keylife.init if create else keylife.open
        return opener(
            self.store,
            policy=self.policy,
            actor=self.actor,
            master_key_file=self.master_key_file,
        )


pass_obj = click.make_pass_decorator(Obj)


def emit(obj: Obj, document: Any, text: Callable[[], None] | str | None = None) -> None:
    """Print ``document`` as JSON under --json, else the text rendering."""
    if obj.as_json:
        click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))
    elif callable(text):
        text()
    elif text is not None:
        click.echo(text)


def fail(obj: Obj, message: str, code: int = EXIT_FAILED, kind: str = "error") -> NoReturn:
    if obj.as_json:
        document = {"error": {"type": kind, "message": message}, "exit_code": code}
        click.echo(json.dumps(document, indent=2))
    else:
        from .render import clean  # names from the store or the command line: no escapes

        click.echo(f"keylife: error: {clean(message)}", err=True)
    sys.exit(code)


@contextmanager
def errors(obj: Obj) -> Iterator[None]:
    """Turn KeylifeError into a message and an exit code; never a traceback."""
    from keylife.errors import (
        KeylifeError,
        LockHeldError,
        PolicyError,
        StoreUnavailableError,
        UnknownSpecError,
    )

    try:
        yield
    except LockHeldError as exc:
        fail(obj, str(exc), EXIT_LOCKED, type(exc).__name__)
    except StoreUnavailableError as exc:
        fail(obj, str(exc), EXIT_UNAVAILABLE, type(exc).__name__)
    except (PolicyError, UnknownSpecError) as exc:
        fail(obj, str(exc), EXIT_FAILED, type(exc).__name__)
    except KeylifeError as exc:
        fail(obj, str(exc), EXIT_FAILED, type(exc).__name__)


def parse_when(value: str | None, option: str) -> Any:
    if value is None:
        return None
    from keylife.clock import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
