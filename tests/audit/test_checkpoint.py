"""Issue 13 item 4 on the embedded store: signed checkpoints outside the store prove the log
was not wiped, truncated or rolled back, which the hash chain alone cannot show."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from keylife_cli.main import cli

import keylife
from keylife.audit import GENESIS, chain
from keylife.checkpoint import check_checkpoints, parse_checkpoint, read_checkpoints
from keylife.errors import CheckpointError


def run(tmp: Path, *args: str) -> Result:
    base = ["--store", str(tmp / "k.db"), "--master-key-file", str(tmp / "mk")]
    return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    with keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk") as m:
        m.create_ring("orders")
        m.rotate("orders")
    made = run(tmp_path, "audit", "checkpoint", "--out", str(tmp_path / "anchors"))
    assert made.exit_code == 0, made.output
    with keylife.open(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk") as m:
        m.create_ring("later")
    return tmp_path


def rewrite_log(db: Path, keep: int, extra_reason: str | None = None) -> None:
    """What an operator with write access can do: keep the first ``keep`` records, optionally
    append forged ones, and recompute the head so the chain verifies."""
    with closing(sqlite3.connect(db)) as con, con:
        rows = con.execute("SELECT seq, doc FROM audit ORDER BY seq").fetchall()
        con.execute("DELETE FROM audit")
        prev, count = GENESIS, 0
        from keylife.audit import AuditRecord

        records = [AuditRecord.from_dict(json.loads(doc)) for _, doc in rows[:keep]]
        if extra_reason is not None:
            last = records[-1]
            records[-1] = AuditRecord(**{**last.to_dict(), "reason": extra_reason})
        for r in records:
            count += 1
            record = chain(prev, count, r.to_entry())
            con.execute("INSERT INTO audit VALUES (?, ?)", (count, json.dumps(record.to_dict())))
            prev = record.hash
        con.execute("UPDATE meta SET value=? WHERE key='audit_count'", (str(count),))
        con.execute("UPDATE meta SET value=? WHERE key='audit_head'", (prev,))


def verify(tmp: Path) -> tuple[Result, Result]:
    plain = run(tmp, "audit", "verify")
    anchored = run(tmp, "audit", "verify", "--checkpoints", str(tmp / "anchors"))
    return plain, anchored


def test_an_intact_log_passes(store: Path) -> None:
    plain, anchored = verify(store)
    assert plain.exit_code == 0 and anchored.exit_code == 0, anchored.output
    assert "1 checkpoints: every checkpointed head is in the log" in anchored.output
    (cp,) = read_checkpoints(store / "anchors")
    # orders: 5 records (v1 created and activated; v2 created, activated, v1 deactivated),
    # then the signing ring's create and activate
    assert cp.ring == "keylife-audit-checkpoint" and cp.seq == 7


def test_a_wiped_log_passes_the_chain_but_not_the_checkpoints(store: Path) -> None:
    rewrite_log(store / "k.db", keep=0)
    plain, anchored = verify(store)
    assert plain.exit_code == 0 and "0 records, chain intact" in plain.output
    assert anchored.exit_code == 1
    assert "the log holds only 0 records; records were removed" in anchored.output


def test_a_truncated_log_is_caught(store: Path) -> None:
    rewrite_log(store / "k.db", keep=3)
    plain, anchored = verify(store)
    assert plain.exit_code == 0
    assert anchored.exit_code == 1 and "holds only 3 records" in anchored.output


def test_a_rewritten_log_is_caught(store: Path) -> None:
    rewrite_log(store / "k.db", keep=7, extra_reason="nothing happened here")
    plain, anchored = verify(store)
    assert plain.exit_code == 0
    assert anchored.exit_code == 1
    assert "record 7 is not the one checkpointed; the log was rewritten" in anchored.output


def test_a_changed_checkpoint_does_not_verify(store: Path) -> None:
    line = (store / "anchors").read_text().strip()
    doc = json.loads(line)
    doc["seq"] = 2
    (store / "anchors").write_text(json.dumps(doc) + "\n")
    _plain, anchored = verify(store)
    assert anchored.exit_code == 1 and "line 1: checkpoint signature does not verify" in (
        anchored.output
    )
    with pytest.raises(CheckpointError) as caught:
        parse_checkpoint(json.dumps(doc), line=7)
    assert caught.value.line == 7


def test_a_checkpoint_signed_by_another_key_is_reported(store: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    with keylife.init(str(other / "k.db"), master_key_file=other / "mk") as m:
        from keylife.checkpoint import make_checkpoint

        foreign = make_checkpoint(m)
        records = m.store.read_audit()
    with keylife.open(str(store / "k.db"), master_key_file=store / "mk") as m:
        report = check_checkpoints(m.store.read_audit(), [foreign], m.rings())
    assert not report.ok
    assert any("not a version of ring keylife-audit-checkpoint" in p for p in report.problems)
    assert check_checkpoints(records, [foreign], []).problems  # no ring at all


def test_checkpoint_is_audited_and_json(store: Path) -> None:
    shown = json.loads(run(store, "--json", "audit", "show").stdout)["records"]
    (record,) = [r for r in shown if r["action"] == "checkpoint"]
    assert (
        record["ring"] == "keylife-audit-checkpoint"
        and "signed head: record 7" in (record["reason"])
    )
    made = run(store, "--json", "audit", "checkpoint")
    assert made.exit_code == 0
    doc = json.loads(made.stdout)
    assert parse_checkpoint(json.dumps(doc)).seq == doc["seq"]
