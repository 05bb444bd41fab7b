"""The log against the state: does every ring still look the way the audit log says?

Every change a writer commits records, on its audit entries, the SHA-256 of the ring document
it left (:func:`ring_digest`). :func:`check_state` compares each ring in the store with the
newest record that carries its digest, and each ring the log created with the store's list:

- a ring rolled back (an older row copied back after ``key compromise``), a version state,
  date or attribute edited outside keylife (a ring's ``deploy_hook``): the digest differs;
- a vanished ring: the log created it, the store no longer has it, and no ``delete`` record
  (``keylife key delete``) removed it;
- a deleted ring still there: its newest record deletes it, the store still has it (a deletion
  cut short, or a ring put back outside keylife).

Each finding names the ring and the record it disagrees with. Records written before digests
existed carry none; rings whose records all lack one are not compared. Pure: records and rings
in, findings out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from .audit import AuditRecord
from .lifecycle import Ring, ring_to_dict
from .names import is_ring_name
from .policy import Policy

__all__ = ["StateFinding", "check_state", "policy_digest", "ring_digest"]


def ring_digest(ring: Ring) -> str:
    """``sha256:`` + hex SHA-256 of the canonical JSON of ``ring``'s document (its revision
    and any decoding damage are not part of it)."""
    canonical = json.dumps(ring_to_dict(ring), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def policy_digest(policy: Policy) -> str:
    """``sha256:`` + hex SHA-256 of the effective policy (its canonical JSON, source
    excluded): what a rotation run records as the policy in force, the same whatever the
    file's formatting or path."""
    body = policy.to_dict()
    body.pop("source", None)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class StateFinding:
    ring: str
    seq: int
    problem: str

    def to_dict(self) -> dict[str, object]:
        return {"ring": self.ring, "seq": self.seq, "problem": self.problem}


def check_state(records: Sequence[AuditRecord], rings: Sequence[Ring]) -> list[StateFinding]:
    """Rings that differ from, or are missing against, what the log last recorded."""
    last: dict[str, AuditRecord] = {}
    created: dict[str, AuditRecord] = {}
    deleted: dict[str, AuditRecord] = {}
    for r in records:
        # transit-resident rings are logged as ``transit:NAME``, not a ring name: not here
        if r.damage or r.ring is None or not is_ring_name(r.ring):
            continue
        if not r.outcome.startswith("success"):
            continue
        if r.ring_digest:
            last[r.ring] = r
        if r.action == "create" and r.ring not in created:
            created[r.ring] = r
        if r.action == "delete":
            deleted[r.ring] = r
    findings: list[StateFinding] = []
    present = {ring.name: ring for ring in rings}
    for name, ring in sorted(present.items()):
        record = last.get(name)
        if record is None:
            continue
        gone = deleted.get(name)
        if gone is not None and gone.seq == record.seq:
            problem = (
                f"ring {name} is still in the store, but record {gone.seq} deleted it: a "
                f"deletion cut short (run `keylife key delete {name}` again) or a ring put back "
                "outside keylife"
            )
            findings.append(StateFinding(name, gone.seq, problem))
            continue
        if ring.damage:
            problem = f"ring {name} does not decode ({ring.damage}); record {record.seq} says "
            findings.append(StateFinding(name, record.seq, problem + "what it should be"))
            continue
        if ring_digest(ring) != record.ring_digest:
            what = record.action + (f" v{record.version}" if record.version is not None else "")
            problem = (
                f"ring {name} is not what record {record.seq} ({what}) left: rolled back or "
                "edited outside keylife"
            )
            findings.append(StateFinding(name, record.seq, problem))
    for name, record in sorted(created.items()):
        if name not in present and name not in deleted:
            findings.append(
                StateFinding(
                    name, record.seq, f"ring {name} vanished: record {record.seq} created it"
                )
            )
    return findings
