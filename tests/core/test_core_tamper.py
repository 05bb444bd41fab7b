"""Changing one byte of a sealed blob, an audit record or a backup archive is detected, reported
for that item alone, and changes nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import keylife
from keylife.errors import IntegrityError
from keylife.keygen import fingerprint
from keylife.writer import RingWriter


@pytest.fixture
def filled(store):
    with store.open(actor="ops") as m:
        m.create_ring("pay", "ec-p256", "signing")
        m.rotate("pay")
        m.rotate("pay")
        m.create_ring("data", "aes-256", "data-encryption")
        m.create_ring("mac", "hmac-sha384", "authentication")
    return store


@pytest.mark.parametrize("offset", [3, 10, 20, -1])  # nonce, nonce, ciphertext, tag
def test_one_byte_of_a_sealed_blob(filled, offset) -> None:
    filled.flip_blob("pay", 2, offset)
    with filled.open() as m:
        with pytest.raises(IntegrityError) as info:
            RingWriter.material(m, m.load("pay").get(2))
        assert "pay v2" in str(info.value) and "integrity" in str(info.value)
        # Everything else still loads.
        ring = m.ring("pay")
        assert fingerprint(ring.primary().material) == ring.primary().version.fingerprint
        assert ring.version(1).number == 1
        assert m.ring("data").primary().number == 1
        assert m.ring("mac").primary().number == 1
    # The CLI still lists and verifies: metadata is untouched.
    assert filled.run("key", "list").exit_code == 0
    assert filled.run("audit", "verify").exit_code == 0


def test_blob_moved_to_another_version_does_not_open(filled) -> None:
    """Associated data binds a blob to its ring and version."""
    (blob,) = filled.sql("SELECT blob FROM material WHERE ring='pay' AND version=1")[0]
    filled.sql("UPDATE material SET blob=? WHERE ring='pay' AND version=3", (blob,))
    with filled.open() as m:
        with pytest.raises(IntegrityError, match="pay v3"):
            m.ring("pay").primary()
        assert m.ring("pay").version(1).number == 1


def _audit_docs(env) -> list[tuple[int, dict]]:
    return [(seq, json.loads(doc)) for seq, doc in env.sql("SELECT seq, doc FROM audit")]


def _expect_audit_failure(env, seq: int, word: str) -> None:
    result = env.run("audit", "verify")
    assert result.exit_code == 1
    assert f"record {seq}" in result.stdout and word in result.stdout
    doc = json.loads(env.run("--json", "audit", "verify").stdout)
    assert doc["ok"] is False and doc["first_bad_seq"] == seq
    proc = env.sh("audit", "verify")
    assert proc.returncode == 1 and f"record {seq}" in proc.stdout


def test_audit_verify_passes_untouched(filled) -> None:
    result = filled.run("audit", "verify")
    assert result.exit_code == 0 and "chain intact" in result.stdout


@pytest.mark.parametrize("field", ["actor", "reason", "outcome", "at"])
def test_one_changed_audit_field(filled, field) -> None:
    seq, doc = _audit_docs(filled)[4]
    value = doc[field]
    doc[field] = value[:-1] + chr(ord(value[-1]) ^ 1)
    filled.sql("UPDATE audit SET doc=? WHERE seq=?", (json.dumps(doc), seq))
    _expect_audit_failure(filled, seq, "changed")


def test_one_byte_of_the_raw_audit_row(filled) -> None:
    seq, raw = filled.sql("SELECT seq, doc FROM audit WHERE seq=3")[0]
    i = raw.index('"action":"') + len('"action":"')
    raw = raw[:i] + chr(ord(raw[i]) ^ 1) + raw[i + 1 :]
    filled.sql("UPDATE audit SET doc=? WHERE seq=?", (raw, seq))
    _expect_audit_failure(filled, 3, "changed")


def test_removed_audit_record(filled) -> None:
    filled.sql("DELETE FROM audit WHERE seq=5")
    _expect_audit_failure(filled, 5, "removed")


def test_removed_last_audit_record(filled) -> None:
    (count,) = filled.sql("SELECT max(seq) FROM audit")[0]
    filled.sql("DELETE FROM audit WHERE seq=?", (count,))
    _expect_audit_failure(filled, count, "removed from the end")


def test_reordered_audit_records(filled) -> None:
    docs = dict(_audit_docs(filled))
    filled.sql("UPDATE audit SET doc=? WHERE seq=4", (json.dumps(docs[6]),))
    filled.sql("UPDATE audit SET doc=? WHERE seq=6", (json.dumps(docs[4]),))
    _expect_audit_failure(filled, 4, "reordered")


def test_rewritten_and_rechained_record_is_caught_by_the_head(filled) -> None:
    """Rewriting a record and re-hashing the rest of the chain is caught by the head kept in
    meta -- unless the attacker rewrites that too (see docs/security.md)."""
    from keylife.audit import AuditEntry, AuditRecord, chain

    records = [AuditRecord.from_dict(d) for _, d in _audit_docs(filled)]
    prev = "0" * 64
    forged = []
    for r in records:
        reason = "nothing to see" if r.seq == 2 else r.reason
        entry = AuditEntry(
            keylife.clock.parse_time(r.at), r.actor, r.action, r.ring, r.version, r.outcome, reason
        )
        rec = chain(prev, r.seq, entry)
        forged.append(rec)
        prev = rec.hash
    for rec in forged:
        filled.sql("UPDATE audit SET doc=? WHERE seq=?", (json.dumps(rec.to_dict()), rec.seq))
    result = filled.run("audit", "verify")
    assert result.exit_code == 1
    # With write access to the meta head as well, the rewrite is undetectable in-store:
    filled.sql("UPDATE meta SET value=? WHERE key='audit_head'", (prev,))
    assert filled.run("audit", "verify").exit_code == 0


# ---- backup archives ---------------------------------------------------------------------


@pytest.fixture
def archive(filled, tmp_path: Path) -> Path:
    path = tmp_path / "backup.klb"
    result = filled.run("backup", str(path), "--passphrase-file", str(filled.passphrase_file()))
    assert result.exit_code == 0, result.stderr
    return path


def _restore(env, archive: Path, target: Path, passphrase: str | None = None):
    args = ["--store", str(target), "--master-key-file", str(target.parent / "m.key")]
    pf = env.passphrase_file(passphrase) if passphrase else env.passphrase_file()
    return env.run(*args, "restore", str(archive), "--passphrase-file", str(pf))


def _mutations(data: bytes) -> dict[str, bytes]:
    header_end = data.index(b"\n", len(b"KEYLIFE-BACKUP-1\n"))
    salt = data.index(b'"salt"') + 10
    return {
        "magic": b"X" + data[1:],
        # A different valid base64 character: the salt decodes, the derived key is wrong.
        "header-salt": data[:salt] + (b"B" if data[salt] == ord("A") else b"A") + data[salt + 1 :],
        "salt-encoding": data[:salt] + data[salt + 2 :],
        "scrypt-n": data.replace(b'"n": 32768', b'"n": 32767'),
        "scrypt-huge": data.replace(b'"n": 32768', b'"n": 1099511627776'),
        "scrypt-missing": data.replace(b'"n": 32768', b'"N": 32768'),
        "header-json": data[: header_end - 1] + b"!" + data[header_end:],
        "nonce": data[: header_end + 3]
        + bytes([data[header_end + 3] ^ 1])
        + data[header_end + 4 :],
        "ciphertext": data[: header_end + 40]
        + bytes([data[header_end + 40] ^ 1])
        + data[header_end + 41 :],
        "tag": data[:-1] + bytes([data[-1] ^ 1]),
        "truncated-end": data[:-1],
        "truncated-half": data[: len(data) // 2],
        "truncated-header": data[:25],
        "empty": b"",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "magic",
        "header-salt",
        "salt-encoding",
        "scrypt-n",
        "scrypt-huge",
        "scrypt-missing",
        "header-json",
        "nonce",
        "ciphertext",
        "tag",
        "truncated-end",
        "truncated-half",
        "truncated-header",
        "empty",
    ],
)
def test_damaged_archive_is_refused_and_target_untouched(filled, archive, tmp_path, kind) -> None:
    damaged = tmp_path / f"damaged-{kind}.klb"
    damaged.write_bytes(_mutations(archive.read_bytes())[kind])
    target = tmp_path / "target" / "keylife.db"
    result = _restore(filled, damaged, target)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "keylife: error:" in result.stderr and "archive" in result.stderr
    assert "Traceback" not in result.stderr
    assert not target.exists() and not target.parent.exists()
    # An existing empty target stays empty.
    keylife.init(str(target), master_key_file=target.parent / "m.key").close()
    result = _restore(filled, damaged, target)
    assert result.exit_code == 1
    with keylife.open(str(target), master_key_file=target.parent / "m.key") as m:
        assert m.rings() == [] and m.audit_records() == []


def test_wrong_passphrase_is_refused(filled, archive, tmp_path) -> None:
    target = tmp_path / "target" / "keylife.db"
    result = _restore(filled, archive, target, passphrase="not the right passphrase")
    assert result.exit_code == 1
    assert "wrong passphrase or key" in result.stderr
    assert not target.exists()
    # The source store is unchanged by any of this.
    assert filled.run("audit", "verify").exit_code == 0
