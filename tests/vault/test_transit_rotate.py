"""`keylife rotate` schedules transit-resident rings too, with the ordinary planner, on a real
OpenBao server, and every change to them leaves an audit record."""

from __future__ import annotations

import datetime as dt

import pytest

import keylife
from keylife.lifecycle import State
from keylife.policy import DAY, DEFAULT_RULES, Policy, Purpose
from keylife.rotation import run
from keylife.rotation.plan import StepKind, plan_ring
from keylife.vault import VaultKeyStore
from tests.vault.conftest import DevServer
from tests.vault.test_transit_keys import key_info, transit_rings

pytestmark = pytest.mark.vault


def _policy(destroy_after: dt.timedelta | None) -> Policy:
    rules = DEFAULT_RULES[Purpose.DATA_ENCRYPTION]
    purposes = dict(DEFAULT_RULES)
    purposes[Purpose.DATA_ENCRYPTION] = type(rules)(
        rules.cryptoperiod, rules.lead_time, rules.grace_period, "aes-256", destroy_after
    )
    return Policy(purposes=purposes)


def test_the_ordinary_planner_plans_transit_rings(vault_store: VaultKeyStore) -> None:
    tk = transit_rings(vault_store)
    created = tk.create("sched").version(1).created
    policy = _policy(30 * DAY)
    rules = policy.rules(Purpose.DATA_ENCRYPTION)
    period, lead = rules.cryptoperiod, rules.lead_time
    ring = tk.load("sched")
    assert ring.get(1).deactivation == created + period  # type: ignore[union-attr]
    assert plan_ring(ring, policy, created + period - lead - DAY)[0] == []
    steps, _ = plan_ring(ring, policy, created + period - lead)
    assert [(s.kind, s.version) for s in steps] == [(StepKind.ROTATE, 1)]
    at = created + DAY
    assert tk.apply("sched", steps[0], at) == 2
    assert tk.apply("sched", steps[0], at) is None  # done already: nothing happens
    ring = tk.load("sched")
    assert [(v.number, v.state) for v in ring.versions] == [
        (1, State.DEACTIVATED),
        (2, State.ACTIVE),
    ]
    steps, _ = plan_ring(ring, policy, at + 30 * DAY)
    assert [(s.kind, s.version) for s in steps] == [(StepKind.DESTROY, 1)]
    assert plan_ring(ring, policy, at)[1] == at + 30 * DAY


def test_rotate_runs_due_transit_rings_and_audits_them(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    transit = mounts[1]
    policy = _policy(DAY)
    rules = policy.rules(Purpose.DATA_ENCRYPTION)
    tk = transit_rings(vault_store, actor="ops")
    start = tk.create("orders").version(1).created

    at = start + rules.cryptoperiod - rules.lead_time + DAY  # v1 is due for rotation
    m = keylife.KeyManager(vault_store, policy=policy, actor="cron", clock=keylife.FixedClock(at))
    dry = run(m, now=at, dry_run=True)
    assert [(r.ring, [s.kind for s in r.steps]) for r in dry.rings] == [
        ("transit:orders", ["rotate"])  # the deactivation follows from the rotation
    ]
    report = run(m, now=at)
    assert report.ok, report.to_dict()
    assert [(s.kind, s.new_version) for s in report.rings[0].steps] == [("rotate", 2)]
    ring = tk.load("orders")
    assert [(v.number, v.state.value) for v in ring.versions] == [
        (1, "deactivated"),
        (2, "active"),
    ]
    info = key_info(vault_env, transit, "kl-orders")
    assert info["min_encryption_version"] == 2 and info["latest_version"] == 2
    assert run(m, now=at).nothing_due

    later = at + 2 * DAY  # past destroy_after: v1 is trimmed from Transit
    m2 = keylife.KeyManager(
        vault_store, policy=policy, actor="cron", clock=keylife.FixedClock(later)
    )
    report = run(m2, now=later)
    assert [s.kind for s in report.rings[0].steps] == ["destroy"]
    assert tk.load("orders").get(1).state is State.DESTROYED  # type: ignore[union-attr]
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


def test_records_of_older_keylife_are_brought_under_the_lifecycle(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    """Older keylife left v1 active after a rotation, and dated nothing by a schedule: the
    newest version took over when it was created, and the next change records that."""
    transit, kv = mounts[1], mounts[0]
    tk = transit_rings(vault_store)
    v1 = tk.create("legacy").version(1).created
    assert vault_env.api("POST", f"{transit}/keys/kl-legacy/rotate")[0] in (200, 204)
    v2 = v1 + DAY
    _status, body = vault_env.api("GET", f"{kv}/data/tk/legacy")
    doc = body["data"]["data"]
    doc["versions"].append({**doc["versions"][0], "number": 2, "created": v2.isoformat()})
    version = body["data"]["metadata"]["version"]
    assert (
        vault_env.api("POST", f"{kv}/data/tk/legacy", {"options": {"cas": version}, "data": doc})[0]
        == 200
    )
    ring = tk.load("legacy")
    assert [(v.state, v.deactivation) for v in ring.versions] == [
        (State.DEACTIVATED, v2),
        (State.ACTIVE, v2 + DEFAULT_RULES[Purpose.DATA_ENCRYPTION].cryptoperiod),
    ]
    tk.rotate("legacy", now=v2 + 2 * DAY)
    records = [
        (r.action, r.version) for r in vault_store.read_audit() if r.ring == "transit:legacy"
    ]
    assert records == [("create", 1), ("rotate", 3), ("deactivate", 2), ("deactivate", 1)]
    assert [v.state.value for v in tk.load("legacy").versions] == [
        "deactivated",
        "deactivated",
        "active",
    ]
    assert key_info(vault_env, transit, "kl-legacy")["min_encryption_version"] == 3
