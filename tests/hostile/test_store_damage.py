"""Issue 10 item 7: one malformed row in the store fails that ring (or that audit record) only.

Someone with write access to the database (not the master key) changes rows: an unknown
state, invalid JSON, missing keys, wrong types. Listings, backups and ``audit verify`` name the
damaged ring or record; nothing crashes with a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from keylife.audit import decode_audit, verify_chain
from keylife.errors import CorruptRecordError
from keylife.lifecycle import decode_ring
from keylife.policy import default_policy
from keylife.rotation.plan import plan_ring, plan_rotation

from .files_support import Sandbox, one_line_error, sandbox


@pytest.fixture
def kl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    box = sandbox(tmp_path, monkeypatch)
    with box.init(actor="alice") as m:
        m.create_ring("alpha", "ec-p256", "signing")
        m.create_ring("bravo", "aes-256", "data-encryption")
        m.create_ring("charlie", "hmac-sha256", "authentication")
    return box


def _edit_ring(kl: Sandbox, name: str, change) -> None:  # type: ignore[no-untyped-def]
    (doc,) = kl.sql("SELECT doc FROM rings WHERE name=?", (name,))[0]
    kl.sql("UPDATE rings SET doc=? WHERE name=?", (change(json.loads(doc)), name))


def _unknown_state(d: dict) -> str:  # type: ignore[type-arg]
    d["versions"][0]["state"] = "hibernating"
    return json.dumps(d)


DAMAGE = {
    "unknown state": _unknown_state,
    "invalid JSON": lambda d: "{not json",
    "missing key": lambda d: json.dumps({k: v for k, v in d.items() if k != "created"}),
    "wrong type": lambda d: json.dumps({**d, "versions": "v1"}),
    "bad date": lambda d: json.dumps({**d, "created": "9999-99-99"}),
    "naive date": lambda d: json.dumps({**d, "created": "2026-01-01T00:00:00"}),
    "other ring's document": lambda d: json.dumps({**d, "name": "alpha"}),
    "a list": lambda d: "[1, 2]",
    "deep nesting": lambda d: "[" * 100_000,
}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_ring_fails_alone(kl: Sandbox, how: str) -> None:
    _edit_ring(kl, "bravo", DAMAGE[how])
    with kl.open() as m:
        rings = {r.name: r for r in m.store.load_rings()}
        assert set(rings) == {"alpha", "bravo", "charlie"}
        assert rings["bravo"].damage.startswith("ring 'bravo'")
        assert not rings["bravo"].versions
        assert not rings["alpha"].damage and not rings["charlie"].damage
        with pytest.raises(CorruptRecordError) as caught:
            m.store.load_ring("bravo")
        assert caught.value.ring == "bravo"
        assert m.store.load_ring("alpha") is not None
    listing = kl.run("key", "list")
    assert listing.exit_code == 0, listing.stderr
    assert "alpha" in listing.stdout and "charlie" in listing.stdout
    assert "bravo" in listing.stdout and "DAMAGED" in listing.stdout
    doc = json.loads(kl.run("--json", "key", "list").stdout)
    assert [r["name"] for r in doc["rings"] if "damaged" in r] == ["bravo"]
    line = one_line_error(kl.run("key", "show", "bravo"), 1)
    assert "bravo" in line and "damaged" in line


def test_the_damage_names_the_version(kl: Sandbox) -> None:
    _edit_ring(kl, "alpha", _unknown_state)
    with kl.open() as m, pytest.raises(CorruptRecordError) as caught:
        m.store.load_ring("alpha")
    assert (caught.value.ring, caught.value.version) == ("alpha", 1)
    assert "'hibernating'" in str(caught.value) and "v1" in str(caught.value)


def test_the_planner_gives_a_damaged_ring_no_steps() -> None:
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    damaged = decode_ring("{", 3, "broken")
    assert damaged.damage and not damaged.versions and damaged.purpose == ""
    steps, next_due = plan_ring(damaged, default_policy(), now)
    assert steps == [] and next_due is None
    assert not plan_rotation([damaged], default_policy(), now).steps


def test_a_backup_of_a_damaged_store_is_refused_by_name(kl: Sandbox, tmp_path: Path) -> None:
    _edit_ring(kl, "bravo", _unknown_state)
    archive = tmp_path / "keylife.klb"
    result = kl.run("backup", str(archive), "--passphrase-file", str(kl.passphrase_file()))
    line = one_line_error(result, 1)
    assert "bravo" in line and not archive.exists()


AUDIT_DAMAGE = {
    "invalid JSON": "{oops",
    "missing keys": json.dumps({"seq": 2, "at": "2026-03-01T00:00:00+00:00"}),
    "wrong types": json.dumps(
        {
            "seq": "2",
            "at": 5,
            "actor": ["root"],
            "action": None,
            "ring": 7,
            "version": "one",
            "outcome": {},
            "reason": 1.5,
            "prev_hash": 0,
            "hash": False,
        }
    ),
    "a string": json.dumps("record"),
    "deep nesting": "[" * 100_000,
}


@pytest.mark.parametrize("how", sorted(AUDIT_DAMAGE))
def test_a_damaged_audit_row_is_reported_by_sequence_number(kl: Sandbox, how: str) -> None:
    assert kl.sql("SELECT count(*) FROM audit")[0][0] >= 3
    kl.sql("UPDATE audit SET doc=? WHERE seq=2", (AUDIT_DAMAGE[how],))
    with kl.open() as m:
        records = m.store.read_audit()  # never raises
        assert records[1].seq == 2 and records[1].damage
        report = verify_chain(records)
        assert not report.ok and report.first_bad_seq == 2
    verify = kl.run("audit", "verify")
    assert verify.exit_code == 1, verify.stderr
    assert "record 2" in verify.stdout and "Traceback" not in verify.stdout
    as_json = json.loads(kl.run("--json", "audit", "verify").stdout)
    assert as_json["ok"] is False and as_json["first_bad_seq"] == 2
    show = kl.run("audit", "show")
    assert show.exit_code == 0, show.stderr
    lines = show.stdout.splitlines()
    assert lines[1].split()[:2] == ["2", "DAMAGED:"]
    assert "create" in lines[0] and "create" in lines[2]
    shown = json.loads(kl.run("--json", "audit", "show").stdout)["records"]
    assert "damage" in shown[1] and "damage" not in shown[0]


def test_audit_rows_decode_never_raises() -> None:
    for doc in ("", "null", "[]", "{}", '{"seq": true}', "\udcff", b"\xff\xfe"):
        record = decode_audit(doc, 7)
        assert record.seq == 7 and record.damage.startswith("audit record 7")


@pytest.mark.parametrize("how", ["unknown state", "invalid JSON", "a list"])
def test_rotate_fails_the_damaged_ring_by_name_and_rotates_the_others(
    kl: Sandbox, how: str
) -> None:
    """Issue 10 item 7: one malformed row fails that ring (exit 1, named), never the run."""
    with kl.open() as m:  # make every ring due: its primary is gone
        for name in ("alpha", "charlie"):
            m.deactivate(name, 1)
    _edit_ring(kl, "bravo", DAMAGE[how])
    done = kl.run("--json", "rotate")
    assert done.exit_code == 1, done.stderr
    report = json.loads(done.stdout)
    status = {r["ring"]: r["status"] for r in report["rings"]}
    assert status == {"alpha": "succeeded", "bravo": "failed", "charlie": "succeeded"}
    bravo = next(r for r in report["rings"] if r["ring"] == "bravo")
    assert "damaged" in bravo["error"] and "bravo" in bravo["error"]
    assert report["failed"] == ["bravo"] and report["exit_code"] == 1


def test_an_unexpected_error_in_one_ring_fails_that_ring_only(
    kl: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 3: whatever goes wrong inside one ring's steps stays in that ring."""
    from keylife.manager import KeyManager
    from keylife.rotation import run

    with kl.open() as m:
        for name in ("alpha", "bravo"):
            m.deactivate(name, 1)
    original = KeyManager.rotate

    def flaky(self: KeyManager, name: str, **kw):  # type: ignore[no-untyped-def]
        if name == "alpha":
            raise AttributeError("'list' object has no attribute 'get'")
        return original(self, name, **kw)

    monkeypatch.setattr(KeyManager, "rotate", flaky)
    with kl.open() as m:
        report = run(m)
    status = {r.ring: (r.status, r.error) for r in report.rings}
    assert status["alpha"][0] == "failed" and "unexpected AttributeError" in status["alpha"][1]
    assert status["bravo"] == ("succeeded", "")
