"""`keylife store migrate` between the embedded store and Vault, both ways, verified."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

import keylife
from keylife.errors import BackupError, IntegrityError, RingDeletedError
from keylife.lifecycle import State
from keylife.rotation import run as rotate_run
from keylife.store.migrate import verify_copy
from keylife.vault import VaultKeyStore, open_store
from tests.vault.conftest import DevServer

pytestmark = pytest.mark.vault

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def migrate(src: str, dst: str, key: Path) -> dict[str, object]:
    result = CliRunner().invoke(
        cli,
        ["--json", "--master-key-file", str(key), "store", "migrate", "--from", src, "--to", dst],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_migrate_sqlite_to_vault_and_back(
    vault_env: DevServer, mounts: tuple[str, str], tmp_path: Path
) -> None:
    key = tmp_path / "cfg" / "master.key"
    db = tmp_path / "data" / "keylife.db"
    clock = keylife.FixedClock(T0)
    with keylife.init(str(db), master_key_file=key, clock=clock, actor="op") as m:
        m.create_ring("sig", "ec-p256", "signing")
        m.create_ring("enc", "aes-256", "data-encryption")
        m.create_ring("mac", "hmac-sha256", "authentication")
        clock.advance(dt.timedelta(days=2))
        m.rotate("sig")
        m.rotate("sig")
        m.destroy("sig", 1)
        clock.advance(m.policy.destroy_wait)
        rotate_run(m, rings=["sig"])
        sig2 = m.ring("sig").version(2).material.reveal()
        enc1 = m.ring("enc").primary().material.reveal()
        for _ in range(5):  # message counts travel too (max_messages, the 2^32 limit)
            m.ring("enc").encrypt(b"message")
        n_records = len(m.audit_records())

    url = vault_env.store_url(*mounts)
    report = migrate(str(db), url, key)
    assert report["rings"] == 3 and report["materials"] == 4 and report["verified"] is True
    assert report["audit_records"] == n_records

    with keylife.open(VaultKeyStore.from_url(url), clock=clock) as v:
        assert v.ring("sig").version(2).material.reveal() == sig2
        assert v.ring("enc").primary().material.reveal() == enc1
        assert [x.state for x in v.ring("sig").history()] == [
            State.DESTROYED,
            State.DEACTIVATED,
            State.ACTIVE,
        ]
        assert not v.store.has_material("sig", 1)
        assert v.store.encryption_counts("enc") == {1: 5}
        records = v.audit_records()
        assert v.verify_audit().ok
    assert len(records) == n_records + 1 and records[-1].action == "migrate"

    # into a non-empty target: refused
    result = CliRunner().invoke(
        cli, ["--master-key-file", str(key), "store", "migrate", "--from", str(db), "--to", url]
    )
    assert result.exit_code == 1 and "not empty" in result.output

    # and back into a fresh embedded store
    back = tmp_path / "back" / "keylife.db"
    report = migrate(url, str(back), key)
    assert report["rings"] == 3 and report["materials"] == 4
    with keylife.open(str(back), master_key_file=key, clock=clock) as b:
        assert b.ring("sig").version(2).material.reveal() == sig2
        assert b.store.encryption_counts("enc") == {1: 5}
        assert b.verify_audit().ok


def test_verify_copy_finds_differences(
    vault_env: DevServer, mounts: tuple[str, str], sqlite_store: object
) -> None:
    from keylife.store.migrate import migrate as do_migrate

    clock = keylife.FixedClock(T0)
    m = keylife.KeyManager(sqlite_store, clock=clock, actor="op")  # type: ignore[arg-type]
    m.create_ring("a", "aes-256", "data-encryption")
    with open_store(vault_env.store_url(*mounts), create=True) as target:
        do_migrate(m.store, target, actor="op", now=T0)
        verify_copy(m.store, target)
        # a changed ring document in the copy is caught
        ring = target.load_ring("a")
        assert ring is not None
        changed = replace(ring, attributes={"owner": "mallory"})
        target.commit(changed, expected_revision=ring.revision)
        with pytest.raises(IntegrityError, match="ring a differs"):
            verify_copy(m.store, target)
        target.commit(ring, expected_revision=changed.revision + 1)  # the original again
        # a message count the copy lacks is caught
        m.store.add_encryptions({("a", 1): 3})
        with pytest.raises(IntegrityError, match="message count of a v1 differs"):
            verify_copy(m.store, target)
        with pytest.raises(BackupError, match="not empty"):
            do_migrate(m.store, target, actor="op", now=T0)


def test_a_ring_deleted_before_the_migration_stays_deleted_on_vault(
    vault_env: DevServer, mounts: tuple[str, str], tmp_path: Path
) -> None:
    key, db = tmp_path / "mk", tmp_path / "k.db"
    clock = keylife.FixedClock(T0)
    with keylife.init(str(db), master_key_file=key, clock=clock, actor="op") as m:
        m.create_ring("old", "aes-256", "data-encryption")
        m.deactivate("old", 1)
        m.destroy("old", 1)
        clock.advance(m.policy.destroy_wait)
        assert rotate_run(m, rings=["old"]).ok
        m.delete_ring("old", reason="service gone")
    url = vault_env.store_url(*mounts)
    migrate(str(db), url, key)  # the delete record travels in the log: so does the tombstone
    with keylife.open(VaultKeyStore.from_url(url), clock=clock) as v:
        with pytest.raises(RingDeletedError, match="never reused"):
            v.create_ring("old", "aes-256", "data-encryption")
        assert v.verify_audit().ok
