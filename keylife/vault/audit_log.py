"""keylife's hash-chained audit log in KV v2: a head document and one document per batch.

::

    M/audit-head      {"count", "hash", "last": the last batch,       (check-and-set)
                       "group": JSON text of the batches appended with it (if several)}
    M/audit/<txid>    {"start", "records": [...]}                     one batch

Appending batches is one check-and-set on the head (which carries every batch of that append
in full, as ``last`` and ``group``), then one document per batch; whoever appends next writes
the previous append's documents first if any is missing, so a crash between the two loses
nothing. The batch id of a ring write is that write's ``tx`` id, so a later write can tell
whether its batch was appended. Threads appending at once (a concurrent rotation run) share
one head check-and-set: the chain stays one line, with no gaps or forks, whatever the order
in which the threads committed their rings.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..audit import GENESIS, AuditEntry, AuditRecord, chain, decode_audit
from ..contention import cas_backoff
from ..errors import ConflictError
from .batching import Coalescer
from .kv import KV

__all__ = ["VaultAuditLog", "entry_from_dict", "entry_to_dict", "head_batches"]

_AUDIT_RETRIES = 64
#: at most this many batches (ring commits) share one check-and-set on the head
GROUP_MAX = 32

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
        self._group: Coalescer[tuple[str, list[AuditEntry]], None] = Coalescer(
            self._append_group, max_batch=GROUP_MAX
        )

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
        known |= {str(b.get("id")) for b in head_batches(head)}
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
        """Append batch ``txid`` unless it is appended already (safe to repeat). Batches
        appended concurrently (by the threads of a concurrent rotation run) share one
        check-and-set on the head (:class:`~keylife.vault.batching.Coalescer`)."""
        if not entries or txid in self._appended:
            return
        if check_existing and self.has_batch(txid):
            self._appended.add(txid)
            return
        self._group.submit((txid, list(entries)))

    def _append_group(self, items: list[tuple[str, list[AuditEntry]]]) -> list[None]:
        """Append the batches ``items`` in order with one check-and-set on the head."""
        todo = {t: e for t, e in items if t not in self._appended}
        for attempt in range(_AUDIT_RETRIES):
            # The head this object wrote last is usually still current (one writer under the
            # rotation lease): try it first and read only after losing the check-and-set.
            cached, self._head = self._head, None
            head, version = cached if cached is not None else self.read_head()
            previous = head_batches(head)
            done = {str(b.get("id")) for b in previous}
            pending = [(t, e) for t, e in todo.items() if t not in done]
            if not pending:
                break  # appended already (our answer was lost, or another process did it)
            for batch in previous:  # the previous append's documents, if it was cut short
                self._write_batch_doc(batch)
            batches, new_head = _next(head, pending)
            ids = {t for t, _e in pending}
            try:
                new_version = self.kv.cas_write(
                    "audit-head",
                    new_head,
                    cas=version,
                    what="append audit records",
                    ours=lambda d, ids=ids: (
                        ids
                        <= {  # type: ignore[misc]
                            str(b.get("id")) for b in head_batches(d)
                        }
                    ),
                )
            except ConflictError:
                cas_backoff(attempt, cap=0.2)
                continue
            self._head = (new_head, new_version)
            self._map(self._write_batch_doc, batches)
            break
        else:
            raise ConflictError("the audit log kept changing underneath; try again")
        self._appended.update(todo)
        return [None] * len(items)

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
        for batch in head_batches(head):
            for r in batch.get("records") or []:
                collect(r, keep=True)
        out = [decode_audit(by_seq[s], s) for s in sorted(by_seq)]
        top = max(by_seq, default=0)
        out += [decode_audit(r, top + i + 1) for i, r in enumerate(unnumbered)]
        return out


def head_batches(head: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The batches the head records in full: its ``last`` batch, after those of ``group`` (the
    earlier batches of the same append, as one JSON string: OpenBao caps the strings in a
    request)."""
    out: list[dict[str, Any]] = []
    group = head.get("group")
    if isinstance(group, str):
        with contextlib.suppress(ValueError, RecursionError):  # deeply nested: not ours
            decoded = json.loads(group)
            out += [b for b in decoded if isinstance(b, dict)] if isinstance(decoded, list) else []
    last = head.get("last")
    if isinstance(last, dict):
        out.append(last)
    return out


def _next(
    head: Mapping[str, Any], items: Sequence[tuple[str, Sequence[AuditEntry]]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The batches ``items`` chained after ``head``, and the head that records them."""
    count, prev = int(head["count"]), str(head["hash"])
    batches = []
    for txid, entries in items:
        start = count + 1
        records = []
        for entry in entries:
            count += 1
            record = chain(prev, count, entry)
            records.append(record.to_dict())
            prev = record.hash
        batches.append({"id": txid, "start": start, "records": records})
    new_head: dict[str, Any] = {"count": count, "hash": prev, "last": batches[-1]}
    if len(batches) > 1:
        new_head["group"] = json.dumps(batches[:-1], separators=(",", ":"))
    return batches, new_head
