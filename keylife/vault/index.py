"""The ring index of the Vault store: ring documents gathered in 256 KV v2 shard documents.

A nothing-due ``keylife rotate`` reads every ring. One KV read per ring costs ~2 ms on a
2-core box (22 s for 10,000 rings); reading 256 shards costs a few hundred milliseconds. The
per-ring document ``rings/<ring>`` stays the single source of truth and the commit point; the
index is a cache of it that is never allowed to hide a committed change.

Shard ``ix/<hh>`` (``hh`` = first byte of SHA-256 of the ring name, in hex) is stored as
``{"v": 1, "z": base64(zlib(json))}``: OpenBao refuses a request body with about 1,000 JSON
strings or more ("refused JSON input due to high complexity"), so the shard travels as one
string. Decoded, it holds::

    {"v": 1,
     "rings":   {name: {"rev": <KV version of rings/<name>>, "doc": <that ring document>,
                        "t": <that KV version's created_time>}},
     "pending": {name: [{"tx": <txid>, "base": <expected revision>}, ...]},
     "hw":      {name: [issued, KV version of hw/<name>, rev]}}     (optional)

``hw`` copies the ring's high-water mark (:mod:`keylife.vault.highwater`) as the write that
produced revision ``rev`` left it.

The rules (the argument is written out in docs/vault.md, "The ring index"):

- entries are *hints*: a reader uses one only when its ``rev`` and ``t`` are the ring's current
  KV version and that version's ``created_time`` (one ``detailed-metadata`` listing gives them
  for every ring, :func:`verified`), and its document decodes. A stale, impossible (a ``rev``
  above the current version, a ring deleted and created again) or malformed entry costs one
  direct read of that ring, and the reader corrects the entry from the ring (:func:`correct`);
- a writer puts the new ``{rev, doc, t}`` entry after its ring check-and-set (a rotation run
  puts all of a shard's entries in one write when it releases its lease,
  :meth:`IndexShards.put_later`); until then the entry is stale and readers read the ring;
- an entry is only ever replaced by one with a higher ``rev`` (merges are monotonic);
- ``pending`` tokens ``{tx, base}`` were written before each ring check-and-set by earlier
  builds (before readers checked entries against the listing, the tokens kept them off stale
  entries); a reader still distrusts an entry while a token has ``base >= entry.rev``, and
  whoever writes the shard next prunes the tokens below the entry;
- the ``hw`` copy is vouched for (:meth:`IndexShards.vouched`) only with an entry that
  :func:`verified` accepted: then the ring is at exactly the KV version the copy was recorded
  with, and a commit on it needs no read of ``hw/<name>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from ..contention import cas_backoff
from ..errors import ConflictError, StoreError
from .kv import KV

SHARD_PREFIX = "ix/"
#: an entry waiting to be written: (rev, doc, created_time, high-water mark or None)
Later = tuple[int, dict[str, Any], str, tuple[int, int] | None]
_SHARD_RETRIES = 32

log = logging.getLogger("keylife.vault.index")


def shard_of(name: str) -> str:
    """The shard that holds ``name`` (stable across processes and hosts)."""
    return f"{hashlib.sha256(name.encode()).digest()[0]:02x}"


def empty() -> dict[str, Any]:
    return {"v": 1, "rings": {}, "pending": {}}


def encode(shard: Mapping[str, Any]) -> dict[str, Any]:
    """The KV v2 data of a shard."""
    text = json.dumps(shard, separators=(",", ":"), sort_keys=True).encode()
    return {"v": 1, "z": base64.b64encode(zlib.compress(text, 6)).decode("ascii")}


def decode(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """A shard from its KV v2 data; anything malformed counts as absent (the ring documents
    are the truth, so an unreadable entry only costs a direct read)."""
    if not data or data.get("v") != 1 or not isinstance(data.get("z"), str):
        return empty()
    try:
        raw = json.loads(zlib.decompress(base64.b64decode(data["z"], validate=True)))
    except (ValueError, zlib.error, binascii.Error):
        return empty()
    return normalise(raw if isinstance(raw, dict) else None)


def normalise(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """A decoded shard with malformed entries and tokens dropped."""
    shard = empty()
    if not raw or raw.get("v") != 1:
        return shard
    rings = raw.get("rings")
    if isinstance(rings, dict):
        for name, entry in rings.items():
            if (
                isinstance(entry, dict)
                and isinstance(entry.get("rev"), int)
                and isinstance(entry.get("doc"), dict)
            ):
                shard["rings"][name] = entry
    pending = raw.get("pending")
    if isinstance(pending, dict):
        for name, tokens in pending.items():
            if isinstance(tokens, list):
                good = [t for t in tokens if isinstance(t, dict) and isinstance(t.get("base"), int)]
                if good:
                    shard["pending"][name] = good
    marks = raw.get("hw")
    if isinstance(marks, dict):
        good_marks = {
            name: list(m)
            for name, m in marks.items()
            if isinstance(m, list)
            and len(m) == 3
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in m)
        }
        if good_marks:
            shard["hw"] = good_marks
    return shard


def copy(shard: Mapping[str, Any]) -> dict[str, Any]:
    """Copy deep enough to change ``rings`` and ``pending`` without touching ``shard``."""
    return {
        "v": 1,
        "rings": dict(shard["rings"]),
        "pending": {k: list(v) for k, v in shard["pending"].items()},
        **({"hw": dict(shard["hw"])} if "hw" in shard else {}),
    }


def entry_rev(shard: Mapping[str, Any], name: str) -> int:
    entry = shard["rings"].get(name)
    return int(entry["rev"]) if entry is not None else 0


def verified(
    shard: Mapping[str, Any], name: str, current: int, created: str
) -> tuple[int, dict[str, Any]] | None:
    """As :func:`trusted`, and only when the entry is the ring's current KV version
    ``current`` written at ``created`` (from the ring's KV metadata)."""
    got = trusted(shard, name)
    entry = shard["rings"].get(name)
    if got is None or entry is None or got[0] != current:
        return None
    if not created or entry.get("t") != created:
        return None
    return got


def correct(shard: dict[str, Any], name: str, rev: int, doc: Mapping[str, Any], t: str) -> bool:
    """Set the entry of ``name`` to what the ring itself holds (``rev`` read just now), whatever
    the entry said: a stale, impossible or forged entry is replaced, and the ring's copy of its
    high-water mark goes with it (the reader cannot tell which write left the copy, so no entry
    it writes vouches for one). Returns whether it changed."""
    entry = {"rev": rev, "doc": dict(doc), "t": t}
    changed = shard["rings"].get(name) != entry
    if changed:
        shard["rings"][name] = entry
        marks = shard.get("hw") or {}
        if name in marks:
            shard["hw"] = {k: v for k, v in marks.items() if k != name}
    return prune(shard, name) or changed


def trusted(shard: Mapping[str, Any], name: str) -> tuple[int, dict[str, Any]] | None:
    """``(rev, doc)`` when the entry of ``name`` may be used instead of reading the ring
    document; None when it is missing or a write of the ring may be in flight or cut short."""
    entry = shard["rings"].get(name)
    if entry is None:
        return None
    rev = int(entry["rev"])
    if any(int(t["base"]) >= rev for t in shard["pending"].get(name, ())):
        return None
    return rev, entry["doc"]


def prune(shard: dict[str, Any], name: str) -> bool:
    tokens = shard["pending"].get(name)
    if not tokens:
        return False
    rev = entry_rev(shard, name)
    keep = [t for t in tokens if int(t["base"]) >= rev]
    if len(keep) == len(tokens):
        return False
    if keep:
        shard["pending"][name] = keep
    else:
        del shard["pending"][name]
    return True


def put_entry(
    shard: dict[str, Any],
    name: str,
    rev: int,
    doc: Mapping[str, Any],
    t: str = "",
    mark: tuple[int, int] | None = None,
) -> bool:
    """Record revision ``rev`` of ``name`` unless the shard already has a newer one; prune the
    tokens it covers; with ``mark`` (``(issued, KV version)`` of the ring's high-water mark as
    the write of ``rev`` left it), record it too. Returns whether the shard changed."""
    changed = False
    if rev > entry_rev(shard, name):
        shard["rings"][name] = {"rev": rev, "doc": dict(doc), "t": t}
        changed = True
    marks = shard.get("hw") or {}
    if mark is not None and rev >= (marks.get(name) or [0, 0, 0])[2]:
        shard["hw"] = {**marks, name: [mark[0], mark[1], rev]}
        changed = True
    return prune(shard, name) or changed


def mark_for(shard: Mapping[str, Any], name: str, base: int) -> tuple[int, int] | None:
    """The high-water mark ``(issued, KV version)`` recorded with revision ``base`` of
    ``name``, when no write on ``base`` or later is pending (its mark may be higher); None:
    read ``hw/<name>`` itself."""
    got = (shard.get("hw") or {}).get(name)
    if base < 1 or got is None or got[2] != base:
        return None
    if any(int(t["base"]) >= base for t in shard["pending"].get(name, ())):
        return None
    return int(got[0]), int(got[1])


class IndexShards:
    """The shards of one store: read, changed with check-and-set, repaired. Thread-safe.

    Each shard last read or written by this object is kept, so a writer that holds the
    rotation lease usually writes a shard without reading it first.
    """

    def __init__(self, kv: KV) -> None:
        self.kv = kv
        self._lock = threading.Lock()
        self._shards: dict[str, tuple[dict[str, Any], int]] = {}
        self._locks: dict[str, threading.Lock] = {}
        #: entries to write later, per shard: name -> (rev, doc, created, mark)
        self._later: dict[str, dict[str, Later]] = {}
        #: high-water marks this object can vouch for: name -> (rev, issued, KV version)
        self._vouched: dict[str, tuple[int, int, int]] = {}

    def vouch_all(self, marks: Mapping[str, tuple[int, int, int]]) -> None:
        """Replace the marks this object vouches for by ``marks`` (name -> (rev, issued, KV
        version)): the copies in entries that :func:`verified` accepted against the ring
        listing, so each is the mark the write of that very KV version (same version number
        and ``created_time``) left."""
        with self._lock:
            self._vouched = dict(marks)

    def vouch(self, name: str, rev: int, mark: tuple[int, int]) -> None:
        """Vouch for the mark this process left with its own write of revision ``rev``."""
        with self._lock:
            self._vouched[name] = (rev, *mark)

    def vouched(self, name: str, rev: int) -> tuple[int, int] | None:
        """The mark ``(issued, KV version)`` of revision ``rev`` of ``name``, if vouched for:
        a commit on ``rev`` then needs no read of ``hw/<name>``. The mark can
        only have risen since through a commit of a later revision (then a commit on ``rev``
        loses its check-and-set anyway) or a re-created ring (another ``created_time``, so
        never vouched for)."""
        with self._lock:
            got = self._vouched.get(name)
        return (got[1], got[2]) if got is not None and got[0] == rev else None

    def put_later(
        self,
        shard_id: str,
        name: str,
        rev: int,
        doc: dict[str, Any],
        t: str,
        mark: tuple[int, int] | None = None,
    ) -> None:
        """Remember the entry of a commit, to write with the others of its shard by
        :meth:`flush_later` (a rotation run writes each shard once at its end, not once per
        ring; until then the entry is older than the ring listing says, so readers read the
        ring document)."""
        with self._lock:
            self._later.setdefault(shard_id, {})[name] = (rev, doc, t, mark)

    def flush_later(self, mapper: Callable[[Callable[[Any], Any], list[Any]], Any]) -> None:
        """Write the remembered entries, one check-and-set per shard (``mapper``: in
        parallel). A shard that cannot be written is left to the readers, who correct it."""
        with self._lock:
            later, self._later = self._later, {}

        def one(item: tuple[str, dict[str, Later]]) -> None:
            shard_id, entries = item

            def change(shard: dict[str, Any]) -> bool:
                changed = False
                for name, (rev, doc, t, mark) in entries.items():
                    changed = put_entry(shard, name, rev, doc, t, mark) or changed
                return changed

            try:
                self.update(shard_id, change)
            except StoreError as exc:
                log.warning("index shard %s not updated: %s", shard_id, exc)

        mapper(one, sorted(later.items()))

    def read(self, shard_id: str) -> tuple[dict[str, Any], int]:
        """``(shard, KV version)``; an absent or unreadable shard is empty (version 0 if absent)."""
        got = self.kv.read(f"{SHARD_PREFIX}{shard_id}", what=f"read index shard {shard_id}")
        shard, version = (empty(), 0) if got is None else (decode(got.data), got.version)
        with self._lock:
            self._shards[shard_id] = (shard, version)
        return shard, version

    def update(self, shard_id: str, change: Callable[[dict[str, Any]], bool]) -> None:
        """Apply ``change`` to the shard with check-and-set, re-reading and re-applying it
        after a lost check-and-set. ``change`` must be a monotonic merge (safe to re-apply
        on any later state of the shard); it returns whether it changed anything."""
        with self._lock:
            lock = self._locks.setdefault(shard_id, threading.Lock())
        path = f"{SHARD_PREFIX}{shard_id}"
        with lock:
            # the copy as the previous holder of the lock left it (threads of one run take
            # turns on a shard without re-reading it)
            with self._lock:
                cached = self._shards.get(shard_id)
            for attempt in range(_SHARD_RETRIES):
                shard, version = cached if cached is not None else self.read(shard_id)
                cached = None
                new = copy(shard)
                if not change(new):
                    return
                data = encode(new)
                try:
                    new_version = self.kv.cas_write(
                        path,
                        data,
                        cas=version,
                        what=f"write index shard {shard_id}",
                        ours=lambda d, data=data: d == data,  # type: ignore[misc]
                    )
                except ConflictError:
                    cas_backoff(attempt, first=0.002, cap=0.1)
                    continue
                with self._lock:
                    self._shards[shard_id] = (new, new_version)
                return
        raise ConflictError(f"index shard {shard_id} kept changing underneath")

    def repair(self, shard_id: str, entries: list[tuple[str, int, dict[str, Any], str]]) -> None:
        """Correct the entries ``(name, rev, doc, created)`` read from the ring documents
        (best effort)."""

        def change(shard: dict[str, Any]) -> bool:
            changed = False
            for name, rev, doc, t in entries:
                changed = correct(shard, name, rev, doc, t) or changed
            return changed

        try:
            self.update(shard_id, change)
        except StoreError as exc:  # read-only token, contention, outage: the docs are truth
            log.debug("index shard %s not repaired: %s", shard_id, exc)
