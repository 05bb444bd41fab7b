"""Secret hygiene: key material never leaves the one type that holds it.

We build a store with one ring of every family, load the material of every version through the
public API, derive every encoding an accident could produce (raw, hex, base64, PEM, the private
scalar), and search for them everywhere keylife writes: reprs, logs, exception messages, audit
records, JSON output, the SQLite files and the backup archive.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import logging
import os
import pickle
import stat
import traceback
from pathlib import Path

import pytest

import keylife
from keylife.backup import BackupSecret, read_backup, restore_snapshot, write_backup
from keylife.errors import KeylifeError
from keylife.rotation import run as rotate_run
from keylife.writer import RingWriter

RINGS = [
    ("sig-rsa", "rsa-2048", "signing"),
    ("sig-ec", "ec-p256", "signing"),
    ("sig-ed", "ed25519", "signing"),
    ("sig-ed448", "ed448", "signing"),
    ("agree", "x25519", "key-agreement"),
    ("data", "aes-256", "data-encryption"),
    ("data-cc", "chacha20", "data-encryption"),
    ("mac", "hmac-sha256", "authentication"),
]


def _populate(m: keylife.KeyManager) -> list[keylife.LoadedKey]:
    for name, type_, purpose in RINGS:
        m.create_ring(name, type_, purpose)
    m.rotate("sig-ec")
    m.rotate("data")
    m.compromise("mac", occurred_at=m.now() - dt.timedelta(hours=1), message="leaked in a log")
    m.suspend("sig-ed", 1)
    loaded = []
    for ring in m.rings():
        for v in ring.versions:
            if v.has_material:
                loaded.append(keylife.LoadedKey(v, RingWriter.material(m, v)))
    return loaded


@pytest.fixture
def populated(store, forms_of, caplog):
    caplog.set_level(logging.DEBUG)
    with store.open(actor="alice") as m:
        loaded = _populate(m)
        forms = [f for k in loaded for f in forms_of(k.material)]
        # The destroyed version's material must vanish too: capture it before destroying.
        first = m.load("data").get(1)
        doomed = keylife.LoadedKey(first, RingWriter.material(m, first))
        forms += forms_of(doomed.material)
        m.deactivate("data-cc", 1)
        m.destroy("data", 1)  # scheduled; carried out by the planner a destroy_wait later
        rotate_run(m, now=m.now() + m.policy.destroy_wait, rings=["data"])
    master = store.key_file.read_bytes().strip()
    forms += [master, base64.b64decode(master), base64.b64decode(master).hex().encode()]
    return store, loaded, forms


def test_reprs_are_redacted(populated, no_secret) -> None:
    store, loaded, forms = populated
    with store.open() as m:
        master = m.store._master
        for k in loaded:
            for obj in (k, k.material, k.version, master, BackupSecret(key=b"k" * 32)):
                for text in (repr(obj), str(obj), f"{obj}", f"{obj!r:>10}", f"{[obj]}"):
                    no_secret(text, forms, f"repr of {type(obj).__name__}")
            assert "redacted" in repr(k.material)
        assert "correct horse" not in repr(BackupSecret(passphrase="correct horse battery"))
        assert repr(master).startswith("<MasterKey kcv=")


def test_material_refuses_pickling(populated) -> None:
    _, loaded, _ = populated
    for k in loaded[:3]:
        for proto in range(pickle.HIGHEST_PROTOCOL + 1):
            with pytest.raises(TypeError, match="cannot be pickled"):
                pickle.dumps(k.material, protocol=proto)
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(k)  # a LoadedKey carries material, so it refuses too
        with pytest.raises(TypeError):
            copy.copy(k.material)
        with pytest.raises(TypeError):
            json.dumps(k.material)


def test_logs_and_audit_never_hold_material(populated, caplog, no_secret) -> None:
    store, _, forms = populated
    no_secret(caplog.text, forms, "library log output")
    for rec in caplog.records:
        no_secret(repr(rec.args), forms, "log record args")
    with store.open() as m:
        records = m.audit_records()
        assert len(records) > 20
        no_secret(json.dumps([r.to_dict() for r in records]), forms, "audit records")
    raw = store.sql("SELECT doc FROM audit")
    no_secret("".join(r[0] for r in raw), forms, "audit table")


def test_cli_json_and_verbose_stderr_never_hold_material(populated, no_secret) -> None:
    store, _, forms = populated
    commands = [
        ("key", "list"),
        ("audit", "show"),
        ("audit", "show", "--ring", "mac"),
        ("audit", "verify"),
        ("policy", "show"),
    ]
    for name, _type, _purpose in RINGS:
        commands += [("key", "show", name), ("key", "history", name)]
    for args in commands:
        result = store.run("--json", *args)
        assert result.exit_code == 0, (args, result.stderr)
        json.loads(result.stdout)  # exactly one document
        no_secret(result.stdout + result.stderr, forms, f"keylife --json {' '.join(args)}")
        text = store.run(*args)
        no_secret(text.stdout + text.stderr, forms, f"keylife {' '.join(args)}")
    # The real console script at maximum verbosity: stderr carries the logs.
    for args in (
        ("key", "list"),
        ("key", "show", "sig-rsa"),
        ("audit", "show"),
        ("key", "show", "nope"),
        ("key", "destroy", "mac", "2"),
    ):
        proc = store.sh("-vv", "--json", *args)
        no_secret(proc.stdout + proc.stderr, forms, f"keylife -vv {' '.join(args)}")
        assert "Traceback" not in proc.stderr


def test_exception_messages_never_hold_material(populated, no_secret, tmp_path: Path) -> None:
    store, _loaded, forms = populated
    caught: list[BaseException] = []

    def expect(fn, *args, **kw):
        with pytest.raises(KeylifeError) as info:
            fn(*args, **kw)
        caught.append(info.value)

    with store.open() as m:
        expect(m.ring("data").version, 1)  # destroyed
        expect(m.ring("mac").version, 1)  # compromised
        expect(m.ring("sig-ed").primary)  # suspended: no primary
        expect(m.activate, "sig-ec", 1)  # deactivated -> activate: invalid
        expect(m.destroy, "sig-ec", 2)  # active -> destroy: invalid
        expect(m.revoke, "sig-ec", 2, "bogus")
        expect(m.create_ring, "sig-ec", "ec-p256", "signing")  # exists
        expect(m.create_ring, "bad name!", "ec-p256", "signing")
        expect(m.load, "missing")
        archive = tmp_path / "b.klb"
        write_backup(m.store, archive, BackupSecret(passphrase="a long passphrase"))
        expect(read_backup, archive, BackupSecret(passphrase="the wrong passphrase"))
        expect(restore_snapshot, m.store, read_backup(archive, BackupSecret("a long passphrase")))
        blob = bytearray(archive.read_bytes())
        blob[-5] ^= 1
        archive.write_bytes(bytes(blob))
        expect(read_backup, archive, BackupSecret(passphrase="a long passphrase"))
    # A tampered blob and a wrong master key.
    store.flip_blob("sig-rsa", 1, 40)
    with store.open() as m:
        expect(m.ring("sig-rsa").primary)
    good = store.key_file.read_bytes()
    store.key_file.write_bytes(base64.b64encode(os.urandom(32)))
    expect(store.open)
    store.key_file.write_bytes(good)
    assert len(caught) == 14
    for exc in caught:
        text = "".join(traceback.format_exception(exc))
        no_secret(text + repr(exc), forms, f"{type(exc).__name__}: {exc}")
        cause = exc.__cause__
        while cause is not None:
            no_secret(repr(cause) + str(cause), forms, f"cause of {type(exc).__name__}")
            cause = cause.__cause__


def test_files_never_hold_plaintext_material(populated, no_secret, tmp_path: Path) -> None:
    store, _, forms = populated
    with store.open() as m:
        # While the store is open the WAL may hold the newest pages: check it too.
        sidecars = [store.db.with_name(store.db.name + s) for s in ("-wal", "-shm")]
        for path in [store.db, *sidecars]:
            if path.exists():
                no_secret(path.read_bytes(), forms, path.name)
        archive = tmp_path / "backup.klb"
        write_backup(m.store, archive, BackupSecret(passphrase="a long passphrase"))
    no_secret(store.db.read_bytes(), forms, "database file after close")
    data = archive.read_bytes()
    no_secret(data, forms, "backup archive")
    assert b"a long passphrase" not in data
    # Sanity check of the search itself: the archive does decrypt to the material we sought.
    plain = json.dumps(read_backup(archive, BackupSecret(passphrase="a long passphrase")))
    assert any(f in plain.encode() for f in forms)


def test_secret_files_are_private(env, tmp_path: Path) -> None:
    old = os.umask(0o022)  # a permissive umask: the modes must not depend on it
    try:
        result = env.run("init")
        assert result.exit_code == 0, result.stderr
        env.run("key", "create", "k", "--purpose", "data-encryption")
        archive = tmp_path / "out" / "backup.klb"
        archive.parent.mkdir()
        made = env.run("backup", str(archive), "--passphrase-file", str(env.passphrase_file()))
        assert made.exit_code == 0, made.stderr
        with env.open() as m:
            m.rotate("k")  # WAL sidecars exist while a connection is open
            files = [env.key_file, env.db, archive]
            files += [
                p
                for p in (env.db.with_name(env.db.name + s) for s in ("-wal", "-shm"))
                if p.exists()
            ]
            for path in files:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        for directory in (env.db.parent, env.key_file.parent):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
        # The master key lives apart from the database.
        assert env.key_file.parent != env.db.parent
        # Rekey writes a new key file: still 0600, and no leftover pending file.
        assert env.run("store", "rekey").exit_code == 0
        assert stat.S_IMODE(env.key_file.stat().st_mode) == 0o600
        assert not env.key_file.with_name("master.key.new").exists()
    finally:
        os.umask(old)


def test_default_xdg_locations_are_private(env, monkeypatch) -> None:
    monkeypatch.delenv("KEYLIFE_STORE")
    monkeypatch.delenv("KEYLIFE_MASTER_KEY_FILE")
    old = os.umask(0o022)
    try:
        result = env.run("init")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.stderr
    data = Path(os.environ["XDG_DATA_HOME"]) / "keylife"
    conf = Path(os.environ["XDG_CONFIG_HOME"]) / "keylife"
    assert str(data / "keylife.db") in result.stdout
    assert stat.S_IMODE((data / "keylife.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((conf / "master.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(conf.stat().st_mode) == 0o700
