"""Backup and restore: an archive restored into an empty store reproduces it exactly."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

import keylife
from keylife.keygen import fingerprint
from keylife.lifecycle import ring_to_dict
from keylife.rotation import run as rotate_run
from keylife.writer import RingWriter


@pytest.fixture
def source(store):
    with store.open(actor="alice") as m:
        m.create_ring("sig", "ec-p384", "signing")
        m.rotate("sig")
        m.create_ring("data", "aes-256", "data-encryption")
        m.create_ring("wrap", "rsa-2048", "key-wrapping")
        m.create_ring("mac", "hmac-sha256:128", "authentication")
        m.create_ring("later", "chacha20", "data-encryption", activate_at=m.now() + dt.timedelta(7))
        m.compromise("data", occurred_at=m.now() - dt.timedelta(days=1))
        m.deactivate("mac", 1)
        m.destroy("mac", 1)  # scheduled; the planner carries it out a destroy_wait later
        rotate_run(m, now=m.now() + m.policy.destroy_wait, rings=["mac"])
        with pytest.raises(keylife.InvalidTransitionError):
            m.resume("sig", 2)  # a failure is in the audit log too
    return store


def _everything(db: Path, key_file: Path) -> tuple[list, dict, list]:
    with keylife.open(str(db), master_key_file=key_file) as m:
        rings = [ring_to_dict(r) for r in m.rings()]
        materials = {}
        for r in m.rings():
            for v in r.versions:
                if v.has_material:
                    mat = RingWriter.material(m, v)
                    assert fingerprint(mat) == v.fingerprint
                    materials[(r.name, v.number)] = base64.b64encode(mat.reveal())
        audit = [r.to_dict() for r in m.audit_records()]
    return rings, materials, audit


@pytest.mark.parametrize("secret", ["passphrase-file", "env", "key-file"])
def test_round_trip_into_an_empty_store(source, tmp_path: Path, monkeypatch, secret) -> None:
    archive = tmp_path / "keylife.klb"
    args: list[str] = []
    if secret == "passphrase-file":
        args = ["--passphrase-file", str(source.passphrase_file())]
    elif secret == "env":
        monkeypatch.setenv("KEYLIFE_BACKUP_PASSPHRASE", "an environment passphrase")
    else:
        key = tmp_path / "backup.key"
        key.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
        args = ["--key-file", str(key)]
    made = source.run("--json", "backup", str(archive), *args)
    assert made.exit_code == 0, made.stderr
    summary = json.loads(made.stdout)
    assert summary["rings"] == 5 and summary["file"] == str(archive)

    target = tmp_path / "restored" / "keylife.db"
    target_key = tmp_path / "restored-conf" / "master.key"
    where = ["--store", str(target), "--master-key-file", str(target_key)]
    restored = source.run("--json", *where, "restore", str(archive), *args)
    assert restored.exit_code == 0, restored.stderr
    doc = json.loads(restored.stdout)
    assert doc["verified"] is True and doc["rings"] == 5
    assert doc["audit_records"] == summary["audit_records"]
    # A different master key seals the restored store: the archive is not tied to it.
    assert target_key.read_bytes() != source.key_file.read_bytes()

    rings, materials, audit = _everything(target, target_key)
    rings0, materials0, audit0 = _everything(source.db, source.key_file)
    assert (rings, materials) == (rings0, materials0)
    # The restored log is the source's at backup time, then a record of the restore; the
    # source's log ends with the record of the backup (issue 13: both are audited).
    assert audit[:-1] == audit0[:-1] and len(audit) == summary["audit_records"] + 1
    backup_record, restore_record = audit0[-1], audit[-1]
    assert backup_record["action"] == "backup" and summary["sha256"] in backup_record["reason"]
    assert restore_record["action"] == "restore"
    assert f"{archive} sha256:{summary['sha256']}" in restore_record["reason"]
    assert "5 rings" in restore_record["reason"] and restore_record["identity"].startswith("os:")
    assert source.run(*where, "audit", "verify").exit_code == 0

    # Restored keys work with data made under the originals.
    with source.open() as before, keylife.open(str(target), master_key_file=target_key) as after:
        sig = before.ring("sig").primary().key
        assert isinstance(sig, ec.EllipticCurvePrivateKey)
        signature = sig.sign(b"payload", ec.ECDSA(hashes.SHA384()))
        after.ring("sig").primary().key.public_key().verify(
            signature, b"payload", ec.ECDSA(hashes.SHA384())
        )
        box = before.ring("data").primary().aead().encrypt(b"\0" * 12, b"secret", b"ad")
        assert after.ring("data").primary().aead().decrypt(b"\0" * 12, box, b"ad") == b"secret"
        # Destroyed stays destroyed, compromised stays compromised.
        assert after.load("mac").get(1).state is keylife.State.DESTROYED
        assert after.load("data").get(1).state is keylife.State.COMPROMISED
        with pytest.raises(keylife.MaterialUnavailableError):
            after.ring("mac").version(1)


def test_restore_into_a_non_empty_store_is_refused(source, tmp_path: Path) -> None:
    archive = tmp_path / "keylife.klb"
    pf = str(source.passphrase_file())
    assert source.run("backup", str(archive), "--passphrase-file", pf).exit_code == 0
    before = _everything(source.db, source.key_file)
    result = source.run("restore", str(archive), "--passphrase-file", pf)
    assert result.exit_code == 1
    assert "empty store" in result.stderr
    assert _everything(source.db, source.key_file) == before
    # A store with only audit records (no rings) is not empty either.
    other = tmp_path / "other" / "keylife.db"
    other_key = tmp_path / "other" / "m.key"
    with keylife.init(str(other), master_key_file=other_key) as m:
        with pytest.raises(keylife.NotFoundError):
            m.rotate("nothing")
        m.store.append_audit([m.entry("note", None, None, "operator note")])
    result = source.run(
        "--store", str(other), "--master-key-file", str(other_key),
        "restore", str(archive), "--passphrase-file", pf,
    )  # fmt: skip
    assert result.exit_code == 1 and "empty store" in result.stderr


def test_backup_key_must_not_be_the_master_key(source, tmp_path: Path) -> None:
    archive = tmp_path / "keylife.klb"
    result = source.run("backup", str(archive), "--key-file", str(source.key_file))
    assert result.exit_code == 2
    assert "must not be the master key" in result.stderr
    assert not archive.exists()


def test_short_passphrase_and_missing_secret(source, tmp_path: Path) -> None:
    archive = tmp_path / "keylife.klb"
    short = source.run(
        "backup", str(archive), "--passphrase-file", str(source.passphrase_file("short"))
    )
    assert short.exit_code == 1 and "at least 12 characters" in short.stderr
    none = source.run("backup", str(archive))
    assert none.exit_code == 2 and "KEYLIFE_BACKUP_PASSPHRASE" in none.stderr
    assert not archive.exists()
