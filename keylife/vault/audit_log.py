"""keylife's hash-chained audit log in KV v2: a head document and one document per batch.

::

    M/audit-head      {"count", "hash", "last": the last batch}     (check-and-set)
    M/audit/<txid>    {"start", "records": [...]}                     one batch

Appending a batch is a check-and-set on the head (which carries the whole batch as ``last``),
then the batch document; whoever appends next writes the previous batch's document first if
it is missing, so a crash between the two loses nothing. The batch id of a ring write is that
write's ``tx`` id, so a later write can tell whether its batch was appended.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..audit import GENESIS, AuditEntry, AuditRecord, chain, decode_audit
from ..errors import ConflictError
from .kv import KV

__all__ = ["VaultAuditLog", "entry_from_dict", "entry_to_dict"]

_AUDIT_RETRIES = 64

Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], list[Any]]


def entry_to_dict(e: AuditEntry) -> dict[str, Any]:
    d: dict[str, Any] = {
        "at": e.at.isoformat(),
        "actor": e.actor,
        "action": e.action,
        "ring": e.ring,
        "version": e.version,
        "outcome": e.outcome,
        "reason": e.reason,
    }
    if e.identity:
        d["identity"] = e.identity
    if e.ring_digest:
        d["ring_digest"] = e.ring_digest
    return d


def entry_from_dict(d: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        dt.datetime.fromisoformat(d["at"]),
        d["actor"],
        d["action"],
        d.get("ring"),
        d.get("version"),
        d.get("outcome", "success"),
        d.get("reason", ""),
        d.get("identity") or "",
        d.get("ring_digest") or "",
    )


class VaultAuditLog:
    """The audit chain of one store. ``mapper`` runs reads in parallel (``map``-like)."""

    def __init__(self, kv: KV, mapper: Mapper) -> None:
        self.kv = kv
        self._map = mapper
        self._lock = threading.Lock()
        #: batch ids known to be appended / whose batch document is written (by this object)
        self._appended: set[str] = set()
        self._written: set[str] = set()
        self._head: tuple[dict[str, Any], int] | None = None

    def read_head(self) -> tuple[dict[str, Any], int]:
        got = self.kv.read("audit-head", what="read audit head")
        if got is None:
            return {"count": 0, "hash": GENESIS, "last": None}, 0
        return got.data, got.version

    def head(self) -> tuple[int, str]:
        """``(count, hash of the last record)`` as the head records them."""
        head, _ = self.read_head()
        return int(head["count"]), str(head["hash"])

    def has_batch(self, txid: str) -> bool:
        return txid in self._appended or (
            self.kv.read(f"audit/{txid}", what="read audit batch") is not None
        )

    def known_batches(self) -> set[str]:
        """Ids of every appended batch (listed documents, the head's last batch, ours)."""
        known = {k for k in self.kv.list("audit/", what="list audit batches")}
        head, _ = self.read_head()
        if head.get("last"):
            known.add(str(head["last"]["id"]))
        with self._lock:
            self._appended |= known
            return known | self._appended

    def _write_batch_doc(self, batch: Mapping[str, Any]) -> None:
        txid = str(batch["id"])
        if txid in self._written:
            return
        # a conflict means it is already written (its content is fixed by the head)
        with contextlib.suppress(ConflictError):
            self.kv.cas_write(
                f"audit/{txid}",
                {"start": batch["start"], "records": batch["records"]},
                cas=0,
                what="write audit batch",
                ours=lambda _d: True,
            )
        self._written.add(txid)

    def append(self, entries: Sequence[AuditEntry]) -> None:
        """Append ``entries`` as one new batch."""
        self.append_batch(secrets.token_hex(12), entries)

    def append_batch(
        self, txid: str, entries: Sequence[AuditEntry], *, check_existing: bool = False
    ) -> None:
        """Append batch ``txid`` unless it is appended already (safe to repeat)."""
        if not entries or txid in self._appended:
            return
        if check_existing and self.has_batch(txid):
            self._appended.add(txid)
            return
        for attempt in range(_AUDIT_RETRIES):
            # The head this object wrote last is usually still current (one writer under the
            # rotation lease): try it first and read only after losing the check-and-set.
            cached, self._head = self._head, None
            head, version = cached if cached is not None else self.read_head()
            last = head.get("last")
            if last and last.get("id") == txid:
                break  # appended already (our answer was lost, or another process did it)
            if last:
                self._write_batch_doc(last)
            batch, new_head = _next(head, txid, entries)
            try:
                new_version = self.kv.cas_write(
                    "audit-head",
                    new_head,
                    cas=version,
                    what="append audit records",
                    ours=lambda d: (d.get("last") or {}).get("id") == txid,
                )
            except ConflictError:
                time.sleep(random.random() * min(0.2, 0.005 * 2**attempt))
                continue
            self._head = (new_head, new_version)
            self._write_batch_doc(batch)
            break
        else:
            raise ConflictError("the audit log kept changing underneath; try again")
        self._appended.add(txid)

    def read(self) -> list[AuditRecord]:
        """Every record, in sequence order (the head's last batch fills a missing document)."""
        head, _version = self.read_head()
        ids = [k for k in self.kv.list("audit/", what="list audit batches") if not k.endswith("/")]

        def read(txid: str) -> list[dict[str, Any]]:
            got = self.kv.read(f"audit/{txid}", what="read audit batch")
            return [] if got is None else list(got.data.get("records") or [])

        by_seq: dict[int, object] = {}
        unnumbered: list[object] = []

        def collect(r: object, *, keep: bool = False) -> None:
            seq = r.get("seq") if isinstance(r, dict) else None
            if isinstance(seq, int) and not isinstance(seq, bool):
                if not keep or seq not in by_seq:
                    by_seq[seq] = r
            else:
                unnumbered.append(r)  # reported as damaged after the numbered ones

        for records in self._map(read, ids):
            for r in records:
                collect(r)
        last = head.get("last")
        if isinstance(last, dict):
            for r in last.get("records") or []:
                collect(r, keep=True)
        out = [decode_audit(by_seq[s], s) for s in sorted(by_seq)]
        top = max(by_seq, default=0)
        out += [decode_audit(r, top + i + 1) for i, r in enumerate(unnumbered)]
        return out


def _next(
    head: Mapping[str, Any], txid: str, entries: Sequence[AuditEntry]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The batch chained after ``head``, and the head that records it."""
    count, prev = int(head["count"]), str(head["hash"])
    start = count + 1
    records = []
    for entry in entries:
        count += 1
        record = chain(prev, count, entry)
        records.append(record.to_dict())
        prev = record.hash
    batch = {"id": txid, "start": start, "records": records}
    return batch, {"count": count, "hash": prev, "last": batch}
