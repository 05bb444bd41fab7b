"""``keylife key ...``"""

from __future__ import annotations

import sys

import click

from keylife.lifecycle import RevocationReason
from keylife.policy import Purpose
from keylife.specs import SPECS

from . import key_list
from .context import Obj, emit, errors, parse_when, pass_obj
from .key_delete import delete as delete_command
from .render import print_history, print_version, ring_summary, version_dict

# Choices come from the library's own tables, never from copies.
TYPES = ", ".join(SPECS)
PURPOSES = tuple(p.value for p in Purpose)
REASONS = tuple(r.value for r in RevocationReason)
COMPROMISE_REASONS = tuple(r.value for r in RevocationReason if r.compromise)


@click.group()
def key() -> None:
    """Create, inspect and change keys."""


key.add_command(key_list.list_)  # keylife key list / show: cli/key_list.py
key.add_command(key_list.show)


@key.command()
@click.argument("name")
@click.option("--type", "type_", help=f"Key type ({TYPES}). Default: the policy's for the purpose.")
@click.option("--purpose", type=click.Choice(PURPOSES), required=True)
@click.option("--size", type=int, help="Key size in bits (HMAC keys only).")
@click.option("--activate-at", help="ISO 8601 activation date (default: now).")
@click.option("--deactivate-at", help="ISO 8601 deactivation date (default: + cryptoperiod).")
@click.option(
    "--protect-stop-at", help="ISO 8601 end of applying protection (before deactivation)."
)
@click.option("--process-start-at", help="ISO 8601 start of processing (decrypt/verify).")
@click.option(
    "--exceed-policy",
    metavar="REASON",
    default="",
    help="Allow dates outside the policy's limits as a recorded, audited exception.",
)
@pass_obj
def create(
    obj: Obj,
    name: str,
    type_: str | None,
    purpose: str,
    size: int | None,
    activate_at: str | None,
    deactivate_at: str | None,
    protect_stop_at: str | None,
    process_start_at: str | None,
    exceed_policy: str,
) -> None:
    """Create ring NAME with its first version, under the policy.

    Dates must fit the policy: activation now or later, deactivation at most one cryptoperiod
    after activation; --exceed-policy REASON records an exception instead of refusing."""
    act = parse_when(activate_at, "--activate-at")
    deact = parse_when(deactivate_at, "--deactivate-at")
    pstop = parse_when(protect_stop_at, "--protect-stop-at")
    pstart = parse_when(process_start_at, "--process-start-at")
    with errors(obj), obj.manager() as m:
        v = m.create_ring(
            name,
            type_,
            purpose,
            activate_at=act,
            deactivate_at=deact,
            key_bits=size,
            protect_stop_at=pstop,
            process_start_at=pstart,
            exceed_policy=exceed_policy,
        )
    emit(obj, version_dict(v), lambda: print_version(v))


@key.command("import")
@click.argument("name")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, readable=True),
    required=True,
    help="PEM or DER private key, or raw secret-key bytes.",
)
@click.option("--type", "type_", required=True, help=f"Key type the material must be ({TYPES}).")
@click.option("--purpose", type=click.Choice(PURPOSES), required=True)
@click.option("--password-file", type=click.Path(dir_okay=False), help="Password of a PEM key.")
@click.option("--activate-at", help="ISO 8601 activation date (default: now; may be past).")
@click.option("--deactivate-at", help="ISO 8601 deactivation date (default: + cryptoperiod).")
@click.option("--exceed-policy", metavar="REASON", default="", help="Record an exception.")
@pass_obj
def import_(
    obj: Obj,
    name: str,
    path: str,
    type_: str,
    purpose: str,
    password_file: str | None,
    activate_at: str | None,
    deactivate_at: str | None,
    exceed_policy: str,
) -> None:
    """Bring your own key: store FILE's key as ring NAME's new primary (the ring is created if
    it does not exist). The key must really be a TYPE key allowed for PURPOSE today."""
    from keylife.files import read_capped
    from keylife.keyimport import MAX_KEY_FILE

    act = parse_when(activate_at, "--activate-at")
    deact = parse_when(deactivate_at, "--deactivate-at")
    with errors(obj):
        data = read_capped(path, MAX_KEY_FILE, what="key file")
        password = (
            None
            if password_file is None
            else read_capped(password_file, 4096, what="password file").strip()
        )
    with errors(obj), obj.manager() as m:
        v = m.import_key(
            name,
            data,
            type_,
            purpose,
            password=password,
            activate_at=act,
            deactivate_at=deact,
            exceed_policy=exceed_policy,
        )
    emit(obj, version_dict(v), lambda: print_version(v))


@key.command()
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", required=True, help="Why the compromised key is used (audited).")
@click.option("--in", "src", type=click.Path(dir_okay=False), help="Ciphertext (default stdin).")
@click.option("--out", "dst", type=click.Path(dir_okay=False), help="Plaintext (stdout).")
@pass_obj
def recover(
    obj: Obj, name: str, version: int, reason: str, src: str | None, dst: str | None
) -> None:
    """Decrypt data a compromised VERSION of ring NAME encrypted (`keylife encrypt` output), to
    re-encrypt it under the replacement. Each use is audited with REASON; the key never
    protects again."""
    from keylife.errors import KeylifeError
    from keylife.files import read_capped

    cap = 64 * 1024 * 1024
    with errors(obj), obj.manager() as m:
        data = read_capped(src, cap, what="ciphertext") if src else sys.stdin.buffer.read(cap + 1)
        if len(data) > cap:
            raise KeylifeError("input is over 64 MiB; use ring.recover() from Python for more")
        plaintext = m.ring(name).recover(version, reason=reason).decrypt(data)
        if dst:
            from keylife.files import atomic_write

            atomic_write(dst, plaintext, mode=0o600)
        else:
            sys.stdout.buffer.write(plaintext)


