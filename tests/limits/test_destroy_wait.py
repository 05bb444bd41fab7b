"""Issue 11, item 6: destruction waits, as in cloud KMSs. ``destroy`` schedules it
``policy.destroy_wait`` later (a compromised version may go sooner), ``cancel-destroy`` undoes
it, the two-person rule waits for a second actor's ``approve``, and ``keylife rotate`` carries
it out when due. Until then the material stays readable and the version is never put into use.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keylife_cli.main import cli

import keylife
from keylife.destruction import SCHEDULE, held, pending, read_schedule
from keylife.errors import CorruptRecordError, DestroyScheduleError, PolicyError
from keylife.lifecycle import Action, KeyVersion, State, new_version
from keylife.policy import default_policy, load_policy, policy_from_dict
from keylife.rotation import run
from keylife.rotation.plan import plan_ring

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
WAIT = 7 * DAY  # the default destroy_wait


@pytest.fixture
def store(tmp_path: Path) -> Iterator[keylife.KeyManager]:
    with keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk") as manager:
        yield manager


@pytest.fixture
def m(store: keylife.KeyManager) -> keylife.KeyManager:
    return keylife.KeyManager(store.store, actor="alice", clock=keylife.FixedClock(T0))


def two_person(m: keylife.KeyManager, actor: str) -> keylife.KeyManager:
    policy = replace(m.policy, destroy_requires_second_actor=True)
    return keylife.KeyManager(m.store, policy=policy, actor=actor, clock=m.clock)


def version(m: keylife.KeyManager, ring: str, number: int) -> KeyVersion:
    v = m.load(ring).get(number)
    assert v is not None
    return v


def test_destroy_schedules_and_rotate_carries_it_out_when_due(m: keylife.KeyManager) -> None:
    m.create_ring("orders", purpose="data-encryption")
    box = m.ring("orders").encrypt(b"card 4111", b"order-1")
    m.rotate("orders")
    v = m.destroy("orders", 1, reason="no data left under v1")
    assert v.state is State.DEACTIVATED and v.has_material  # nothing erased yet
    schedule = pending(v)
    assert schedule is not None and schedule.due == T0 + WAIT
    assert (schedule.requested_by, schedule.reason) == ("alice", "no data left under v1")
    assert schedule.identity  # who the store authenticated, beside the claimed actor
    # the material stays readable for processing until the destruction is carried out
    assert m.ring("orders").decrypt(box, b"order-1") == b"card 4111"
    assert m.store.has_material("orders", 1)
    record = m.audit_records("orders")[-1]
    assert (record.action, record.version, record.actor) == ("schedule-destroy", 1, "alice")
    assert f"due {(T0 + WAIT).isoformat()}" in record.reason

    assert run(m, now=T0 + WAIT - dt.timedelta(seconds=1)).ok  # not yet
    assert m.store.has_material("orders", 1)
    planned = run(m, now=T0 + WAIT, dry_run=True)
    [step] = planned.rings[0].steps
    assert (step.kind, step.version) == ("destroy", 1)
    assert (T0 + WAIT).isoformat() in step.message and "alice" in step.message  # with its date

    assert run(m, now=T0 + WAIT).ok
    gone = version(m, "orders", 1)
    assert gone.state is State.DESTROYED and gone.destroy_date == T0 + WAIT
    assert not m.store.has_material("orders", 1)
    assert read_schedule(gone) == schedule  # the request stays on record
    assert not held(gone)


def test_a_wait_below_the_policy_is_refused_unless_compromised(m: keylife.KeyManager) -> None:
    m.create_ring("orders", purpose="data-encryption")
    m.rotate("orders")
    with pytest.raises(DestroyScheduleError, match="at least 7d") as info:
        m.destroy("orders", 1, wait=DAY)
    assert (info.value.ring, info.value.version) == ("orders", 1)
    with pytest.raises(DestroyScheduleError, match="at least 7d"):
        m.destroy("orders", 1, wait=dt.timedelta(0))
    assert not held(version(m, "orders", 1))
    assert m.audit_records("orders")[-1].outcome.startswith("failure")
    # a longer wait is fine
    assert pending(m.destroy("orders", 1, wait=30 * DAY)).due == T0 + 30 * DAY  # type: ignore[union-attr]

    m.create_ring("leaked", purpose="data-encryption")
    m.compromise("leaked")
    soon = m.destroy("leaked", 1, wait=2 * DAY)  # compromised: may go sooner
    assert pending(soon).due == T0 + 2 * DAY  # type: ignore[union-attr]
    m.cancel_destroy("leaked", 1)
    now = m.destroy("leaked", 1, wait=dt.timedelta(0))  # due at once: carried out at once
    assert now.state is State.DESTROYED_COMPROMISED
    assert not m.store.has_material("leaked", 1)
    actions = [r.action for r in m.audit_records("leaked")][-2:]
    assert actions == ["schedule-destroy", "destroy"]


def test_a_scheduled_version_is_never_activated(m: keylife.KeyManager) -> None:
    m.create_ring("later", purpose="data-encryption", activate_at=T0 + 3 * DAY)
    m.destroy("later", 1)
    with pytest.raises(DestroyScheduleError, match="cancel-destroy later 1"):
        m.activate("later", 1)
    # nor by the planner when its activation date comes
    report = run(m, now=T0 + 3 * DAY, dry_run=True)
    assert ("activate", 1) not in [(s.kind, s.version) for r in report.rings for s in r.steps]
    m.cancel_destroy("later", 1, reason="wrong ring")
    assert m.activate("later", 1).state is State.ACTIVE


def test_cancel_restores_and_cancelling_nothing_is_refused(m: keylife.KeyManager) -> None:
    m.create_ring("orders", purpose="data-encryption")
    m.rotate("orders")
    with pytest.raises(DestroyScheduleError, match="nothing to cancel"):
        m.cancel_destroy("orders", 1)
    before = version(m, "orders", 1)
    m.destroy("orders", 1)
    with pytest.raises(DestroyScheduleError, match="already scheduled"):
        m.destroy("orders", 1)
    after = m.cancel_destroy("orders", 1, reason="still needed")
    assert after == before and SCHEDULE not in after.attributes
    record = m.audit_records("orders")[-1]
    assert (record.action, record.version) == ("cancel-destroy", 1)
    assert "still needed" in record.reason
    assert run(m, now=T0 + 2 * WAIT).ok
    assert version(m, "orders", 1).state is State.DEACTIVATED  # never destroyed


def test_nothing_destroys_before_it_is_due(m: keylife.KeyManager) -> None:
    """The carrying-out path (the runner's) refuses a destruction the planner would not do."""
    m.create_ring("orders", purpose="data-encryption")
    m.rotate("orders")
    with pytest.raises(DestroyScheduleError, match="not due for destruction"):
        m.transition("orders", 1, Action.DESTROY, reason="now", if_needed=True)
    m.destroy("orders", 1)
    with pytest.raises(DestroyScheduleError, match="not due for destruction"):
        m.transition("orders", 1, Action.DESTROY, reason="now", if_needed=True)
    assert m.store.has_material("orders", 1)


def test_two_person_rule(m: keylife.KeyManager) -> None:
    alice, bob = two_person(m, "alice"), two_person(m, "bob")
    alice.create_ring("orders", purpose="data-encryption")
    alice.rotate("orders")
    with pytest.raises(DestroyScheduleError, match="nothing to approve"):
        bob.approve_destroy("orders", 1)
    alice.destroy("orders", 1)
    with pytest.raises(DestroyScheduleError, match="requested by alice") as info:
        alice.approve_destroy("orders", 1)
    assert info.value.requester == "alice"
    # due but not approved: the run leaves it (and says nothing is due)
    assert run(alice, now=T0 + WAIT).ok
    assert version(m, "orders", 1).has_material
    approved = bob.approve_destroy("orders", 1, reason="checked: no data left")
    [approval] = pending(approved).approvals  # type: ignore[union-attr]
    assert approval.actor == "bob" and approval.identity == bob.identity and approval.at == T0
    with pytest.raises(DestroyScheduleError, match="already approved"):
        bob.approve_destroy("orders", 1)
    record = m.audit_records("orders")[-1]
    assert (record.action, record.actor) == ("approve-destroy", "bob")
    assert run(alice, now=T0 + WAIT).ok
    assert version(m, "orders", 1).state is State.DESTROYED

    # even a compromised version waits for the second actor
    alice.create_ring("leaked", purpose="data-encryption")
    alice.compromise("leaked")
    assert alice.destroy("leaked", 1, wait=dt.timedelta(0)).has_material
    bob.approve_destroy("leaked", 1)
    assert run(alice).ok
    assert version(m, "leaked", 1).state is State.DESTROYED_COMPROMISED


def test_retention_destruction_is_policy_approved(m: keylife.KeyManager) -> None:
    """The policy's destroy_after needs neither the wait nor a second actor (docs/policy.md)."""
    strict = two_person(m, "alice")
    strict.create_ring("web", purpose="tls-server")  # destroy_after 30d, grace 0
    strict.rotate("web")
    assert run(strict, now=T0 + 30 * DAY).ok
    assert version(m, "web", 1).state is State.DESTROYED


def test_the_last_key_destroyed_retires_the_ring_when_carried_out(m: keylife.KeyManager) -> None:
    m.create_ring("gone", purpose="data-encryption")
    m.deactivate("gone", 1)
    m.destroy("gone", 1)
    assert "retired" not in m.load("gone").attributes
    assert run(m, now=T0 + WAIT).ok
    assert "retired" in m.load("gone").attributes
    assert [v.number for v in m.load("gone").versions] == [1]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('destroy_wait = "12h"', "below the minimum of 1d"),
        ('destroy_wait = "0s"', "cancelled"),
        ('destroy_wait = "soon"', "expected a duration"),
        ("destroy_wait = 7", "expected a duration"),
        ('destroy_requires_second_actor = "yes"', "must be true or false"),
        ('destroy_later = "7d"', "allowed keys: profile, min_strength, audit_reads, destroy_wait"),
    ],
)
def test_policy_settings_are_checked(tmp_path: Path, setting: str, message: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(f"[policy]\n{setting}\n")
    with pytest.raises(PolicyError, match=message) as info:
        load_policy(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_policy_settings_load_and_show(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[policy]\ndestroy_wait = "1d"\ndestroy_requires_second_actor = true\n')
    policy = load_policy(path)
    assert policy.destroy_wait == DAY and policy.destroy_requires_second_actor
    assert policy_from_dict({}).destroy_wait == WAIT
    shown = CliRunner().invoke(cli, ["--policy", str(path), "policy", "show"])
    assert shown.exit_code == 0, shown.output
    assert "destroy wait 1d after a second actor's approval" in shown.output
    as_json = json.loads(
        CliRunner().invoke(cli, ["--json", "--policy", str(path), "policy", "show"]).stdout
    )
    assert as_json["destroy_wait"] == "1d" and as_json["destroy_requires_second_actor"] is True


def test_cli(tmp_path: Path) -> None:
    env = {"KEYLIFE_STORE": str(tmp_path / "c.db"), "KEYLIFE_MASTER_KEY_FILE": str(tmp_path / "m")}
    invoke = CliRunner(env=env).invoke

    def ok(*args: str) -> Any:
        result = invoke(cli, list(args))
        assert result.exit_code == 0, (args, result.output)
        return result

    def refused(code: int, *args: str) -> str:
        result = invoke(cli, list(args))
        assert result.exit_code == code, (args, result.output)
        return str(result.output)

    ok("init")
    ok("key", "create", "orders", "--purpose", "data-encryption")
    ok("key", "rotate", "orders")
    assert "at least 7d" in refused(1, "key", "destroy", "orders", "1", "--wait", "1d")
    assert "--wait" in refused(2, "key", "destroy", "orders", "1", "--wait", "soon")
    assert "nothing to cancel" in refused(1, "key", "cancel-destroy", "orders", "1")
    text = ok("--actor", "alice", "key", "destroy", "orders", "1", "--reason", "done").output
    assert "destruction scheduled for" in text and "cancel-destroy orders 1" in text
    shown = json.loads(ok("--json", "key", "show", "orders", "--version", "1").stdout)
    [detail] = shown["details"]
    assert detail["state"] == "deactivated"
    assert detail["destroy_scheduled"]["requested_by"] == "alice"
    due = detail["destroy_scheduled"]["due"]
    assert shown["destroy_scheduled"] == {"1": due}
    assert "scheduled     destruction " + due in ok("key", "show", "orders").output
    assert "v1 scheduled for destruction " + due[:10] in ok("key", "list").output
    listed = json.loads(ok("--json", "key", "list").stdout)["rings"][0]
    assert listed["destroy_scheduled"] == {"1": due}
    assert "requested by alice" in refused(1, "--actor", "alice", "key", "approve", "orders", "1")
    approved = json.loads(ok("--json", "--actor", "bob", "key", "approve", "orders", "1").stdout)
    assert approved["destroy_scheduled"]["approvals"][0]["actor"] == "bob"
    # the dry run shows the destruction with its date once it is due
    later = (dt.datetime.fromisoformat(due) + DAY).isoformat()
    plan = ok("rotate", "--dry-run", "--as-of", later).output
    assert "destroy" in plan and due in plan
    ok("key", "cancel-destroy", "orders", "1")
    assert json.loads(ok("--json", "key", "show", "orders").stdout)["destroy_scheduled"] == {}
    # a scheduled pre-active version cannot be activated
    ok("key", "create", "later", "--purpose", "data-encryption", "--activate-at", later)
    ok("key", "destroy", "later", "1")
    assert "cancel-destroy later 1" in refused(1, "key", "activate", "later", "1")
    actions = [r["action"] for r in json.loads(ok("--json", "audit", "show").stdout)["records"]]
    for action in ("schedule-destroy", "approve-destroy", "cancel-destroy"):
        assert action in actions


# ---- the stored schedule is outside input -----------------------------------------------

TEXT = st.text(max_size=30)
DATES = st.one_of(TEXT, st.just(T0.isoformat()), st.integers(), st.none())
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "due": DATES,
        "requested_at": DATES,
        "requested_by": st.one_of(TEXT, st.integers()),
        "identity": st.one_of(TEXT, st.none()),
        "reason": TEXT,
        "approvals": st.one_of(
            st.lists(
                st.one_of(
                    st.fixed_dictionaries(
                        {"actor": TEXT, "identity": TEXT, "at": DATES},
                    ),
                    TEXT,
                ),
                max_size=20,
            ),
            TEXT,
        ),
    },
)
RAW = st.one_of(FIELDS.map(json.dumps), TEXT, st.just("[" * 5000), st.just("{}" * 3000))


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(raw=RAW)
def test_fuzz_a_stored_schedule(raw: str) -> None:
    """A keylife error or a valid schedule, never another exception; the planner never destroys
    on a damaged schedule."""
    ring = keylife.Ring("r", keylife.parse_spec("aes-256"), "data-encryption", T0)
    ring, v = new_version(
        ring, fingerprint="kcv:00", now=T0, actor="a", activation=T0, deactivation=T0 + DAY
    )
    v = replace(v, state=State.DEACTIVATED, attributes={SCHEDULE: raw})
    ring = ring.replace_version(v)
    try:
        schedule = read_schedule(v)
    except CorruptRecordError as exc:
        assert exc.ring == "r" and exc.version == 1
        steps, _ = plan_ring(ring, default_policy(), T0 + 400 * DAY)
        assert not [s for s in steps if s.kind.value == "destroy"]
        return
    assert schedule is not None


def test_a_policy_built_in_code_keeps_the_minimum_wait() -> None:
    """The floor is the policy's, not the file parser's: a Policy made in code cannot set a
    destruction wait below a day either."""
    from keylife.errors import PolicyError
    from keylife.policy import Policy

    with pytest.raises(PolicyError, match="at least 1d"):
        Policy(destroy_wait=dt.timedelta(hours=1))
    assert Policy(destroy_wait=dt.timedelta(days=1)).destroy_wait == dt.timedelta(days=1)
