"""Issue 13 items 1 and 2 on the embedded store: every record carries the authenticated
identity beside the claimed actor; backup, restore and rekey are recorded; records written
before identities existed still verify."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pwd
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner, Result
from keylife_cli.main import cli

import keylife
from keylife.audit import GENESIS, AuditEntry, AuditRecord, chain, verify_chain
from keylife.identity import os_identity
from keylife.rotation import run as rotate_run

ME = f"os:{pwd.getpwuid(os.geteuid()).pw_name} uid={os.geteuid()}"
AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def run(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    base = ["--store", str(tmp / "k.db"), "--master-key-file", str(tmp / "mk")]
    return CliRunner(env=env).invoke(cli, [*base, *args], catch_exceptions=False)


def records(tmp: Path) -> list[dict[str, object]]:
    result = run(tmp, "--json", "audit", "show")
    assert result.exit_code == 0, result.output
    out: list[dict[str, object]] = json.loads(result.stdout)["records"]
    return out


def test_os_identity_comes_from_the_kernel_not_the_environment() -> None:
    assert os_identity() == ME


def test_claimed_actor_and_authenticated_identity_are_both_recorded(tmp_path: Path) -> None:
    assert run(tmp_path, "init").exit_code == 0
    # USER / LOGNAME claim someone else: the identity still comes from the uid
    env = {"USER": "mallory", "LOGNAME": "mallory"}
    made = run(
        tmp_path,
        "--actor",
        "svc-b",
        "key",
        "create",
        "orders",
        "--purpose",
        "data-encryption",
        env=env,
    )
    assert made.exit_code == 0, made.output
    failed = run(tmp_path, "--actor", "svc-b", "key", "resume", "orders", "1")
    assert failed.exit_code == 1
    got = records(tmp_path)
    assert [(r["action"], r["actor"], r["identity"]) for r in got] == [
        ("create", "svc-b", ME),
        ("activate", "svc-b", ME),
        ("resume", "svc-b", ME),
    ]
    assert str(got[-1]["outcome"]).startswith("failure")
    shown = run(tmp_path, "audit", "show").stdout
    assert f"svc-b [{ME}]" in shown
    assert run(tmp_path, "audit", "verify").exit_code == 0


def test_library_records_carry_the_identity(tmp_path: Path) -> None:
    with keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk", actor="a@b") as m:
        m.create_ring("r")
        m.rotate("r")
        m.destroy("r", 1)
        rotate_run(m, now=m.now() + m.policy.destroy_wait, rings=["r"])
        assert m.load("r").get(1).state is keylife.State.DESTROYED
        assert {(r.actor, r.identity) for r in m.audit_records()} == {("a@b", ME)}
        assert m.verify_audit().ok


def test_a_record_without_identity_hashes_as_before() -> None:
    """The hash of a record made before identities existed: the same canonical JSON body."""
    entry = AuditEntry(AT, "alice", "create", "orders", 1, "success", "aes-256")
    record = chain(GENESIS, 1, entry)
    old_body = {
        "seq": 1,
        "at": AT.isoformat(),
        "actor": "alice",
        "action": "create",
        "ring": "orders",
        "version": 1,
        "outcome": "success",
        "reason": "aes-256",
        "prev_hash": GENESIS,
    }
    canonical = json.dumps(old_body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert record.hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert "identity" not in record.to_dict()
    stored = AuditRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert verify_chain([stored]).ok


def test_the_identity_is_hashed() -> None:
    first = chain(GENESIS, 1, AuditEntry(AT, "svc-b", "create", "r", 1, identity="vault:svc-a"))
    second = chain(first.hash, 2, AuditEntry(AT, "svc-b", "rotate", "r", 2))
    assert verify_chain([first, second]).ok
    forged = replace(first, identity="vault:svc-b")
    report = verify_chain([forged, second])
    assert not report.ok and report.first_bad_seq == 1
    stripped = AuditRecord.from_dict({k: v for k, v in first.to_dict().items() if k != "identity"})
    assert not verify_chain([stripped, second]).ok


def test_backup_restore_and_rekey_are_recorded(tmp_path: Path) -> None:
    assert run(tmp_path, "init").exit_code == 0
    assert run(tmp_path, "key", "create", "orders", "--purpose", "data-encryption").exit_code == 0
    before = len(records(tmp_path))
    pw = tmp_path / "pass"
    pw.write_text("a long enough passphrase\n")
    archive = tmp_path / "a.klb"
    made = run(tmp_path, "--json", "backup", str(archive), "--passphrase-file", str(pw))
    assert made.exit_code == 0, made.output
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert json.loads(made.stdout)["sha256"] == digest
    rekeyed = run(tmp_path, "store", "rekey")
    assert rekeyed.exit_code == 0, rekeyed.output
    got = records(tmp_path)
    assert len(got) == before + 2
    backup, rekey = got[-2:]
    assert backup["action"] == "backup" and f"sha256:{digest}" in str(backup["reason"])
    assert "1 rings, 1 versions with material" in str(backup["reason"])
    assert rekey["action"] == "rekey" and rekey["identity"] == ME

    target = tmp_path / "restored"
    target.mkdir()
    where = ["--store", str(target / "k.db"), "--master-key-file", str(target / "mk")]
    restored = CliRunner().invoke(
        cli, [*where, "restore", str(archive), "--passphrase-file", str(pw)]
    )
    assert restored.exit_code == 0, restored.output
    shown = CliRunner().invoke(cli, [*where, "--json", "audit", "show"])
    after = json.loads(shown.stdout)["records"]
    assert len(after) == before + 1  # the log as archived, then the restore
    assert after[-1]["action"] == "restore"
    assert f"{archive} sha256:{digest}" in after[-1]["reason"]
    assert CliRunner().invoke(cli, [*where, "audit", "verify"]).exit_code == 0
