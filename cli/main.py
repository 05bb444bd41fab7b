"""``keylife``: noun groups with verb subcommands, loaded lazily so start-up stays fast.

Exit codes (also in docs/cli.md):

====  ===================================================================
0     success
1     the operation failed, a verification failed, or a rule was violated
2     usage error (bad arguments or options)
3     the store (or an endpoint) could not be reached or checked
4     another ``keylife rotate`` run holds the lock
====  ===================================================================
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import warnings
from typing import Any, NoReturn

import click

from keylife._version import __version__

from .context import EXIT_FAILED, Obj
from .examples import epilog


class OneLine(logging.Formatter):
    """``keylife: warning: ...``: one line, the level in lower case, as click's errors."""

    def format(self, record: logging.LogRecord) -> str:
        message = " ".join(record.getMessage().split())
        text = f"keylife: {record.levelname.lower()}: {message}"
        if record.exc_info and record.levelno < logging.WARNING:
            text += "\n" + self.formatException(record.exc_info)
        return text


def add_examples(command: click.Command, path: str) -> None:
    """End ``command``'s help (and its subcommands') with its examples."""
    if command.epilog is None:
        command.epilog = epilog(path)
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            add_examples(sub, f"{path} {name}")


# name -> (module, attribute, short help)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("keylife_cli.commands", "init", "Create the store and its master key."),
    "key": ("keylife_cli.key", "key", "Create, inspect and change keys."),
    "rotate": ("keylife_cli.rotate", "rotate", "Apply every lifecycle step that is due."),
    "backup": ("keylife_cli.backup", "backup", "Write an encrypted backup archive."),
    "restore": ("keylife_cli.backup", "restore", "Restore a backup into an empty store."),
    "audit": ("keylife_cli.audit", "audit", "Show and verify the audit log."),
    "policy": ("keylife_cli.policy", "policy", "Show or check the key policy."),
    "report": ("keylife_cli.report", "report", "Compliance evidence: HTML, Markdown or JSON."),
    "store": ("keylife_cli.store", "store", "Store maintenance (rekey, migrate)."),
    "tls": ("keylife_cli.tls", "tls", "Check TLS endpoints against the TLS policy."),
    "cert": ("keylife_cli.cert", "cert", "ACME certificates: issue, revoke, account."),
    "vault": ("keylife_cli.vault", "vault", "HashiCorp Vault / OpenBao setup and policies."),
    "encrypt": ("keylife_cli.crypto", "encrypt", "Encrypt stdin or a file under a ring."),
    "decrypt": ("keylife_cli.crypto", "decrypt", "Decrypt what `keylife encrypt` wrote."),
    "sign": ("keylife_cli.crypto", "sign", "Sign stdin or a file with a ring's primary."),
    "verify": ("keylife_cli.crypto", "verify", "Check a signature made by `keylife sign`."),
    "rewrap": (
        "keylife_cli.crypto",
        "rewrap",
        "Re-encrypt a file of ciphertexts under the primary.",
    ),
    "completion": ("keylife_cli.commands", "completion", "Print the shell completion script."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attr, _ = entry
        try:
            command = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise click.ClickException(f"`keylife {cmd_name}` is not available: {exc}") from exc
        assert isinstance(command, click.Command)
        add_examples(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][2]) for name in sorted(_COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keylife")
@click.option(
    "--store",
    envvar="KEYLIFE_STORE",
    help="Store: SQLite path, sqlite:///PATH or vault://HOST:PORT/MOUNT [env KEYLIFE_STORE].",
)
@click.option(
    "--master-key-file",
    envvar="KEYLIFE_MASTER_KEY_FILE",
    help="Master key of the embedded store [env KEYLIFE_MASTER_KEY_FILE].",
)
@click.option(
    "--policy",
    envvar="KEYLIFE_POLICY",
    help="Policy: 'default', '128-bit' or a TOML file [env KEYLIFE_POLICY].",
)
@click.option("--actor", help="Identity recorded in the audit log (default: the OS user).")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON document.")
@click.option("-v", "--verbose", count=True, help="More log output on stderr.")
@click.pass_context
def cli(
    ctx: click.Context,
    store: str | None,
    master_key_file: str | None,
    policy: str | None,
    actor: str | None,
    as_json: bool,
    verbose: int,
) -> None:
    """keylife: keys and TLS certificates kept inside a written policy."""

    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2))
    for handler in logging.getLogger().handlers:
        handler.setFormatter(OneLine())
    ctx.obj = Obj(store, master_key_file, policy, actor, as_json)


def hoist_json(args: list[str]) -> list[str]:
    """Accept ``--json`` anywhere before ``--`` (``keylife key list --json``), as a global
    option: it is moved in front of the subcommand."""
    end = args.index("--") if "--" in args else len(args)
    if "--json" not in args[:end]:
        return args
    return ["--json", *(a for a in args[:end] if a != "--json"), *args[end:]]


def _verbosity(args: list[str]) -> int:
    count = 0
    for a in args:
        if a == "--verbose":
            count += 1
        elif a.startswith("-") and not a.startswith("--") and set(a[1:]) == {"v"}:
            count += len(a) - 1
    return count


def _fail(as_json: bool, kind: str, message: str, code: int) -> NoReturn:
    if as_json:
        document = {"error": {"type": kind, "message": message}, "exit_code": code}
        click.echo(json.dumps(document, indent=2))
    else:
        from .render import clean

        click.echo(f"keylife: error: {clean(message)}", err=True)
    sys.exit(code)


def _one_line_warnings() -> None:
    """Python warnings (e.g. from libraries underneath) become one ``keylife: warning:`` line."""

    def show(message: Warning | str, *_args: object, **_kw: object) -> None:
        text = " ".join(str(message).split())
        click.echo(f"keylife: warning: {text}", err=True)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> Any:
    """The console script: usage errors and unexpected failures end in one line (or, under
    ``--json``, one JSON error document on stdout) and an exit code; never a traceback unless
    ``-vv`` asks for one."""
    args = hoist_json(list(sys.argv[1:] if argv is None else argv))
    as_json = bool(args) and args[0] == "--json"
    _one_line_warnings()
    try:
        code = cli.main(args=args, prog_name="keylife", standalone_mode=False)
    except click.exceptions.Abort:
        _fail(as_json, "Aborted", "aborted", EXIT_FAILED)
    except click.ClickException as exc:
        if not as_json:
            exc.show()
            sys.exit(exc.exit_code)
        _fail(as_json, type(exc).__name__, exc.format_message(), exc.exit_code)
    except KeyboardInterrupt:
        _fail(as_json, "Interrupted", "interrupted", 130)
    except Exception as exc:
        if _verbosity(args) >= 2:
            raise
        _fail(
            as_json,
            type(exc).__name__,
            f"unexpected {type(exc).__name__}: {exc} (a bug in keylife; -vv shows where)",
            EXIT_FAILED,
        )
    sys.exit(code if isinstance(code, int) else 0)
