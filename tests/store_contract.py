"""The store contract: every KeyStore backend must pass these tests unchanged.

A backend's test module provides a ``store`` fixture yielding a fresh, empty store and
re-exports these tests with ``from tests.store_contract import *``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

import keylife
from keylife.audit import AuditEntry, verify_chain
from keylife.auditstate import check_state
from keylife.errors import (
    ConflictError,
    MaterialUnavailableError,
    NotFoundError,
    RingDeletedError,
    RingNotEmptyError,
)
from keylife.lifecycle import Ring, State, new_version
from keylife.specs import parse_spec
from keylife.store.base import KeyStore
from tests.rings import fresh_ring

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

__all__ = [
    "test_contract_audit_chain",
    "test_contract_commit_conflict_keeps_stored_state",
    "test_contract_create_and_load",
    "test_contract_create_twice_conflicts",
    "test_contract_delete_ring",
    "test_contract_delete_ring_refusals",
    "test_contract_destroy_erases_material",
    "test_contract_encryption_counts_add_up",
    "test_contract_encryption_counts_concurrent_adds",
    "test_contract_lease",
    "test_contract_lease_takeover",
    "test_contract_load_rings_lists_all",
    "test_contract_manager_delete_ring",
    "test_contract_manager_lifecycle",
    "test_contract_material_roundtrip",
]


def _ring(name: str, spec: str = "aes-256") -> tuple[Ring, keylife.KeyMaterial]:
    return fresh_ring(name, spec, created=T0, deactivation=T0 + dt.timedelta(days=365))


def test_contract_create_and_load(store: KeyStore) -> None:
    assert isinstance(store, KeyStore)
    assert store.list_ring_names() == []
    assert store.load_ring("a") is None
    ring, material = _ring("a")
    saved = store.commit(ring, expected_revision=0, materials={1: material})
    assert saved.revision > 0
    loaded = store.load_ring("a")
    assert loaded is not None
    assert loaded.revision == saved.revision
    assert loaded.versions == ring.versions
    assert loaded.versions[0].state is State.ACTIVE
    assert store.list_ring_names() == ["a"]


def test_contract_create_twice_conflicts(store: KeyStore) -> None:
    ring, material = _ring("a")
    store.commit(ring, expected_revision=0, materials={1: material})
    other, other_material = _ring("a")
    with pytest.raises(ConflictError):
        store.commit(other, expected_revision=0, materials={1: other_material})
    assert store.get_material("a", 1, ring.spec) == material


def test_contract_commit_conflict_keeps_stored_state(store: KeyStore) -> None:
    ring, material = _ring("a")
    saved = store.commit(ring, expected_revision=0, materials={1: material})
    ring2, _ = new_version(
        saved, fingerprint="kcv:x", now=T0, actor="t", activation=None, deactivation=None
    )
    with pytest.raises(ConflictError):
        store.commit(ring2, expected_revision=saved.revision + 5, audit=[AuditEntry(T0, "t", "x")])
    loaded = store.load_ring("a")
    assert loaded is not None and len(loaded.versions) == 1
    assert store.read_audit() == []
    updated = store.commit(ring2, expected_revision=saved.revision)
    assert updated.revision > saved.revision
    with pytest.raises(ConflictError):  # stale writer loses
        store.commit(ring2, expected_revision=saved.revision)


def test_contract_material_roundtrip(store: KeyStore) -> None:
    for spec in ("aes-256", "ec-p256", "ed25519", "hmac-sha512"):
        ring, material = _ring(f"r-{spec}", spec)
        store.commit(ring, expected_revision=0, materials={1: material})
        got = store.get_material(ring.name, 1, ring.spec)
        assert got == material
        assert got.reveal() == material.reveal()
        assert store.has_material(ring.name, 1)
        assert not store.has_material(ring.name, 2)
    with pytest.raises(NotFoundError):
        store.get_material("r-aes-256", 9, parse_spec("aes-256"))


def test_contract_destroy_erases_material(store: KeyStore) -> None:
    ring, material = _ring("a")
    saved = store.commit(ring, expected_revision=0, materials={1: material})
    v = saved.versions[0]
    gone = replace(v, state=State.DESTROYED, destroy_date=T0)
    store.commit(saved.replace_version(gone), expected_revision=saved.revision, destroy=[1])
    assert not store.has_material("a", 1)
    with pytest.raises(NotFoundError):
        store.get_material("a", 1, v.spec)
    loaded = store.load_ring("a")
    assert loaded is not None and loaded.versions[0].state is State.DESTROYED


def test_contract_audit_chain(store: KeyStore) -> None:
    ring, material = _ring("a")
    entries = [
        AuditEntry(T0, "alice", "create", "a", 1),
        AuditEntry(T0, "alice", "activate", "a", 1),
    ]
    store.commit(ring, expected_revision=0, materials={1: material}, audit=entries)
    store.append_audit([AuditEntry(T0, "bob", "verify", outcome="failure: x", reason="why")])
    records = store.read_audit()
    assert [r.action for r in records] == ["create", "activate", "verify"]
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[2].outcome == "failure: x" and records[2].actor == "bob"
    assert verify_chain(records).ok


def test_contract_lease(store: KeyStore) -> None:
    ttl = dt.timedelta(seconds=60)
    assert store.acquire_lease("rotate", "h1", ttl, T0) is not None
    assert store.acquire_lease("rotate", "h2", ttl, T0 + dt.timedelta(seconds=30)) is None
    assert store.acquire_lease("rotate", "h1", ttl, T0 + dt.timedelta(seconds=30)) is not None
    # the holder died: its lease lapses
    lease = store.acquire_lease("rotate", "h2", ttl, T0 + dt.timedelta(seconds=200))
    assert lease is not None and lease.holder == "h2"
    store.release_lease("rotate", "h1")  # not the holder: no effect
    assert store.acquire_lease("rotate", "h3", ttl, T0 + dt.timedelta(seconds=201)) is None
    store.release_lease("rotate", "h2")
    assert store.acquire_lease("rotate", "h3", ttl, T0 + dt.timedelta(seconds=202)) is not None


def test_contract_load_rings_lists_all(store: KeyStore) -> None:
    names = [f"ring-{i:03d}" for i in range(25)]
    for name in names:
        ring, material = _ring(name)
        store.commit(ring, expected_revision=0, materials={1: material})
    assert sorted(r.name for r in store.load_rings()) == names
    assert sorted(store.list_ring_names()) == names


def test_contract_manager_lifecycle(store: KeyStore) -> None:
    clock = keylife.FixedClock(T0)
    m = keylife.KeyManager(store, actor="contract", clock=clock)
    m.create_ring("sig", "ec-p256", "signing")
    first = m.ring("sig").primary()
    clock.advance(dt.timedelta(days=1))
    second = m.rotate("sig")
    assert m.ring("sig").primary().number == second.number == 2
    assert m.ring("sig").version(1).number == 1  # deactivated, still verifies in grace
    result = m.compromise("sig", occurred_at=T0)
    assert result.compromised.state is State.COMPROMISED
    assert m.ring("sig").primary().number == 3
    with pytest.raises(MaterialUnavailableError):
        m.ring("sig").version(2)
    m.destroy("sig", 2, wait=dt.timedelta(0))  # compromised: destroyed without a wait
    assert not store.has_material("sig", 2)
    assert m.ring("sig").version(1).public_key() == first.key.public_key()
    states = [v.state for v in m.ring("sig").history()]
    assert states == [State.DEACTIVATED, State.DESTROYED_COMPROMISED, State.ACTIVE]
    assert m.verify_audit().ok


def test_contract_lease_takeover(store: KeyStore) -> None:
    ttl = dt.timedelta(seconds=600)
    assert store.read_lease("rotate") is None
    assert store.acquire_lease("rotate", "dead", ttl, T0) is not None
    lease = store.read_lease("rotate")
    assert lease is not None and lease.holder == "dead" and lease.expires == T0 + ttl
    later = T0 + dt.timedelta(seconds=1)
    assert store.acquire_lease("rotate", "new", ttl, later, takeover_from="someone-else") is None
    assert store.acquire_lease("rotate", "new", ttl, later, takeover_from="dead") is not None
    lease = store.read_lease("rotate")
    assert lease is not None and lease.holder == "new"


def _destroyed(store: KeyStore, name: str) -> Ring:
    """Ring ``name`` created and its only version destroyed (material erased)."""
    ring, material = _ring(name)
    saved = store.commit(ring, expected_revision=0, materials={1: material})
    gone = replace(saved.versions[0], state=State.DESTROYED, destroy_date=T0)
    return store.commit(saved.replace_version(gone), expected_revision=saved.revision, destroy=[1])


def test_contract_delete_ring(store: KeyStore) -> None:
    """Issue 11 item 5: a deleted ring is gone from every listing, its record is in the audit
    log, and its name is never created again (no version number is issued twice)."""
    saved = _destroyed(store, "old")
    keep, keep_material = _ring("keep")
    store.commit(keep, expected_revision=0, materials={1: keep_material})
    record = AuditEntry(T0, "alice", "delete", "old", reason="decommissioned")
    store.delete_ring("old", expected_revision=saved.revision, audit=[record])
    assert store.load_ring("old") is None
    assert store.list_ring_names() == ["keep"]
    assert [r.name for r in store.load_rings()] == ["keep"]
    assert [(r.action, r.ring, r.reason) for r in store.read_audit()] == [
        ("delete", "old", "decommissioned")
    ]
    assert verify_chain(store.read_audit()).ok
    again, again_material = _ring("old")
    with pytest.raises(RingDeletedError, match=r"'old' was deleted.*never reused"):
        store.commit(again, expected_revision=0, materials={1: again_material})
    assert store.load_ring("old") is None and not store.has_material("old", 1)
    # the last ring goes too: an empty store is not taken for a lost one
    kept = store.load_ring("keep")
    assert kept is not None
    gone = replace(kept.versions[0], state=State.DESTROYED, destroy_date=T0)
    kept = store.commit(kept.replace_version(gone), expected_revision=kept.revision, destroy=[1])
    store.delete_ring("keep", expected_revision=kept.revision)
    assert store.list_ring_names() == [] and store.load_rings() == []


def test_contract_delete_ring_refusals(store: KeyStore) -> None:
    with pytest.raises(NotFoundError):
        store.delete_ring("nothing", expected_revision=1)
    saved = _destroyed(store, "old")
    with pytest.raises(ConflictError):  # a stale writer loses, and nothing is written
        store.delete_ring(
            "old", expected_revision=saved.revision - 1, audit=[AuditEntry(T0, "t", "delete")]
        )
    assert store.load_ring("old") is not None and store.read_audit() == []
    live, material = _ring("live")
    live = store.commit(live, expected_revision=0, materials={1: material})
    with pytest.raises(RingNotEmptyError, match="v1") as err:  # the store checks too
        store.delete_ring("live", expected_revision=live.revision)
    assert err.value.versions == (1,)
    assert store.get_material("live", 1, live.spec) == material


def test_contract_manager_delete_ring(store: KeyStore) -> None:
    clock = keylife.FixedClock(T0)
    m = keylife.KeyManager(store, actor="contract", clock=clock)
    m.create_ring("orders", "aes-256", "data-encryption")
    clock.advance(dt.timedelta(days=1))
    m.rotate("orders")
    with pytest.raises(RingNotEmptyError) as err:
        m.delete_ring("orders", reason="service gone")
    message = str(err.value)
    assert err.value.versions == (1, 2) and "v1 (deactivated), v2 (active)" in message
    assert "keylife key destroy orders N" in message
    assert m.load("orders").revision > 0  # untouched
    m.deactivate("orders", 2)
    for n in (1, 2):
        m.destroy("orders", n)  # scheduled: carried out by the planner a destroy_wait later
    clock.advance(m.policy.destroy_wait)
    assert keylife.rotation.run(m, rings=["orders"]).ok
    m.delete_ring("orders", reason="service gone")
    with pytest.raises(NotFoundError):
        m.load("orders")
    records = m.audit_records("orders")
    assert records[-1].action == "delete" and records[-1].reason == "service gone"
    assert (records[0].action, records[0].version) == ("create", 1)  # its history stays
    assert "failure" in next(r.outcome for r in records if r.action == "delete")
    assert m.verify_audit().ok
    assert check_state(store.read_audit(), store.load_rings()) == []  # recorded, not vanished
    with pytest.raises(RingDeletedError):
        m.create_ring("orders", "aes-256", "data-encryption")
    assert keylife.rotation.run(m.at(keylife.FixedClock(T0 + dt.timedelta(days=800)))).ok
    assert store.load_ring("orders") is None  # rotation never brings it back


def test_contract_encryption_counts_add_up(store: KeyStore) -> None:
    assert store.encryption_counts("a") == {}
    totals = store.add_encryptions({("a", 1): 3, ("a", 2): 4, ("b", 1): 1})
    assert totals == {("a", 1): 3, ("a", 2): 4, ("b", 1): 1}
    assert store.add_encryptions({("a", 1): 5}) == {("a", 1): 8}
    assert store.encryption_counts("a") == {1: 8, 2: 4}
    assert store.encryption_counts("b") == {1: 1}
    assert store.encryption_counts("c") == {}
    big = 1 << 40  # past 2**32: counts are not 32-bit
    assert store.add_encryptions({("b", 1): big}) == {("b", 1): big + 1}


def test_contract_encryption_counts_concurrent_adds(store: KeyStore) -> None:
    """Two writers adding at once lose nothing (a transaction on SQLite, check-and-set
    retries on Vault)."""
    import threading

    def add(n: int) -> None:
        for _ in range(6):
            store.add_encryptions({("r", 1): n, ("r", 2): 1})

    threads = [threading.Thread(target=add, args=(n,)) for n in (1, 100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert store.encryption_counts("r") == {1: 606, 2: 12}
