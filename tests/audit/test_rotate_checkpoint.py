"""Issue 13 item 4: ``keylife rotate --checkpoint FILE`` appends one signed checkpoint per run,
and ``keylife audit verify --checkpoints FILE`` proves the log still holds every one of them: a
log wiped or truncated after such runs is caught, though its hash chain still verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

import keylife
from keylife.checkpoint import read_checkpoints
from tests.audit.test_checkpoint import rewrite_log, run


@pytest.fixture
def rotated(tmp_path: Path) -> Path:
    with keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk") as m:
        m.create_ring("orders")
    for _ in range(2):
        result = run(tmp_path, "--json", "rotate", "--checkpoint", str(tmp_path / "anchors"))
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc["checkpoint"]["file"] == str(tmp_path / "anchors")
    with keylife.open(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk") as m:
        m.rotate("orders")  # the log goes on after the runs
    return tmp_path


def verify(tmp: Path) -> tuple[Result, Result]:
    plain = run(tmp, "audit", "verify")
    anchored = run(tmp, "audit", "verify", "--checkpoints", str(tmp / "anchors"))
    return plain, anchored


def test_one_checkpoint_per_run_and_an_intact_log_passes(rotated: Path) -> None:
    first, second = read_checkpoints(rotated / "anchors")
    assert second.seq > first.seq  # the second run's head includes the first checkpoint
    with keylife.open(str(rotated / "k.db"), master_key_file=rotated / "mk") as m:
        records = m.audit_records()
    assert [r.seq for r in records if r.action == "checkpoint"] == [first.seq + 1, second.seq + 1]
    assert records[second.seq - 1].hash == second.head
    plain, anchored = verify(rotated)
    assert plain.exit_code == 0 and anchored.exit_code == 0, anchored.output
    assert "2 checkpoints: every checkpointed head is in the log" in anchored.output


def test_text_output_names_the_checkpoint(tmp_path: Path) -> None:
    keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk").close()
    result = run(tmp_path, "rotate", "--checkpoint", str(tmp_path / "anchors"))
    assert result.exit_code == 0, result.output
    assert f"appended to {tmp_path / 'anchors'}" in result.stdout
    refused = run(tmp_path, "rotate", "--dry-run", "--checkpoint", str(tmp_path / "anchors"))
    assert refused.exit_code == 2 and "drop --dry-run" in refused.stderr


def test_a_wiped_log_after_the_runs_is_caught(rotated: Path) -> None:
    rewrite_log(rotated / "k.db", keep=0)
    plain, anchored = verify(rotated)
    assert plain.exit_code == 0 and "0 records, chain intact" in plain.output
    assert anchored.exit_code == 1
    assert anchored.output.count("the log holds only 0 records; records were removed") == 2


def test_a_log_truncated_after_the_runs_is_caught(rotated: Path) -> None:
    first, second = read_checkpoints(rotated / "anchors")
    rewrite_log(rotated / "k.db", keep=second.seq - 1)  # just before the second run's head
    _, anchored = verify(rotated)  # (the plain verify may catch the ring state too)
    assert anchored.exit_code == 1
    assert f"(record {second.seq}): the log holds only {second.seq - 1} records" in anchored.output
    assert f"(record {first.seq})" not in anchored.output  # the first anchor still holds