@key.command()
@click.argument("name")
@pass_obj
def history(obj: Obj, name: str) -> None:
    """Every state change of every version of ring NAME."""
    with errors(obj), obj.manager() as m:
        versions = m.load(name).versions
    emit(
        obj,
        {"ring": name, "versions": [version_dict(v) for v in versions]},
        lambda: print_history(list(versions)),
    )


def _transition(verb: str, help_text: str) -> click.Command:
    @click.command(verb, help=help_text)
    @click.argument("name")
    @click.argument("version", type=int)
    @click.option("--reason", default="", help="Why (recorded in history and audit log).")
    @pass_obj
    def command(obj: Obj, name: str, version: int, reason: str) -> None:
        with errors(obj), obj.manager() as m:
            v = getattr(m, verb)(name, version, reason=reason)
        emit(obj, version_dict(v), f"{name} v{version} is now {v.state.value}")

    return command


for _verb, _help in (
    ("activate", "Activate VERSION of ring NAME now."),
    ("deactivate", "Deactivate VERSION of ring NAME now (it still processes in the grace period)."),
    ("suspend", "Suspend VERSION of ring NAME (it neither protects nor processes)."),
    ("resume", "Resume a suspended VERSION of ring NAME."),
):
    key.add_command(_transition(_verb, _help))
key.add_command(delete_command)

# destruction with a waiting period: its own module
from .destroy import approve, cancel_destroy, destroy  # noqa: E402

for _command in (destroy, cancel_destroy, approve):
    key.add_command(_command)


@key.command()
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", type=click.Choice(REASONS), required=True)
@click.option("--occurred-at", help="ISO 8601 date the compromise occurred.")
@click.option("--message", default="", help="Free text kept with the revocation.")
@pass_obj
def revoke(
    obj: Obj, name: str, version: int, reason: str, occurred_at: str | None, message: str
) -> None:
    """Revoke VERSION of ring NAME with a KMIP / RFC 5280 reason."""
    occurred = parse_when(occurred_at, "--occurred-at")
    with errors(obj), obj.manager() as m:
        v = m.revoke(name, version, reason, occurred_at=occurred, message=message)
    emit(obj, version_dict(v), f"{name} v{version} revoked ({reason}); now {v.state.value}")


@key.command()
@click.argument("name")
@click.option("--reason", default="", help="Why the ring is retired (kept in the audit log).")
@pass_obj
def retire(obj: Obj, name: str, reason: str) -> None:
    """Retire ring NAME: `keylife rotate` never gives it a new version again; its versions run
    out their processing windows."""
    with errors(obj), obj.manager() as m:
        ring = m.retire(name, reason=reason)
        now = m.now()
    emit(obj, ring_summary(ring, now), f"{name} is retired; it gains no new versions")


@key.command()
@click.argument("name")
@pass_obj
def rotate(obj: Obj, name: str) -> None:
    """Rotate ring NAME now: new primary, old one deactivated."""
    with errors(obj), obj.manager() as m:
        v = m.rotate(name)
    emit(obj, version_dict(v), f"{name}: v{v.number} is the new primary")


@key.command()
@click.argument("name")
@click.option("--version", "number", type=int, help="Compromised version (default: the primary).")
@click.option("--reason", type=click.Choice(COMPROMISE_REASONS), default="key-compromise")
@click.option("--occurred-at", required=True, help="ISO 8601 date the compromise occurred.")
@click.option("--message", default="", help="Free text kept with the revocation notice.")
@pass_obj
def compromise(
    obj: Obj, name: str, number: int | None, reason: str, occurred_at: str, message: str
) -> None:
    """Revoke a compromised version and replace it at once."""
    occurred = parse_when(occurred_at, "--occurred-at")
    with errors(obj), obj.manager() as m:
        result = m.compromise(
            name, version=number, reason=reason, occurred_at=occurred, message=message
        )

    def text() -> None:
        c, r = result.compromised, result.replacement
        click.echo(f"{name} v{c.number} compromised (occurred {occurred.isoformat()})")
        if r is not None:
            click.echo(f"{name} v{r.number} is the new primary")
        else:
            click.echo(f"{name} has no replacement yet; `keylife rotate` will issue one")
        for dep in result.dependents:
            click.echo(f"  still depends on v{c.number}: {dep}")

    emit(
        obj,
        {
            "compromised": version_dict(result.compromised),
            "replacement": None if result.replacement is None else version_dict(result.replacement),
            "dependents": list(result.dependents),
        },
        text,
    )


@key.command()
@click.argument("name")
@click.option("--version", "number", type=int, help="One version (default: the primary).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("pem", "der", "jwk", "jwks", "ssh")),
    default="pem",
    show_default=True,
    help="jwks: every version still in its processing window, with kid RING:vN.",
)
@click.option("--out", "out_path", metavar="FILE", help="Write FILE (0644) instead of stdout.")
@pass_obj
def public(obj: Obj, name: str, number: int | None, fmt: str, out_path: str | None) -> None:
    """Public key of ring NAME for verifiers (never anything secret)."""
    with errors(obj), obj.manager() as m:
        data = m.ring(name).public_key(number, fmt)
        if out_path is not None:
            from keylife.files import atomic_write

            atomic_write(out_path, data, mode=0o644)
            return
    sys.stdout.buffer.write(data)
