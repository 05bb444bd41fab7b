"""`keylife rotate` schedules transit-resident rings too, on a real OpenBao server, and every
change to them leaves an audit record."""

from __future__ import annotations

import datetime as dt

import pytest

import keylife
from keylife.policy import DAY, DEFAULT_RULES, Policy, Purpose
from keylife.rotation import run
from keylife.store.transit_keys import TransitKeys, plan_transit
from keylife.store.vault import VaultKeyStore
from tests.vault.conftest import DevServer
from tests.vault.test_transit_keys import key_info

pytestmark = pytest.mark.vault


def test_plan_transit_is_pure_and_follows_the_cryptoperiod(vault_store: VaultKeyStore) -> None:
    tk = TransitKeys(vault_store, actor="ops")
    ring = tk.create("sched")
    created = dt.datetime.fromisoformat(ring.version(1).created)
    period, lead = 365 * DAY, 14 * DAY
    assert plan_transit(ring, period, lead, None, created + period - lead - DAY)[0] == []
    steps, _ = plan_transit(ring, period, lead, None, created + period - lead)
    assert [(s.kind, s.version) for s in steps] == [("rotate", 1)]
    ring = tk.rotate("sched")
    steps, _ = plan_transit(ring, period, lead, 30 * DAY, created + DAY)
    assert [(s.kind, s.version) for s in steps] == [("deactivate", 1)]


def test_rotate_runs_due_transit_rings_and_audits_them(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    transit = mounts[1]
    rules = DEFAULT_RULES[Purpose.DATA_ENCRYPTION]
    purposes = dict(DEFAULT_RULES)
    purposes[Purpose.DATA_ENCRYPTION] = type(rules)(
        rules.cryptoperiod, rules.lead_time, rules.grace_period, "aes-256", destroy_after=DAY
    )
    policy = Policy(purposes=purposes)
    tk = TransitKeys(vault_store, actor="ops")
    tk.create("orders")
    start = dt.datetime.fromisoformat(tk.get("orders").version(1).created)

    at = start + rules.cryptoperiod - rules.lead_time + DAY  # v1 is due for rotation
    m = keylife.KeyManager(vault_store, policy=policy, actor="cron", clock=keylife.FixedClock(at))
    dry = run(m, now=at, dry_run=True)
    assert [(r.ring, [s.kind for s in r.steps]) for r in dry.rings] == [
        ("transit:orders", ["rotate"])  # the deactivation follows from the rotation
    ]
    report = run(m, now=at)
    assert report.ok, report.to_dict()
    assert [s.kind for s in report.rings[0].steps] == ["rotate", "deactivate"]
    ring = tk.get("orders")
    assert [(v.number, v.state) for v in ring.versions] == [(1, "deactivated"), (2, "active")]
    info = key_info(vault_env, transit, "kl-orders")
    assert info["min_encryption_version"] == 2 and info["latest_version"] == 2
    assert run(m, now=at).nothing_due

    later = at + 2 * DAY  # past destroy_after: v1 is trimmed from Transit
    m2 = keylife.KeyManager(
        vault_store, policy=policy, actor="cron", clock=keylife.FixedClock(later)
    )
    report = run(m2, now=later)
    assert [s.kind for s in report.rings[0].steps] == ["destroy"]
    assert tk.get("orders").version(1).state == "destroyed"
    assert key_info(vault_env, transit, "kl-orders")["min_decryption_version"] == 2

    records = [r for r in vault_store.read_audit() if r.ring == "transit:orders"]
    assert [(r.action, r.version) for r in records] == [
        ("create", 1),
        ("rotate", 2),
        ("deactivate", 1),
        ("destroy", 1),
    ]
    assert {r.actor for r in records[1:]} == {"cron"} and records[0].actor == "ops"
    assert m.verify_audit().ok
