"""Issue 11, item 6 for transit-resident rings on a real OpenBao server: `destroy` schedules
through the same rules as any ring (policy destroy_wait, compromised sooner, cancel, the
two-person rule), and `keylife rotate` trims the version from Transit when it is due."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from keylife.clock import FixedClock
from keylife.destruction import held, pending
from keylife.errors import DestroyScheduleError
from keylife.manager import KeyManager
from keylife.policy import default_policy
from keylife.rotation import run
from keylife.vault import VaultKeyStore
from tests.vault.conftest import DevServer
from tests.vault.test_transit_keys import key_info

pytestmark = pytest.mark.vault

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
WAIT = dt.timedelta(days=7)


def test_transit_destruction_waits_and_needs_a_second_actor(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    clock = FixedClock(T0)
    policy = replace(default_policy(), destroy_requires_second_actor=True)
    alice = vault_store.transit_rings(actor="alice", clock=clock, policy=policy)
    bob = vault_store.transit_rings(actor="bob", clock=clock, policy=policy)
    alice.create("ledger")
    alice.rotate("ledger")
    alice.rotate("ledger")
    with pytest.raises(DestroyScheduleError, match="at least 7d"):
        alice.destroy("ledger", 2, wait=dt.timedelta(days=1))
    with pytest.raises(DestroyScheduleError, match="nothing to cancel"):
        alice.cancel_destroy("ledger", 2)
    view = alice.destroy("ledger", 2, reason="old invoices rewrapped")
    v2 = view.version(2)
    assert v2.state.value == "deactivated" and held(v2)
    assert pending(v2).due == T0 + WAIT  # type: ignore[union-attr]
    assert pending(alice.load("ledger").get(2)) == pending(v2)  # type: ignore[arg-type]
    assert sorted(key_info(vault_env, mounts[1], "kl-ledger")["keys"]) == ["1", "2", "3"]
    with pytest.raises(DestroyScheduleError, match="requested by alice"):
        alice.approve_destroy("ledger", 2)

    manager = KeyManager(vault_store, actor="cron", clock=clock, policy=policy)
    assert run(manager, now=T0 + WAIT, rings=["transit:ledger"]).ok  # due, not approved
    assert alice.load("ledger").get(2).state.value == "deactivated"  # type: ignore[union-attr]
    approved = bob.approve_destroy("ledger", 2)
    [approval] = pending(approved.version(2)).approvals  # type: ignore[union-attr]
    assert approval.actor == "bob" and approval.identity
    report = run(manager, now=T0 + WAIT, rings=["transit:ledger"])
    assert report.ok and [s.kind for s in report.rings[0].steps] == ["destroy"]
    ring = alice.load("ledger")
    assert [v.state.value for v in ring.versions] == ["destroyed", "destroyed", "active"]
    assert sorted(key_info(vault_env, mounts[1], "kl-ledger")["keys"]) == ["3"]
    actions = [
        (r.action, r.actor)
        for r in manager.audit_records("transit:ledger")
        if "destroy" in r.action
    ]
    assert actions[:2] == [("schedule-destroy", "alice"), ("approve-destroy", "bob")]
    assert ("destroy", "cron") in actions


def test_transit_cancel_and_the_compromised_path(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    clock = FixedClock(T0)
    tk = vault_store.transit_rings(actor="ops", clock=clock)
    tk.create("audit-log")
    tk.rotate("audit-log")
    tk.rotate("audit-log")
    tk.destroy("audit-log", 1)
    back = tk.cancel_destroy("audit-log", 1, reason="still needed")
    assert not held(back.version(1))
    assert run(KeyManager(vault_store, clock=clock), now=T0 + 2 * WAIT).ok
    assert tk.load("audit-log").get(1).state.value == "deactivated"  # type: ignore[union-attr]
    tk.compromise("audit-log", 2)  # trims v1 and v2 from Transit at once
    done = tk.destroy("audit-log", 2, wait=dt.timedelta(0))  # compromised: no wait needed
    assert done.version(2).state.value == "destroyed-compromised"
