"""Issue 10 items 10, 11 and 13: archives made by someone else, targets that cannot be written.

A restore validates the whole archive (ring names and documents, material references, sizes
and fingerprints, the audit chain) before writing anything, and writes in one transaction: a
refused restore leaves nothing behind, and a retry with a good archive then works. Scrypt
parameters in the (unauthenticated) header are capped at what keylife writes.
"""

from __future__ import annotations

import base64
import json
import os
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keylife.backup import MAGIC, SCRYPT_PARAMS, BackupSecret, read_backup, restore_snapshot
from keylife.errors import BackupError
from keylife.rotation import run as rotate_run

from .files_support import Sandbox, one_line_error, sandbox

KEY = os.urandom(32)


@pytest.fixture
def kl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    box = sandbox(tmp_path, monkeypatch)
    with box.init(actor="alice") as m:
        m.create_ring("sig", "ec-p256", "signing")
        m.rotate("sig")
        m.create_ring("data", "aes-256", "data-encryption")
        for _ in range(3):  # counted messages, which the archive carries
            m.ring("data").encrypt(b"message")
        m.create_ring("mac", "hmac-sha256", "authentication")
        m.deactivate("mac", 1)
        m.destroy("mac", 1)  # scheduled; the planner carries it out a destroy_wait later
        rotate_run(m, now=m.now() + m.policy.destroy_wait, rings=["mac"])
    return box


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "backup.key"
    path.write_bytes(base64.b64encode(KEY) + b"\n")
    return path


@pytest.fixture
def good(kl: Sandbox, key_file: Path) -> dict[str, Any]:
    """The payload of a real archive of ``kl``'s store."""
    archive = kl.root / "good.klb"
    assert kl.run("backup", str(archive), "--key-file", str(key_file)).exit_code == 0
    return read_backup(archive, BackupSecret(key=KEY))


def seal(path: Path, data: dict[str, Any], header: dict[str, Any] | None = None) -> Path:
    """An archive holding ``data`` under :data:`KEY`, as keylife would write it."""
    head = json.dumps(header or {"kdf": "key"}, sort_keys=True).encode()
    payload = zlib.compress(json.dumps(data).encode())
    nonce = os.urandom(12)
    body = AESGCM(KEY).encrypt(nonce, payload, MAGIC + head)
    path.write_bytes(MAGIC + head + b"\n" + nonce + body)
    return path


def _ring(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in data["rings"] if r["name"] == name)


def _rename(data: dict[str, Any]) -> None:
    evil = "../../evil\nname"
    _ring(data, "data")["name"] = evil
    for item in data["material"]:
        if item["ring"] == "data":
            item["ring"] = evil


def _short_ec(data: dict[str, Any]) -> None:
    for item in data["material"]:
        if item["ring"] == "sig":
            item["key"] = base64.b64encode(b"12345").decode()


def _other_key(data: dict[str, Any]) -> None:
    data["material"][0]["key"] = base64.b64encode(os.urandom(32)).decode()
    next(i for i in data["material"] if i["ring"] == "data")["key"] = base64.b64encode(
        os.urandom(32)
    ).decode()


MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "unknown material reference": (
        lambda d: d["material"].append({**d["material"][0], "ring": "ghost"}),
        "unknown version 'ghost' v",
    ),
    "material for a version that does not exist": (
        lambda d: d["material"].append({**d["material"][0], "version": 99}),
        "v99",
    ),
    "duplicate rings": (lambda d: d["rings"].append(_ring(d, "data")), "ring 'data' twice"),
    "duplicate material": (lambda d: d["material"].append(d["material"][-1]), "twice"),
    "extra material": (
        lambda d: d["material"].append({"ring": "mac", "version": 1, "key": "AAAA"}),
        "extra material for 'mac' v1, which is destroyed",
    ),
    "missing material": (lambda d: d["material"].pop(), "has no material for"),
    "bad base64": (lambda d: d["material"][-1].update(key="!!not base64!!"), "not valid base64"),
    "evil ring name": (_rename, "'../../evil\\nname'; ring names are"),
    "5-byte ec-p256 material": (_short_ec, "not a ec-p256 private key"),
    "material of another key": (_other_key, "fingerprint"),
    "unknown state": (
        lambda d: _ring(d, "sig")["versions"][0].update(state="resting"),
        "unknown state 'resting'",
    ),
    "rings not a list": (lambda d: d.update(rings={"a": 1}), "'rings' is not a list"),
    "material not objects": (lambda d: d["material"].append("x"), "material #"),
    "audit record changed": (
        lambda d: d["audit"][0].update(actor="mallory"),
        "audit log does not verify: record 1 was changed",
    ),
    "audit record malformed": (lambda d: d["audit"][1].pop("hash"), "audit record 2"),
    "count of an unknown version": (
        lambda d: d["counts"].append({"ring": "data", "version": 9, "messages": 1}),
        "count #2 refers to unknown version 'data' v9",
    ),
    "count not positive": (lambda d: d["counts"][0].update(messages=0), "counts are > 0"),
    "count malformed": (lambda d: d["counts"][0].update(messages="3"), "count #1 is malformed"),
    "counts not a list": (lambda d: d.update(counts={"data": 3}), "'counts' is not a list"),
    "duplicate count": (lambda d: d["counts"].append(d["counts"][0]), "count of 'data' v1 twice"),
}


