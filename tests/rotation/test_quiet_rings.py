"""The runner's fast path on large stores (keylife.rotation.schedule): a ring recorded as quiet
is skipped only when the full planner would find nothing due for it.

The properties compare the fast path with the full planner over random rings (any states and
dates, certificate and account rings, retired rings), random policies, random moments and clock
jumps either way, policy changes, and writes the fast path never saw.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keylife
from keylife.certificates import (
    ACME_ACCOUNT,
    ACME_SETTINGS,
    ARI_RETRY_AFTER,
    ARI_WINDOW_END,
    ARI_WINDOW_START,
    CERTIFICATE_PEM,
)
from keylife.changes import RETIRED
from keylife.keygen import fingerprint, generate
from keylife.lifecycle import KeyVersion, Ring, State, ring_to_dict
from keylife.material import KeyMaterial
from keylife.policy import DAY, DEFAULT_RULES, TRANSITION_DATE, Policy, Purpose, PurposeRules
from keylife.ringcache import CachedStore
from keylife.rotation import plan_rotation, run, schedule
from keylife.rotation.plan import plan_ring
from keylife.rotation.runner import Runner
from keylife.rotation.schedule import planner_digest, remember, rings_to_plan
from keylife.specs import parse_spec
from keylife.store import schedule as store_schedule
from keylife.store.sqlite import MasterKeyFile, SqliteStore

T0 = TRANSITION_DATE - dt.timedelta(days=200)  # the strength floor changes within reach
SPECS = {"data-encryption": ("aes-256", "aes-128"), "signing": ("ec-p256", "rsa-2048")}
_MATERIAL: dict[str, KeyMaterial] = {}


def material(spec: str) -> KeyMaterial:
    if spec not in _MATERIAL:
        _MATERIAL[spec] = generate(parse_spec(spec))
    return _MATERIAL[spec]


when = st.one_of(st.none(), st.integers(-300, 300).map(lambda d: T0 + d * DAY / 4))
iso = when.map(lambda t: "" if t is None else t.isoformat())


@st.composite
def versions(draw: st.DrawFn, name: str, spec: str, purpose: str, certs: bool) -> KeyVersion:
    attributes: dict[str, str] = {}
    if certs and draw(st.booleans()):
        attributes[CERTIFICATE_PEM] = "-----BEGIN CERTIFICATE-----"
        for key in (ARI_WINDOW_START, ARI_WINDOW_END, ARI_RETRY_AFTER):
            if value := draw(iso):
                attributes[key] = value
    activation = draw(when)
    return KeyVersion(
        ring=name,
        number=0,
        spec=parse_spec(spec),
        purpose=purpose,
        state=draw(st.sampled_from(list(State))),
        fingerprint=fingerprint(material(spec)),
        created=activation or T0,
        activation=activation,
        deactivation=draw(when),
        protect_stop=draw(st.one_of(st.none(), when)),
        attributes=attributes,
    )


@st.composite
def rings(draw: st.DrawFn, name: str = "r") -> Ring:
    purpose = draw(st.sampled_from(sorted(SPECS)))
    spec = draw(st.sampled_from(SPECS[purpose]))
    kind = draw(st.sampled_from(["plain", "plain", "certificate", "account"]))
    attributes = {ACME_SETTINGS: "{}"} if kind == "certificate" else {}
    if kind == "account":
        attributes[ACME_ACCOUNT] = "{}"
    if draw(st.integers(0, 5)) == 0:
        attributes[RETIRED] = "test"
    made = draw(st.lists(versions(name, spec, purpose, kind == "certificate"), max_size=4))
    numbered = tuple(replace(v, number=i + 1) for i, v in enumerate(made))
    return Ring(name, parse_spec(spec), purpose, T0, numbered, len(numbered) + 1, attributes)


@st.composite
def usual_rings(draw: st.DrawFn) -> Ring:
    """A ring as keylife leaves it: an active primary, maybe a staged successor."""
    purpose = draw(st.sampled_from(sorted(SPECS)))
    spec = parse_spec(draw(st.sampled_from(SPECS[purpose])))
    start = T0 + draw(st.integers(-100, 0)) * DAY
    end = start + draw(st.integers(1, 200)) * DAY
    v1 = KeyVersion(
        "r", 1, spec, purpose, State.ACTIVE, fingerprint(material(spec.name)), start, start, end
    )
    made = [v1]
    if draw(st.booleans()):
        at = end - draw(st.integers(0, 10)) * DAY
        made.append(
            replace(v1, number=2, state=State.PRE_ACTIVE, activation=at, deactivation=at + 90 * DAY)
        )
    return Ring("r", spec, purpose, T0, tuple(made), len(made) + 1)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    purposes = dict(DEFAULT_RULES)
    for purpose in (Purpose.DATA_ENCRYPTION, Purpose.SIGNING):
        period = draw(st.integers(3, 120))
        lead = draw(st.integers(1, period - 1))
        destroy = draw(st.one_of(st.none(), st.integers(0, 30)))
        stage = draw(st.one_of(st.none(), st.integers(0, lead - 1)))
        purposes[purpose] = PurposeRules(
            period * DAY,
            lead * DAY,
            draw(st.integers(0, 60)) * DAY,
            SPECS[purpose.value][0],
            destroy_after=None if destroy is None else destroy * DAY,
            stage=None if stage is None else stage * DAY,
        )
    return Policy(purposes=purposes)


@st.composite
def policy_pairs(draw: st.DrawFn) -> tuple[Policy, Policy]:
    """The policy a record was made under and the one in force later: the same, another, or
    the same with longer lead times (rings quiet before fall due at once)."""
    first = draw(policies())
    change = draw(st.sampled_from(["same", "other", "longer"]))
    if change == "same":
        return first, first
    if change == "other":
        return first, draw(policies())
    purposes = dict(first.purposes)
    for purpose in (Purpose.DATA_ENCRYPTION, Purpose.SIGNING):
        rules = purposes[purpose]
        lead = rules.lead_time + draw(st.integers(1, 100)) * DAY
        purposes[purpose] = replace(
            rules, cryptoperiod=max(rules.cryptoperiod, lead + DAY), lead_time=lead
        )
    return first, Policy(purposes=purposes)


moments = st.integers(-200 * 24, 500 * 24).map(lambda h: T0 + h * dt.timedelta(hours=1))
FAST = settings(max_examples=400, deadline=None)
STORE = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FAST
@given(
    ring=rings(),
    policy=policies(),
    t0=moments,
    shares=st.lists(st.floats(0, 1, exclude_max=True), max_size=4),
)
def test_nothing_falls_due_before_the_planners_next_event(
    ring: Ring, policy: Policy, t0: dt.datetime, shares: list[float]
) -> None:
    """The property the fast path rests on: nothing due at t0 and next event N means nothing
    due anywhere in [t0, N) (N None: ever, checked up to several years on)."""
    steps, nxt = plan_ring(ring, policy, t0)
    if steps:
        return
    end = nxt or t0 + dt.timedelta(days=3000)
    last = end - dt.timedelta(microseconds=1)
    for t in [min(t0 + (end - t0) * share, last) for share in shares] + [last]:
        assert plan_ring(ring, policy, t)[0] == [], (ring_to_dict(ring), t0, nxt, t)


def test_a_future_activation_and_the_strength_floor_are_events() -> None:
    """Two dates the planner's next event once missed: an active version not yet in its
    active period (written by a run with a clock ahead), and 2031-01-01 for a 112-bit key."""
    ahead = Ring(
        "r",
        parse_spec("aes-256"),
        "data-encryption",
        T0,
        (
            KeyVersion(
                "r",
                1,
                parse_spec("aes-256"),
                "data-encryption",
                State.ACTIVE,
                "f",
                T0,
                activation=T0 + DAY,
                deactivation=T0 + 10 * DAY,
            ),
        ),
        2,
    )
    assert plan_ring(ahead, Policy(), T0) == ([], T0 + DAY)
    assert plan_ring(ahead, Policy(), T0 + DAY)[0]  # within lead time once it protects
    weak = replace(ahead, spec=parse_spec("rsa-2048"), purpose="signing")
    weak = replace(
        weak,
        versions=(
            replace(
                weak.versions[0],
                spec=weak.spec,
                purpose="signing",
                activation=T0,
                deactivation=TRANSITION_DATE + 400 * DAY,
            ),
        ),
    )
    assert plan_ring(weak, Policy(), T0) == ([], TRANSITION_DATE)
    assert plan_ring(weak, Policy(), TRANSITION_DATE)[0]


# ---- the store's records --------------------------------------------------------------------


@contextmanager
def fresh_store() -> Iterator[SqliteStore]:
    d = Path(tempfile.mkdtemp(prefix="kl-quiet-"))
    store = SqliteStore.init(d / "k.db", MasterKeyFile(d / "mk"))
    try:
        yield store
    finally:
        store.close()
        while _RAW:
            _RAW.pop().close()
        shutil.rmtree(d, ignore_errors=True)


#: Connections :func:`raw` opened, closed when the store's block ends.
_RAW: list[sqlite3.Connection] = []


def seed(store: SqliteStore, ring: Ring) -> Ring:
    kept = {v.number: material(ring.spec.name) for v in ring.versions if v.has_material}
    return store.commit(ring, expected_revision=0, materials=kept)


def manager(store: SqliteStore, policy: Policy, at: dt.datetime) -> keylife.KeyManager:
    return keylife.KeyManager(store, policy=policy, actor="t", clock=keylife.FixedClock(at))


def fast_plan(store: SqliteStore, policy: Policy, at: dt.datetime) -> Any:
    return Runner(manager(store, policy, at)).plan(at)[0]


@STORE
@given(
    found=st.lists(st.one_of(rings(), usual_rings()), min_size=1, max_size=6),
    pair=policy_pairs(),
    t0=moments,
    hours=st.one_of(st.integers(0, 10 * 24), st.integers(-2000, 2000)),
)
def test_the_fast_path_plans_exactly_what_the_full_planner_plans(
    found: list[Ring], pair: tuple[Policy, Policy], t0: dt.datetime, hours: int
) -> None:
    """Record at t0 under one policy (through a real run's health check), then plan at t1
    (before or after t0) under the same or another policy: the steps equal the full plan's."""
    first, policy = pair
    t1 = t0 + dt.timedelta(hours=hours)
    with fresh_store() as store, pytest.MonkeyPatch.context() as patch:
        patch.setattr(schedule, "RECHECK_AFTER", dt.timedelta(days=5000))  # records stay valid
        patch.setattr(store_schedule, "PLAN_PAGE", 2)  # several pages: each planned apart
        for i, ring in enumerate(found):
            seed(
                store,
                replace(
                    ring,
                    name=f"r{i}",
                    versions=tuple(replace(v, ring=f"r{i}") for v in ring.versions),
                ),
            )
        run(manager(store, first, t0), now=t0)  # applies what is due, records the quiet
        full = plan_rotation(store.load_rings(), policy, t1)
        fast = fast_plan(store, policy, t1)
        assert fast.steps == full.steps
        assert set(fast.next_due) == set(full.next_due)


def _record(store: SqliteStore, policy: Policy, at: dt.datetime) -> None:
    rings_ = store.load_rings()
    remember(store, policy, at, rings_, plan_rotation(rings_, policy, at), {})


def one_version_ring(name: str, deactivation: dt.datetime) -> Ring:
    """An AES data-encryption ring whose one version is active from T0 to ``deactivation``."""
    spec = parse_spec("aes-256")
    version = KeyVersion(
        name,
        1,
        spec,
        "data-encryption",
        State.ACTIVE,
        fingerprint(material("aes-256")),
        T0,
        activation=T0,
        deactivation=deactivation,
    )
    return Ring(name, spec, "data-encryption", T0, (version,), 2)


def quiet_store(store: SqliteStore, count: int = 5) -> None:
    for i in range(count):
        seed(store, one_version_ring(f"q{i}", T0 + 300 * DAY))


def test_a_quiet_store_is_not_loaded_and_every_ring_still_counts() -> None:
    with fresh_store() as store:
        quiet_store(store, 40)
        m = manager(store, Policy(), T0 + DAY)
        first = run(m, now=T0 + DAY)
        assert first.nothing_due and first.rings_checked == 40
        found = rings_to_plan(store, Policy(), T0 + DAY + DAY / 4)
        assert found is not None and found.rings == [] and len(found.quiet) == 40
        loads: list[str] = []
        store.load_rings = lambda: loads.append("all") or []  # type: ignore[method-assign]
        second = run(m, now=T0 + DAY + DAY / 4)
        assert second.nothing_due and second.rings_checked == 40 and loads == []
        # the next events of the rings not loaded are still reported (metrics)
        expected = T0 + 286 * DAY
        assert second.next_due == {f"q{i}": expected for i in range(40)}


def test_a_policy_change_plans_every_ring_afresh() -> None:
    with fresh_store() as store:
        quiet_store(store)
        _record(store, Policy(), T0)
        rules = replace(DEFAULT_RULES[Purpose.DATA_ENCRYPTION], lead_time=300 * DAY)
        longer = Policy(purposes={**DEFAULT_RULES, Purpose.DATA_ENCRYPTION: rules})
        assert len(fast_plan(store, longer, T0 + DAY / 4).rings) == 5
        assert fast_plan(store, Policy(), T0 + DAY / 4).rings == []
        assert planner_digest(longer) != planner_digest(Policy())
        assert planner_digest(replace(Policy(), source="elsewhere")) == planner_digest(Policy())


def test_a_clock_that_went_back_plans_every_ring_afresh() -> None:
    with fresh_store() as store:
        quiet_store(store)
        _record(store, Policy(), T0 + 10 * DAY)
        found = rings_to_plan(store, Policy(), T0 + 9 * DAY)
        assert found is not None and len(found.rings) == 5 and not found.quiet
        found = rings_to_plan(store, Policy(), T0 + 10 * DAY)
        assert found is not None and not found.rings


def test_records_end_at_the_recheck_horizon() -> None:
    with fresh_store() as store:
        quiet_store(store)
        _record(store, Policy(), T0)
        found = rings_to_plan(store, Policy(), T0 + dt.timedelta(hours=11))
        assert found is not None and not found.rings
        found = rings_to_plan(store, Policy(), T0 + DAY)
        assert found is not None and len(found.rings) == 5


def raw(store: SqliteStore) -> sqlite3.Connection:
    """The database as another program sees it (sqlite3, an older keylife): autocommit. Kept
    open until the store's :func:`fresh_store` block ends (3.13 reports collected ones)."""
    con = sqlite3.connect(store.db_path, isolation_level=None)
    _RAW.append(con)
    return con


def _due_doc(store: SqliteStore, name: str) -> str:
    ring = store.load_ring(name)
    assert ring is not None
    v = replace(ring.versions[0], deactivation=T0 + 2 * DAY)
    return json.dumps(ring_to_dict(replace(ring, versions=(v,))))


def test_writes_the_fast_path_never_saw_void_the_records() -> None:
    """An older keylife (or sqlite3) updating a ring document, its material, or adding a ring:
    the database's triggers void the records, so those rings are planned in full."""
    with fresh_store() as store:
        quiet_store(store)
        _record(store, Policy(), T0)
        db = raw(store)
        # the same revision, a new document: only the trigger can tell
        db.execute("UPDATE rings SET doc=? WHERE name='q1'", (_due_doc(store, "q1"),))
        db.execute("UPDATE material SET blob=x'00' WHERE ring='q2'")
        version = replace(store.load_ring("q0").versions[0], ring="new")  # type: ignore[union-attr]
        doc = ring_to_dict(Ring("new", version.spec, "data-encryption", T0, (version,), 2))
        db.execute("INSERT INTO rings VALUES ('new', 1, ?)", (json.dumps(doc),))
        found = rings_to_plan(store, Policy(), T0 + DAY / 4)
        assert found is not None
        assert sorted(r.name for r in found.rings) == ["new", "q1", "q2"]
        report = run(manager(store, Policy(), T0 + DAY / 4), now=T0 + DAY / 4)
        assert [r.ring for r in report.rings if r.status == "succeeded"] == ["q1"]
        assert report.failed == ["new", "q2"]  # new: no material; q2: its blob does not open


def test_a_store_from_an_older_keylife_gets_its_records_table() -> None:
    with fresh_store() as store:
        quiet_store(store)
        db = raw(store)
        assert db.execute("SELECT name FROM sqlite_master WHERE name='schedule'").fetchone() is None
        found = rings_to_plan(store, Policy(), T0)
        assert found is not None and len(found.rings) == 5
        run(manager(store, Policy(), T0), now=T0)
        found = rings_to_plan(store, Policy(), T0 + DAY / 4)
        assert found is not None and not found.rings


def test_damaged_and_unhealthy_rings_are_never_recorded() -> None:
    with fresh_store() as store:
        quiet_store(store)
        raw(store).execute("UPDATE rings SET doc='{' WHERE name='q3'")
        raw(store).execute("DELETE FROM material WHERE ring='q4'")
        m = manager(store, Policy(), T0)
        for _ in range(2):
            report = run(m, now=T0)
            assert report.failed == ["q3", "q4"]


@pytest.mark.parametrize(("prefix", "limit"), [("", None), ("q1", None), ("q", 3), ("", 0)])
def test_iter_rings_pages_in_name_order(
    prefix: str, limit: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keylife.store import sqlite_schedule
    from keylife.store.schedule import iter_rings

    monkeypatch.setattr(sqlite_schedule, "PAGE", 2)
    with fresh_store() as store:
        quiet_store(store, 13)
        expected = [r.name for r in store.load_rings() if r.name.startswith(prefix)][:limit]
        assert [r.name for r in store.iter_rings(prefix=prefix, limit=limit)] == expected
        assert [r.name for r in iter_rings(store, prefix=prefix, limit=limit)] == expected
        cached = CachedStore(store, 30)  # no paging: the fallback
        assert [r.name for r in iter_rings(cached, prefix=prefix, limit=limit)] == expected


SQL_VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.binary(max_size=8),
)


@settings(max_examples=150, deadline=None)
@given(
    column=st.sampled_from(["revision", "digest", "checked", "until", "next_due"]), value=SQL_VALUES
)
def test_fuzz_a_tampered_record_plans_the_ring_or_is_a_sound_record(
    column: str, value: Any
) -> None:
    """Whatever a record's column holds, reading records gives the ring to plan or a valid
    record's next event (a datetime or None), never another exception."""
    with fresh_store() as store:
        quiet_store(store, 1)
        _record(store, Policy(), T0)
        try:
            raw(store).execute(f"UPDATE schedule SET {column} = ?", (value,))
        except sqlite3.IntegrityError:  # NOT NULL
            return
        found = rings_to_plan(store, Policy(), T0 + dt.timedelta(hours=1))
        assert found is not None
        assert [r.name for r in found.rings] + list(found.quiet) == ["q0"]
        for due in found.quiet.values():
            assert due is None or isinstance(due, dt.datetime)
        if found.quiet:  # only a record of integer times, as written, counts
            kinds = raw(store).execute("SELECT typeof(checked), typeof(until) FROM schedule")
            assert kinds.fetchone() == ("integer", "integer")


@pytest.fixture(autouse=True)
def _close_raw_connections() -> Iterator[None]:
    """Whatever :func:`raw` opened outside a :func:`fresh_store` block closes with the test."""
    yield
    while _RAW:
        _RAW.pop().close()


def test_a_first_run_holds_a_page_of_rings_not_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run over a store with no records plans and checks it a page at a time: no read asks
    for more than a page, the run keeps only the due rings, and every quiet one is recorded."""
    monkeypatch.setattr(store_schedule, "PLAN_PAGE", 3)
    with fresh_store() as store:
        quiet_store(store, 10)
        # deactivation within the lead time at T0 + 1 day: rotation due
        seed(store, one_version_ring("due", T0 + 2 * DAY))
        asked: list[int] = []
        reading = store.rings_to_plan

        def spy(digest: str, now: dt.datetime) -> Any:
            found = reading(digest, now)
            load = found.load
            assert load is not None

            def counted(names: Any) -> list[Ring]:
                asked.append(len(names))
                return load(names)

            return replace(found, load=counted)

        monkeypatch.setattr(store, "rings_to_plan", spy)
        runner = Runner(manager(store, Policy(), T0 + DAY))
        report = runner.run()
        assert report.ok and [r.ring for r in report.rings] == ["due"]
        assert asked and max(asked) <= 3
        assert set(runner._snapshot) <= {"due"}
        found = store.rings_to_plan(planner_digest(Policy()), T0 + DAY)
        assert sorted(found.quiet) == sorted(f"q{i}" for i in range(10))  # "due" was written
