"""The hash-chained audit log.

Each record holds timestamp, actor, action, ring, version, outcome and reason, plus the
SHA-256 of the previous record; its own hash covers all of that. Changing, removing or
reordering a record breaks the chain at that point, and :func:`verify_chain` names it.
Records never hold key material: entries are built only from names, numbers and reasons.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    at: dt.datetime
    actor: str
    action: str
    ring: str | None = None
    version: int | None = None
    outcome: str = "success"
    reason: str = ""


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: str
    actor: str
    action: str
    ring: str | None
    version: int | None
    outcome: str
    reason: str
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("hash")
        return d

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_entry(self) -> AuditEntry:
        """The entry this record was made from; appending it to an empty log in the same
        order reproduces the record, hash included (restore, migration)."""
        return AuditEntry(
            dt.datetime.fromisoformat(self.at),
            self.actor,
            self.action,
            self.ring,
            self.version,
            self.outcome,
            self.reason,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditRecord:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def chain(prev_hash: str, seq: int, entry: AuditEntry) -> AuditRecord:
    """The record for ``entry`` placed after the record whose hash is ``prev_hash``."""
    body = {
        "seq": seq,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "ring": entry.ring,
        "version": entry.version,
        "outcome": entry.outcome,
        "reason": entry.reason,
        "prev_hash": prev_hash,
    }
    return AuditRecord(**body, hash=_digest(body))  # type: ignore[arg-type]


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str = ""


def verify_chain(
    records: Sequence[AuditRecord], *, head: tuple[int, str] | None = None
) -> ChainReport:
    """Check the chain; report the first changed, removed or reordered record.

    ``head`` is the (count, last hash) the store recorded on its last append, which catches
    records removed from the end.
    """
    prev = GENESIS
    for i, rec in enumerate(records, start=1):
        if rec.seq != i:
            # Record i missing here but present later was moved, not removed.
            moved = rec.seq < i or any(r.seq == i for r in records)
            kind = "reordered or duplicated" if moved else "removed"
            return ChainReport(
                False,
                len(records),
                i,
                f"record {i} {kind}: found seq {rec.seq} at position {i}",
            )
        if _digest(rec.body()) != rec.hash:
            return ChainReport(False, len(records), rec.seq, f"record {rec.seq} was changed")
        if rec.prev_hash != prev:
            return ChainReport(
                False,
                len(records),
                rec.seq,
                f"record {rec.seq} does not follow record {rec.seq - 1} (chain broken)",
            )
        prev = rec.hash
    if head is not None:
        count, last = head
        if count != len(records) or (count and last != prev):
            return ChainReport(
                False,
                len(records),
                min(count, len(records)) + 1,
                f"the log holds {len(records)} records but {count} were written; "
                "records were removed from the end",
            )
    return ChainReport(True, len(records))


class AuditSink(Protocol):
    def append_audit(self, entries: Sequence[AuditEntry]) -> None: ...


def replay(records: Sequence[AuditRecord], target: AuditSink, *, chunk: int = 500) -> None:
    """Append ``records`` to ``target``'s (empty) log, reproducing them hash for hash."""
    entries = [r.to_entry() for r in records]
    for start in range(0, len(entries), chunk):
        target.append_audit(entries[start : start + chunk])