@pytest.mark.parametrize("how", sorted(MUTATIONS))
def test_bad_archives_are_refused_before_anything_is_written(
    kl: Sandbox, good: dict[str, Any], key_file: Path, how: str
) -> None:
    mutate, expected = MUTATIONS[how]
    bad = json.loads(json.dumps(good))
    mutate(bad)
    archive = seal(kl.root / "bad.klb", bad)
    target = kl.root / "restored" / "keylife.db"
    where = ["--store", str(target), "--master-key-file", str(kl.root / "restored.key")]
    line = one_line_error(kl.run(*where, "restore", str(archive), "--key-file", str(key_file)), 1)
    assert expected in line, line
    # Nothing left behind: a retry with the good archive goes through.
    fixed = seal(kl.root / "fixed.klb", good)
    retry = kl.run("--json", *where, "restore", str(fixed), "--key-file", str(key_file))
    assert retry.exit_code == 0, retry.stderr
    assert json.loads(retry.stdout)["rings"] == 3


def test_message_counts_travel_with_the_archive(
    kl: Sandbox, good: dict[str, Any], key_file: Path
) -> None:
    import keylife

    assert good["counts"] == [{"ring": "data", "version": 1, "messages": 3}]
    older = {k: v for k, v in good.items() if k != "counts"}  # an archive from before counts
    for name, payload, expected in (("now", good, {1: 3}), ("older", older, {})):
        archive = seal(kl.root / f"{name}.klb", payload)
        target = kl.root / name / "keylife.db"
        where = ["--store", str(target), "--master-key-file", str(kl.root / f"{name}.key")]
        done = kl.run(*where, "restore", str(archive), "--key-file", str(key_file))
        assert done.exit_code == 0, done.stderr
        with keylife.open(str(target), master_key_file=kl.root / f"{name}.key") as m:
            assert m.store.encryption_counts("data") == expected


@pytest.mark.parametrize("how", sorted(MUTATIONS))
def test_the_library_restore_leaves_an_empty_store(
    kl: Sandbox, good: dict[str, Any], tmp_path: Path, how: str
) -> None:
    import keylife

    bad = json.loads(json.dumps(good))
    MUTATIONS[how][0](bad)
    with keylife.init(str(tmp_path / "t" / "k.db"), master_key_file=tmp_path / "t.key") as m:
        with pytest.raises(BackupError):
            restore_snapshot(m.store, bad)
        assert m.store.list_ring_names() == [] and m.store.read_audit() == []


def test_a_failed_verification_rolls_the_whole_restore_back(
    kl: Sandbox, good: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keylife
    from keylife import backup
    from keylife.errors import IntegrityError

    def broken(store: object, data: object) -> None:
        raise IntegrityError("restored store differs from the archive in its rings")

    monkeypatch.setattr(backup, "verify_restore", broken)
    with keylife.init(str(tmp_path / "t" / "k.db"), master_key_file=tmp_path / "t.key") as m:
        with pytest.raises(IntegrityError):
            restore_snapshot(m.store, good)
        assert m.store.list_ring_names() == [] and m.store.read_audit() == []


@pytest.mark.parametrize(
    "params",
    [
        {"n": 2**16, "r": 8, "p": 1},
        {"n": 2**15, "r": 16, "p": 1},
        {"n": 2**15, "r": 8, "p": 2},
        {"n": 2**20, "r": 32, "p": 1},
        {"n": 3 * 2**10, "r": 8, "p": 1},
        {"n": True, "r": 8, "p": 1},
        {"n": "32768", "r": 8, "p": 1},
        {"r": 8, "p": 1},
    ],
)
def test_scrypt_parameters_above_what_keylife_writes_are_refused(
    kl: Sandbox, good: dict[str, Any], params: dict[str, Any]
) -> None:
    header = {"kdf": "scrypt", "salt": base64.b64encode(os.urandom(16)).decode(), **params}
    archive = seal(kl.root / "costly.klb", good, header)
    pf = str(kl.passphrase_file())
    started = time.monotonic()
    line = one_line_error(kl.run("restore", str(archive), "--passphrase-file", pf), 1)
    assert time.monotonic() - started < 2
    assert "keylife accepts at most n=2^15" in line and "r=8, p=1" in line
    assert SCRYPT_PARAMS == {"n": 2**15, "r": 8, "p": 1}


@pytest.mark.parametrize("salt", [None, 5, "", "!!", base64.b64encode(b"x" * 4).decode()])
def test_a_malformed_salt_is_refused(kl: Sandbox, good: dict[str, Any], salt: object) -> None:
    header = {"kdf": "scrypt", "salt": salt, **SCRYPT_PARAMS}
    archive = seal(kl.root / "salt.klb", good, header)
    pf = str(kl.passphrase_file())
    line = one_line_error(kl.run("restore", str(archive), "--passphrase-file", pf), 1)
    assert "salt" in line


def test_backup_to_an_unwritable_path(kl: Sandbox) -> None:
    pf = str(kl.passphrase_file())
    a_file = kl.root / "plain-file"
    a_file.write_text("x")
    for target in (kl.root / "missing" / "k.klb", a_file / "k.klb"):
        line = one_line_error(kl.run("backup", str(target), "--passphrase-file", pf), 1)
        assert "cannot write in" in line and str(target.parent) in line
    one_line_error(kl.run("backup", str(kl.root), "--passphrase-file", pf), 2)


def test_a_passphrase_file_that_is_not_utf8(kl: Sandbox) -> None:
    pf = kl.root / "latin1.txt"
    pf.write_bytes(b"caf\xe9 caf\xe9 caf\xe9\n")
    for args in (("backup", str(kl.root / "k.klb")), ("restore", str(pf))):
        line = one_line_error(kl.run(*args, "--passphrase-file", str(pf)), 2)
        assert "not UTF-8" in line and str(pf) in line
    assert not (kl.root / "k.klb").exists()
