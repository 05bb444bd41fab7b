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
from dataclasses import dataclass, field
from typing import Any, Protocol

from .documents import Document, stored_date
from .errors import CorruptRecordError

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
    #: Who the store authenticated (``os:alice uid=1000``, ``vault:svc-a ...``); ``actor`` is
    #: then the identity claimed "on behalf of" (``--actor``). Empty in records written before
    #: identities were recorded.
    identity: str = ""
    #: SHA-256 of the ring document this change left (see :mod:`keylife.auditstate`), so
    #: ``audit verify`` can tell a ring rolled back or edited outside keylife. Empty when the
    #: entry changed no ring, and in records written before it existed.
    ring_digest: str = ""


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
    #: The authenticated identity (see :class:`AuditEntry`). Hashed only when set, so records
    #: written before it existed verify as they did.
    identity: str = ""
    #: The ring document's digest after the change (see :class:`AuditEntry`); hashed only
    #: when set.
    ring_digest: str = ""
    #: Why the stored row could not be decoded (see :func:`decode_audit`); empty when sound.
    #: Not part of the record: never hashed, and in :meth:`to_dict` only when set.
    damage: str = field(default="", compare=False)

    def body(self) -> dict[str, Any]:
        d = self.to_dict()
        d.pop("hash")
        d.pop("damage", None)
        return d

    def to_dict(self) -> dict[str, Any]:
        # by hand rather than dataclasses.asdict: verifying a long chain calls this per record
        d: dict[str, Any] = {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "ring": self.ring,
            "version": self.version,
            "outcome": self.outcome,
            "reason": self.reason,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }
        if self.identity:
            d["identity"] = self.identity
        if self.ring_digest:
            d["ring_digest"] = self.ring_digest
        if self.damage:
            d["damage"] = self.damage
        return d

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
            self.identity,
            self.ring_digest,
        )

    @classmethod
    def from_dict(cls, d: object, seq: int | None = None) -> AuditRecord:
        """Decode a stored record; a malformed one raises :class:`CorruptRecordError`."""
        what = f"audit record {seq}" if seq is not None else "an audit record"
        doc = Document(d, "", None, what)
        at = doc.get("at", str)
        if stored_date(at) is None:
            doc.fail("at is not a UTC date")
        return cls(
            seq=doc.number("seq") or 0,
            at=at,
            actor=doc.get("actor", str),
            action=doc.get("action", str),
            ring=doc.get("ring", str, required=False),
            version=doc.get("version", int, required=False),
            outcome=doc.get("outcome", str),
            reason=doc.get("reason", str),
            prev_hash=doc.get("prev_hash", str),
            hash=doc.get("hash", str),
            identity=doc.get("identity", str, required=False) or "",
            ring_digest=doc.get("ring_digest", str, required=False) or "",
        )


def decode_audit(doc: object, seq: int) -> AuditRecord:
    """The audit row stored at ``seq`` (``doc``: mapping or JSON text); never raises.

    A row that does not decode comes back with ``damage`` set, and :func:`verify_chain`
    reports it by its sequence number.
    """
    try:
        if isinstance(doc, str | bytes):
            doc = json.loads(doc)
        return AuditRecord.from_dict(doc, seq)
    except CorruptRecordError as exc:
        damage = str(exc)
    except (ValueError, RecursionError) as exc:
        damage = f"audit record {seq} is damaged: not valid JSON ({type(exc).__name__})"
    return AuditRecord(seq, "", "", "", None, None, "", "", "", "", damage=damage)


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
    if entry.identity:
        body["identity"] = entry.identity
    if entry.ring_digest:
        body["ring_digest"] = entry.ring_digest
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
        if rec.damage:
            return ChainReport(False, len(records), rec.seq, rec.damage)
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
