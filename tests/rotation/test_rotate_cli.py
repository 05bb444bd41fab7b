"""``keylife rotate`` and ``keylife key compromise`` through the real command."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import time

from keylife.lifecycle import State

from .conftest import StoreEnv


def test_nothing_due_exits_zero_and_says_so(store_env: StoreEnv) -> None:
    with store_env.manager() as m:
        m.create_ring("fresh", "aes-256", "data-encryption")
    r = store_env.run("rotate")
    assert r.returncode == 0, r.stderr
    assert "nothing was due" in r.stdout
    doc = json.loads(store_env.run("--json", "rotate").stdout)
    assert doc["nothing_due"] is True and doc["exit_code"] == 0 and doc["rings_checked"] == 1


def test_failing_ring_does_not_stop_the_others(store_env: StoreEnv) -> None:
    names = store_env.make_due(3, spec="aes-256")
    broken = names[1]
    db = sqlite3.connect(store_env.env["KEYLIFE_STORE"])
    (blob,) = db.execute(
        "SELECT blob FROM material WHERE ring=? AND version=1", (broken,)
    ).fetchone()
    flipped = bytearray(blob)
    flipped[-1] ^= 0x01
    with db:
        db.execute(
            "UPDATE material SET blob=? WHERE ring=? AND version=1", (bytes(flipped), broken)
        )
    db.close()
    r = store_env.run("--json", "rotate")
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["failed"] == [broken]
    failed = next(ring for ring in doc["rings"] if ring["ring"] == broken)
    assert broken in r.stderr and failed["status"] == "failed" and failed["error"]
    assert "integrity" in json.dumps(doc).lower()
    with store_env.manager() as m:
        for name in names:
            ring = m.load(name)
            if name == broken:
                assert len(ring.versions) == 1  # left for an operator, not buried
            else:
                assert [v.state for v in ring.versions] == [State.DEACTIVATED, State.ACTIVE]
        failures = [a for a in m.audit_records(broken) if a.outcome.startswith("failure")]
        assert failures and "integrity" in failures[0].outcome
    text = store_env.run("rotate")
    assert text.returncode == 1 and f"failed rings: {broken}" in text.stderr


def _rotations(store_env: StoreEnv) -> dict[str, int]:
    with store_env.manager() as m:
        counts: dict[str, int] = {}
        for rec in m.audit_records():
            if rec.action == "create" and rec.reason != "signing" and rec.version != 1:
                counts[rec.ring or ""] = counts.get(rec.ring or "", 0) + 1
        return counts


def test_four_concurrent_runs_rotate_each_due_ring_exactly_once(store_env: StoreEnv) -> None:
    names = store_env.make_due(40)
    procs = [
        store_env.popen(
            "--json", "rotate", "--wait", "60", stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [o[1] for o in outs]
    docs = [json.loads(o[0]) for o in outs]
    assert sum(1 for d in docs if not d["nothing_due"]) == 1  # one run did the work
    assert _rotations(store_env) == dict.fromkeys(names, 1)
    with store_env.manager() as m:
        now = m.now()
        for name in names:
            ring = m.load(name)
            assert [v.number for v in ring.versions] == [1, 2]
            assert ring.primary(now) is not None and ring.primary(now).number == 2  # type: ignore[union-attr]


def test_concurrent_run_without_wait_exits_4(store_env: StoreEnv) -> None:
    store_env.make_due(60, spec="rsa-2048")
    first = store_env.popen("rotate", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    code = None
    while time.monotonic() < deadline:  # wait until the first run holds the lease
        with store_env.manager() as m:
            if m.store.read_lease("keylife-rotate") is not None:
                code = store_env.run("rotate").returncode
                break
        time.sleep(0.02)
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert code == 4


def test_dry_run_as_of_and_usage_errors(store_env: StoreEnv) -> None:
    with store_env.manager() as m:
        m.create_ring("soon", "aes-256", "data-encryption")
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=400)).date().isoformat()
    r = store_env.run("--json", "rotate", "--dry-run", "--as-of", future)
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["dry_run"] is True
    assert [s["kind"] for s in doc["rings"][0]["steps"]] == ["deactivate", "rotate"]
    assert store_env.run("rotate").stdout.startswith("nothing was due")
    bad = store_env.run("rotate", "--as-of", future)
    assert bad.returncode == 2 and "--dry-run" in bad.stderr
    assert store_env.run("rotate", "--as-of", "next tuesday", "--dry-run").returncode == 2
    assert store_env.run("rotate", "--ring", "nope").returncode == 1


def test_metrics_file(store_env: StoreEnv) -> None:
    store_env.make_due(2, spec="aes-256")
    path = store_env.root / "keylife.prom"
    assert store_env.run("rotate", "--metrics-file", str(path)).returncode == 0
    text = path.read_text()
    assert 'keylife_rotate_steps{ring="due-000",kind="rotate"} 1' in text
    assert "keylife_rotate_failures 0" in text
    assert 'keylife_ring_next_due_timestamp_seconds{ring="due-001"}' in text
    assert "keylife_rotate_last_success_timestamp_seconds " in text


def test_key_compromise_replaces_and_records_every_step(store_env: StoreEnv) -> None:
    with store_env.manager() as m:
        m.create_ring("payments", "ec-p256", "signing")
        old_fp = m.load("payments").versions[0].fingerprint
    r = store_env.run(
        "--json",
        "key",
        "compromise",
        "payments",
        "--reason",
        "key-compromise",
        "--occurred-at",
        "2026-11-01T08:00:00Z",
        "--message",
        "laptop stolen",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["compromised"]["state"] == "compromised"
    assert doc["compromised"]["compromise_occurred"].startswith("2026-11-01T08:00:00")
    assert doc["compromised"]["revocation_reason"] == "key-compromise"
    assert doc["replacement"]["state"] == "active" and doc["replacement"]["replaces"] == 1
    assert any(old_fp in d for d in doc["dependents"])
    with store_env.manager() as m:
        ring = m.load("payments")
        assert ring.primary(m.now()) is not None
        assert ring.primary(m.now()).number == 2  # type: ignore[union-attr]
        old = ring.get(1)
        assert old is not None and old.compromise_date is not None
        actions = [(a.action, a.version) for a in m.audit_records("payments")]
        assert ("compromise", 1) in actions and ("create", 2) in actions
        assert ("activate", 2) in actions
        notice = next(a for a in m.audit_records("payments") if a.action == "compromise")
        assert "revocation notice" in notice.reason and "laptop stolen" in notice.reason
        assert m.verify_audit().ok
    again = store_env.run(
        "key", "compromise", "payments", "--version", "1", "--occurred-at", "2026-11-01"
    )
    assert again.returncode == 1 and "compromised" in again.stderr
