"""Issue 13 item 3: a version's material is checked against its recorded fingerprint when it
is loaded, and sealed blobs are bound to a per-store id, so a blob from another store, even one
sharing the master key, never opens (``keylife store rekey`` migrates old-format stores)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import keylife
from keylife.errors import FingerprintMismatchError, IntegrityError
from keylife.writer import RingWriter

from .conftest import Env


def _legacy(env: Env) -> Env:
    """``env`` initialised as a store made before store ids existed (old-format blobs)."""
    env.init().close()
    env.sql("DELETE FROM meta WHERE key='store_id'")
    return env


def _sibling(env: Env, name: str, key_file: Path | None = None) -> Env:
    """Another store in ``env``'s sandbox, sharing its master key file by default."""
    return Env(env.root, env.root / name / "keylife.db", key_file or env.key_file, env.environ)


def _fill(env: Env) -> None:
    with env.open(actor="ops") as m:
        m.create_ring("pay", "ec-p256", "signing")
        m.create_ring("data", "aes-256", "data-encryption")


def _blob(env: Env, ring: str, version: int) -> bytes:
    return env.sql("SELECT blob FROM material WHERE ring=? AND version=?", (ring, version))[0][0]


def _put_blob(env: Env, ring: str, version: int, blob: bytes) -> None:
    env.sql("UPDATE material SET blob=? WHERE ring=? AND version=?", (blob, ring, version))


def test_new_store_has_an_id_and_binds_blobs(store: Env) -> None:
    (sid,) = store.sql("SELECT value FROM meta WHERE key='store_id'")[0]
    assert len(sid) == 32
    _fill(store)
    assert _blob(store, "pay", 1)[:3] == b"KL2"
    store.init().close()  # idempotent: the id stays
    assert store.sql("SELECT value FROM meta WHERE key='store_id'")[0][0] == sid


@pytest.mark.parametrize("ring", ["pay", "data"])
def test_swapped_blob_fails_its_fingerprint_check(env: Env, ring: str) -> None:
    """Two old-format stores sharing a master key: a blob copied from one into the other opens
    (same key, same ring and version) but is not the key the ring records: refused at load,
    naming ring, version and the recovery step, never the material."""
    a = _legacy(env)
    b = _legacy(_sibling(env, "b"))
    _fill(a)
    _fill(b)
    _put_blob(a, ring, 1, _blob(b, ring, 1))
    with b.open() as mb:
        secret = RingWriter.material(mb, mb.load(ring).get(1)).reveal()
    with a.open() as m:
        with pytest.raises(FingerprintMismatchError) as info:
            RingWriter.material(m, m.load(ring).get(1))
        with pytest.raises(FingerprintMismatchError):
            m.ring(ring).primary()
    err = info.value
    assert (err.ring, err.version) == (ring, 1)
    message = str(err)
    assert f"keylife restore ARCHIVE --ring {ring} --version 1" in message
    assert secret.hex() not in message and repr(secret) not in message
    # the CLI says the same in one line, exit non-zero
    result = a.run("encrypt", "data") if ring == "data" else a.run("sign", "pay", input="x")
    assert result.exit_code != 0
    assert "does not match the fingerprint" in result.stderr


def test_blob_from_a_store_sharing_the_master_key_never_opens(env: Env) -> None:
    a = env
    a.init().close()
    b = _sibling(env, "b")
    b.init().close()
    _fill(a)
    _fill(b)
    _put_blob(a, "data", 1, _blob(b, "data", 1))
    with a.open() as m:
        with pytest.raises(IntegrityError, match="data v1: sealed material failed"):
            m.ring("data").primary()
        assert m.ring("pay").primary().number == 1  # the rest still opens


def test_rekey_migrates_an_old_format_store(env: Env) -> None:
    a = _legacy(env)
    _fill(a)
    with a.open() as m:
        m.rotate("pay")
        m.destroy("pay", 1)
        before = {
            (r.name, v.number): v.fingerprint
            for r in m.rings()
            for v in r.versions
            if v.has_material
        }
    assert _blob(a, "data", 1)[:3] == b"KL1"
    # old-format blobs are read as before until the store is migrated
    with a.open() as m:
        assert m.ring("data").decrypt(m.ring("data").encrypt(b"hi")) == b"hi"
    result = a.run("store", "rekey")
    assert result.exit_code == 0, result.stderr
    (sid,) = a.sql("SELECT value FROM meta WHERE key='store_id'")[0]
    assert {b[:3] for (b,) in a.sql("SELECT blob FROM material")} == {b"KL2"}
    with a.open() as m:  # everything readable
        for ring, number in before:
            RingWriter.material(m, m.load(ring).get(number))  # checks the fingerprint too
        assert m.store.store_id == sid
    # an old-format store sharing the NEW master key: its blob (same ring and version, valid
    # under the key) is refused by the migrated store
    b = _legacy(_sibling(env, "b"))
    _fill(b)
    assert _blob(b, "data", 1)[:3] == b"KL1"
    _put_blob(a, "data", 1, _blob(b, "data", 1))
    with a.open() as m, pytest.raises(IntegrityError, match="old format, without this store"):
        m.ring("data").primary()


def test_a_process_opened_before_the_migration_follows_it(env: Env) -> None:
    a = _legacy(env)
    _fill(a)
    with a.open() as early:
        assert early.store.store_id is None
        assert a.run("store", "rekey").exit_code == 0
        # it opens the bound blobs and seals new ones bound as well
        assert early.ring("pay").primary().number == 1
        early.rotate("data")
        assert early.store.store_id is not None
    assert _blob(a, "data", 2)[:3] == b"KL2"
    with a.open() as m:
        assert m.ring("data").primary().number == 2


def test_master_key_env_store_keeps_its_id(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.init().close()
    key = env.key_file.read_text().strip()
    monkeypatch.setenv("KEYLIFE_MASTER_KEY", key)
    assert os.environ["KEYLIFE_MASTER_KEY"] == key
    with keylife.open(str(env.db)) as m:
        m.create_ring("data", "aes-256", "data-encryption")
        assert m.ring("data").primary().number == 1
    assert _blob(env, "data", 1)[:3] == b"KL2"
