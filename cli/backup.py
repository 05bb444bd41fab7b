"""``keylife backup`` and ``keylife restore``."""

from __future__ import annotations

import os
import sys

import click

from .context import Obj, emit, errors, fail, pass_obj
from .render import clean


def _secret(
    obj: Obj, passphrase_file: str | None, key_file: str | None, *, confirm: bool
) -> object:
    from keylife.backup import BackupSecret

    if key_file:
        with errors(obj):
            return BackupSecret.from_key_file(key_file)
    if passphrase_file:
        return BackupSecret(passphrase=_read_passphrase(obj, passphrase_file))
    env = os.environ.get("KEYLIFE_BACKUP_PASSPHRASE")
    if env:
        return BackupSecret(passphrase=env)
    if sys.stdin.isatty():
        text = click.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm)
        return BackupSecret(passphrase=text)
    fail(
        obj,
        "a backup needs a secret: --passphrase-file, --key-file or KEYLIFE_BACKUP_PASSPHRASE "
        "(it must not be the master key)",
        2,
    )


def _read_passphrase(obj: Obj, path: str) -> str:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(64 * 1024)
    except OSError as exc:
        fail(obj, f"--passphrase-file {clean(path)}: cannot read it: {exc.strerror}", 2)
    try:
        return raw.decode("utf-8").rstrip("\n")
    except UnicodeDecodeError:
        fail(obj, f"--passphrase-file {clean(path)}: not UTF-8 text; save it as UTF-8", 2)


_OPTIONS = [
    click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False)),
    click.option(
        "--key-file",
        type=click.Path(exists=True, dir_okay=False),
        help="Backup key file: base64 of 32 random bytes (head -c 32 /dev/urandom | base64).",
    ),
]


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@_OPTIONS[0]
@_OPTIONS[1]
@pass_obj
def backup(obj: Obj, file: str, passphrase_file: str | None, key_file: str | None) -> None:
    """Write an encrypted archive of every ring, its material and the audit log to FILE."""
    from keylife.backup import BackupSecret, write_backup

    secret = _secret(obj, passphrase_file, key_file, confirm=True)
    assert isinstance(secret, BackupSecret)
    with errors(obj), obj.manager() as m:
        if key_file and secret.key is not None:
            master_kcv = getattr(m.store, "master_key_check_value", None)
            from keylife.sealing import MasterKey

            if master_kcv == MasterKey(secret.key).check_value:
                fail(obj, "the backup key must not be the master key", 2)
        summary = write_backup(m.store, file, secret, entry=m.entry)
    emit(
        obj,
        {"file": file, **summary.__dict__},
        f"backup written to {clean(file)}: {summary.rings} rings, {summary.versions_with_material} "
        f"versions with material, {summary.audit_records} audit records",
    )


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_OPTIONS[0]
@_OPTIONS[1]
@click.option("--ring", help="Recover one version of this ring into the existing store.")
@click.option("--version", "number", type=int, help="The version to recover (with --ring).")
@pass_obj
def restore(
    obj: Obj,
    file: str,
    passphrase_file: str | None,
    key_file: str | None,
    ring: str | None,
    number: int | None,
) -> None:
    """Restore FILE into an empty store (created if missing) and verify the result; with
    --ring and --version, put back that one version's material in the existing store (it must
    match the version's recorded fingerprint; nothing else changes)."""
    from keylife.backup import (
        BackupSecret,
        archive_sha256,
        check_archive,
        read_backup,
        restore_snapshot,
    )

    if (ring is None) != (number is None):
        raise click.UsageError("--ring and --version go together")
    secret = _secret(obj, passphrase_file, key_file, confirm=False)
    assert isinstance(secret, BackupSecret)
    with errors(obj):
        data = read_backup(file, secret)  # refuse a bad archive before touching any store
        check_archive(data)
        digest = archive_sha256(file)
    if ring is not None and number is not None:
        from keylife.recovery import recover_version

        with errors(obj), obj.manager() as m:
            v = recover_version(m, data, ring, number, source=file)
        emit(
            obj,
            {"file": file, "ring": ring, "version": v.number, "recovered": True},
            f"{clean(ring)} v{v.number}: material restored from {clean(file)}",
        )
        return
    with errors(obj), obj.manager(create=True) as m:
        summary = restore_snapshot(m.store, data, entry=m.entry, source=file, sha256=digest)
    emit(
        obj,
        {"file": file, "verified": True, **summary.__dict__},
        f"restored {summary.rings} rings, {summary.versions_with_material} versions with "
        f"material and {summary.audit_records} audit records; verified",
    )
