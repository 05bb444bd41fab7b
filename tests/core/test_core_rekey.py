"""``keylife store rekey``: a new master key re-seals every blob in one transaction, and a crash
at any point leaves a store that opens with the key that matches it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import keylife
from keylife.errors import IntegrityError
from keylife.keygen import fingerprint
from keylife.sealing import MasterKey
from keylife.store.sqlite import MasterKeyFile, SqliteStore
from keylife.writer import RingWriter


@pytest.fixture
def keyed(store):
    with store.open() as m:
        m.create_ring("sig", "ed25519", "signing")
        m.rotate("sig")
        m.create_ring("data", "aes-128", "data-encryption")
        m.create_ring("mac", "hmac-sha512", "authentication")
        m.destroy("sig", 1)  # destroyed versions have no blob to re-seal
    return store


def _fingerprints(env) -> dict[tuple[str, int], str]:
    """Open every version with material and return its recomputed fingerprint."""
    out = {}
    with env.open() as m:
        for ring in m.rings():
            for v in ring.versions:
                if v.has_material:
                    fp = fingerprint(RingWriter.material(m, v))
                    assert fp == v.fingerprint
                    out[(ring.name, v.number)] = fp
    return out


def _kcv(env) -> str:
    return env.sql("SELECT value FROM meta WHERE key='master_key_id'")[0][0]


def test_rekey_reseals_everything(keyed, tmp_path: Path) -> None:
    before = _fingerprints(keyed)
    blobs_before = {(r, v): b for r, v, b in keyed.sql("SELECT * FROM material")}
    old_key = tmp_path / "old.key"
    shutil.copy(keyed.key_file, old_key)
    kcv_before = _kcv(keyed)

    result = keyed.run("--json", "store", "rekey")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["rekeyed"] is True and doc["master_key_check_value"] == _kcv(keyed) != kcv_before
    assert keyed.key_file.read_bytes() != old_key.read_bytes()
    assert not keyed.key_file.with_name("master.key.new").exists()

    assert _fingerprints(keyed) == before
    blobs_after = {(r, v): b for r, v, b in keyed.sql("SELECT * FROM material")}
    assert blobs_after.keys() == blobs_before.keys()
    for where, blob in blobs_after.items():
        assert blob != blobs_before[where], where
    # The old key no longer opens the store, with a message that says why.
    with pytest.raises(IntegrityError, match="master key does not match"):
        keylife.open(str(keyed.db), master_key_file=old_key)
    proc = keyed.sh("--master-key-file", str(old_key), "key", "list")
    assert proc.returncode == 1 and "master key does not match" in proc.stderr
    # And the audit chain is intact.
    assert keyed.run("audit", "verify").exit_code == 0


def test_rekey_refused_with_key_from_environment(keyed, monkeypatch) -> None:
    monkeypatch.setenv("KEYLIFE_MASTER_KEY", keyed.key_file.read_text().strip())
    result = keyed.run("store", "rekey")
    assert result.exit_code == 1
    assert "KEYLIFE_MASTER_KEY" in result.stderr
    monkeypatch.delenv("KEYLIFE_MASTER_KEY")
    _fingerprints(keyed)


class Crash(BaseException):
    """Stands in for the process dying at this point."""


def test_crash_after_new_key_written_before_commit(keyed, monkeypatch) -> None:
    before = _fingerprints(keyed)
    kcv = _kcv(keyed)
    store = SqliteStore(keyed.db, MasterKeyFile(keyed.key_file))
    calls = []

    def dying_seal(self, plaintext, ad):
        calls.append(ad)
        if len(calls) == 2:
            raise Crash
        return real_seal(self, plaintext, ad)

    real_seal = MasterKey.seal
    monkeypatch.setattr(MasterKey, "seal", dying_seal)
    with pytest.raises(Crash):
        store.rekey()
    monkeypatch.setattr(MasterKey, "seal", real_seal)
    store.close()
    pending = keyed.key_file.with_name("master.key.new")
    assert pending.exists()  # the new key was written; the transaction never committed
    assert _kcv(keyed) == kcv
    assert _fingerprints(keyed) == before  # opens with the old key...
    assert not pending.exists()  # ...and drops the unused new one
    assert keyed.run("store", "rekey").exit_code == 0
    assert _fingerprints(keyed) == before


def test_crash_after_commit_before_swap(keyed, monkeypatch) -> None:
    before = _fingerprints(keyed)
    kcv = _kcv(keyed)
    store = SqliteStore(keyed.db, MasterKeyFile(keyed.key_file))
    import keylife.store.sqlite as sqlite_mod

    real_replace = sqlite_mod.os.replace

    def dying_replace(src, dst):
        if Path(dst) == keyed.key_file:  # the swap of master.key.new into place
            raise Crash
        real_replace(src, dst)

    monkeypatch.setattr(sqlite_mod.os, "replace", dying_replace)
    with pytest.raises(Crash):
        store.rekey()
    monkeypatch.setattr(sqlite_mod.os, "replace", real_replace)
    store.close()
    assert _kcv(keyed) != kcv  # committed under the new key
    pending = keyed.key_file.with_name("master.key.new")
    assert pending.exists()
    assert MasterKey.decode(keyed.key_file.read_bytes(), source="old").check_value == kcv
    # Opening finishes the swap: the key file now holds the new key.
    assert _fingerprints(keyed) == before
    assert not pending.exists()
    assert MasterKey.decode(keyed.key_file.read_bytes(), source="new").check_value == _kcv(keyed)
    assert keyed.run("audit", "verify").exit_code == 0


def test_store_opened_before_a_rekey_keeps_working(keyed) -> None:
    """A long-running service holds the store open while an operator rekeys it."""
    before = _fingerprints(keyed)
    with keyed.open() as service:
        assert keyed.run("store", "rekey").exit_code == 0
        new = service.rotate("sig")
        service.create_ring("late", "aes-256", "data-encryption")
    after = _fingerprints(keyed)  # every blob, old and new, opens with the current key file
    assert set(before) < set(after)
    assert ("sig", new.number) in after and ("late", 1) in after


def test_opening_during_a_rekey_does_not_lose_the_new_key(keyed, monkeypatch) -> None:
    """Another process opening the store while a rekey is in flight must not delete the new
    key file the rekey is about to commit (it waits for the rekey, then opens)."""
    import subprocess
    import time

    before = _fingerprints(keyed)
    rekeying = SqliteStore(keyed.db, MasterKeyFile(keyed.key_file))
    opener: list[subprocess.Popen[str]] = []
    real_seal = MasterKey.seal
    code = (
        "import sys, keylife\n"
        "m = keylife.open(sys.argv[1], master_key_file=sys.argv[2])\n"
        "print(len(m.rings()), m.store._master.check_value)\n"
    )

    def seal_while_another_process_opens(self, plaintext, ad):
        if not opener:
            opener.append(keyed.python(code, str(keyed.db), str(keyed.key_file)))
            time.sleep(1.0)  # let it reach the point where it looks at master.key.new
        return real_seal(self, plaintext, ad)

    monkeypatch.setattr(MasterKey, "seal", seal_while_another_process_opens)
    new_kcv = rekeying.rekey()
    monkeypatch.setattr(MasterKey, "seal", real_seal)
    rekeying.close()
    out, err = opener[0].communicate(timeout=60)
    assert opener[0].returncode == 0, err
    assert out.split() == ["3", new_kcv]
    assert _fingerprints(keyed) == before
