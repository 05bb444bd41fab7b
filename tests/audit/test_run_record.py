"""Issue 13 item 2: every rotation run that applied or failed something leaves one record naming
the policy in force (by its SHA-256) and the outcome; a dry run or a pass with nothing due and
nothing wrong writes nothing."""

from __future__ import annotations

from pathlib import Path

import keylife
from keylife.auditstate import policy_digest
from keylife.rotation import run


def test_each_run_records_the_policy_in_force(tmp_path: Path) -> None:
    m = keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk", policy="128-bit")
    m.create_ring("orders", purpose="data-encryption")
    m.deactivate("orders", 1)  # due: the ring has no primary
    before = len(m.audit_records())
    run(m, dry_run=True)
    assert len(m.audit_records()) == before
    report = run(m)
    assert report.ok
    (record,) = [r for r in m.audit_records() if r.action == "rotate-run"]
    assert policy_digest(m.policy) in record.reason and record.outcome == "success"
    assert "0 failed" in record.reason
    assert m.verify_audit().ok
    assert run(m).nothing_due
    assert len([r for r in m.audit_records() if r.action == "rotate-run"]) == 1
    m.close()
