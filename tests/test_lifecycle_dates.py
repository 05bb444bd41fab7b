"""Protect-stop and process-start dates: protection and processing periods apart."""

from __future__ import annotations

import datetime as dt

import pytest

import keylife
from keylife.rotation import run
from keylife.store.sqlite import SqliteStore

T0 = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def test_protect_stop_ends_protection_before_deactivation(sqlite_store: SqliteStore) -> None:
    clock = keylife.FixedClock(T0)
    m = keylife.KeyManager(sqlite_store, clock=clock)
    v = m.create_ring(
        "db",
        "aes-256",
        "data-encryption",
        deactivate_at=T0 + 100 * DAY,
        protect_stop_at=T0 + 30 * DAY,
        process_start_at=T0,
    )
    assert v.protect_stop == T0 + 30 * DAY and v.process_start == T0
    assert m.ring("db").primary().number == 1
    clock.advance(31 * DAY)
    with pytest.raises(keylife.MaterialUnavailableError):
        m.ring("db").primary()  # may no longer encrypt ...
    assert m.ring("db").version(1).number == 1  # ... but still decrypts


def test_protect_stop_outside_the_active_period_is_refused(sqlite_store: SqliteStore) -> None:
    m = keylife.KeyManager(sqlite_store, clock=keylife.FixedClock(T0))
    with pytest.raises(keylife.LifecycleError, match="protect-stop"):
        m.create_ring(
            "db", "aes-256", "data-encryption", deactivate_at=T0 + DAY, protect_stop_at=T0 + 9 * DAY
        )
    assert sqlite_store.list_ring_names() == []


def test_rotation_is_due_lead_time_before_protect_stop(sqlite_store: SqliteStore) -> None:
    from keylife.rotation import StepKind, plan_rotation

    m = keylife.KeyManager(sqlite_store, clock=keylife.FixedClock(T0))
    m.create_ring(
        "db",
        "aes-256",
        "data-encryption",
        deactivate_at=T0 + 300 * DAY,
        protect_stop_at=T0 + 60 * DAY,
    )
    lead = m.policy.rules(keylife.Purpose.DATA_ENCRYPTION).lead_time
    assert not plan_rotation(m.rings(), m.policy, T0 + 60 * DAY - lead - DAY)
    plan = plan_rotation(m.rings(), m.policy, T0 + 60 * DAY - lead)
    assert [s.kind for s in plan.steps] == [StepKind.ROTATE]


def test_revoking_a_deactivated_version_records_the_reason(sqlite_store: SqliteStore) -> None:
    m = keylife.KeyManager(sqlite_store, clock=keylife.FixedClock(T0))
    m.create_ring("db", "aes-256", "data-encryption")
    m.deactivate("db", 1)
    v = m.revoke("db", 1, "superseded", message="moved to KMS")
    assert v.state is keylife.State.DEACTIVATED
    assert v.revocation_reason is keylife.RevocationReason.SUPERSEDED
    assert m.load("db").get(1).revocation_message == "moved to KMS"  # type: ignore[union-attr]
    assert [a.action for a in m.audit_records("db")][-1] == "revoke"
    m.destroy("db", 1)  # scheduled: still deactivated, the reason can still be recorded
    assert m.load("db").get(1).state is keylife.State.DEACTIVATED  # type: ignore[union-attr]
    run(m, now=T0 + m.policy.destroy_wait)  # carried out when due
    with pytest.raises(keylife.InvalidTransitionError):
        m.revoke("db", 1, "superseded")
