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
from typing import Any

import click

from keylife._version import __version__

from .context import Obj

# name -> (module, attribute, short help)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("keylife_cli.commands", "init", "Create the store and its master key."),
    "key": ("keylife_cli.key", "key", "Create, inspect and change keys."),
    "rotate": ("keylife_cli.rotate", "rotate", "Apply every lifecycle step that is due."),
    "backup": ("keylife_cli.backup", "backup", "Write an encrypted backup archive."),
    "restore": ("keylife_cli.backup", "restore", "Restore a backup into an empty store."),
    "audit": ("keylife_cli.audit", "audit", "Show and verify the audit log."),
    "policy": ("keylife_cli.policy", "policy", "Show or check the key policy."),
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
    import logging

    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        format="keylife: %(levelname)s: %(message)s",
    )
    ctx.obj = Obj(store, master_key_file, policy, actor, as_json)


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="keylife")


if __name__ == "__main__":
    main()
