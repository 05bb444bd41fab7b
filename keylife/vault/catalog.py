"""Which rings exist and their documents, read through the index without trusting it.

- :func:`ring_listing`: every ring's current KV version and that version's ``created_time``,
  in one ``detailed-metadata`` listing (OpenBao); on a server without that endpoint, the names
  only. An empty listing where the store's marker (``M/marker``) says rings were written is
  an error, not an empty store.
- :func:`load_docs`: the documents, from the index shards where an entry is verified against
  the listing and decodes, else from ``rings/<name>`` (one read each, and one of its
  high-water mark: a ring that went backwards is returned damaged); the entries of rings read
  directly are corrected.
- :func:`reindex`: rebuild every shard from the ring documents (``keylife vault reindex``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from ..errors import (
    ConflictError,
    CorruptRecordError,
    StoreUnavailableError,
    VaultPermissionError,
)
from ..lifecycle import Ring, decode_ring, ring_from_stored
from . import index as ix
from .client import q
from .highwater import HighWater
from .kv import KV

__all__ = ["MARKER", "Listing", "load_docs", "mark_has_rings", "reindex", "ring_listing"]

log = logging.getLogger("keylife.vault")

#: ``{"v": 1, "rings": true}`` once a ring was written: an empty ring list is then an error
MARKER = "marker"

#: ring name -> (current KV version, its created_time), or (0, "") when not known
Listing = dict[str, tuple[int, str]]
Doc = tuple[int, dict[str, Any], str]
Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], list[Any]]


def marker_says_rings(kv: KV) -> bool:
    got = kv.read(MARKER, what="read the store marker")
    return got is not None and got.data.get("rings") is True


def mark_has_rings(kv: KV) -> None:
    """Record in the store marker that rings exist."""
    got = kv.read(MARKER, what="read the store marker")
    if got is not None and got.data.get("rings") is True:
        return
    with contextlib.suppress(ConflictError):  # someone else wrote it meanwhile
        kv.cas_write(
            MARKER,
            {"v": 1, "rings": True},
            cas=0 if got is None else got.version,
            what="write the store marker",
            ours=lambda d: d.get("rings") is True,
        )


def ring_listing(kv: KV) -> Listing:
    """Every ring with its current KV version and that version's ``created_time``."""
    deleted: set[str] = set()  # rings deleted by `keylife key delete`: not listed
    try:
        listing = kv.list_versions("rings/", what="list rings", deleted=deleted)
    except VaultPermissionError:  # an operator policy from before keylife used the listing
        log.warning(
            "the token may not list %s/detailed-metadata/: every ring is read directly; "
            "rewrite the operator policy (keylife vault setup)",
            kv.mount,
        )
        listing = None
    if listing is None:  # no detailed-metadata: names only, nothing verifiable
        listing = {k: (0, "") for k in kv.list("rings/", what="list rings") if not k.endswith("/")}
    if not listing and not deleted and marker_says_rings(kv):
        raise StoreUnavailableError(
            f"Vault unavailable: {kv.client.address} answered that there are no rings under "
            f"{kv.mount}/rings/, but the store's marker {kv.mount}/{MARKER} says rings were "
            "written; keylife does not take that for an empty store (see docs/vault.md, "
            "'What keylife detects')"
        )
    return listing


def _decoded(name: str, doc: dict[str, Any], rev: int) -> Ring | None:
    """The ring in an index entry's document, or None when it does not decode as ``name``."""
    try:
        ring = ring_from_stored(doc.get("ring"), rev, name)
    except CorruptRecordError:
        return None
    return ring if isinstance(doc.get("mat", {}), dict) else None


def load_docs(
    kv: KV,
    shards: ix.IndexShards,
    listing: Listing,
    load_doc: Callable[[str], Doc | None],
    mapper: Mapper,
    marks: HighWater,
) -> dict[str, tuple[int, dict[str, Any], Ring | None]]:
    """``{name: (revision, document, ring)}`` for every ring in ``listing``; ``ring`` is the
    decoded ring of an index entry, or a damaged ring for a ring read directly whose document
    went back below its high-water mark (None for other rings read directly: the caller
    decodes them)."""
    names = sorted(listing)
    shard_ids = sorted({ix.shard_of(n) for n in names})
    read = dict(zip(shard_ids, mapper(shards.read, shard_ids), strict=True))
    docs: dict[str, tuple[int, dict[str, Any], Ring | None]] = {}
    direct: list[str] = []
    vouched: dict[str, tuple[int, int, int]] = {}
    for name in names:
        shard = read[ix.shard_of(name)][0]
        got = ix.verified(shard, name, *listing[name])
        ring = None if got is None else _decoded(name, got[1], got[0])
        if got is None or ring is None:
            direct.append(name)
            continue
        docs[name] = (got[0], got[1], ring)
        mark = ix.mark_for(shard, name, got[0])
        if mark is not None:
            vouched[name] = (got[0], *mark)
    shards.vouch_all(vouched)

    def read_direct(name: str) -> tuple[Doc | None, str]:
        fresh = load_doc(name)
        return fresh, "" if fresh is None else marks.damage(name, fresh[1], fresh[0])

    repairs: dict[str, list[tuple[str, int, dict[str, Any], str]]] = {}
    for name, (fresh, damage) in zip(direct, mapper(read_direct, direct), strict=True):
        if fresh is None:
            continue
        if damage:  # rolled back: shown damaged, and not indexed, until an operator resolves it
            docs[name] = (
                fresh[0],
                fresh[1],
                replace(decode_ring(None, fresh[0], name), damage=damage),
            )
            continue
        docs[name] = (fresh[0], fresh[1], None)
        repairs.setdefault(ix.shard_of(name), []).append((name, *fresh))
    if repairs:
        mapper(lambda item: shards.repair(*item), list(repairs.items()))
    return docs


def reindex(kv: KV, shards: ix.IndexShards, mapper: Mapper) -> dict[str, int]:
    """Rebuild every shard from the ring documents: entries of rings that no longer exist and
    tokens of writes cut short are dropped. Returns ``{"rings": n, "shards": m}``."""
    names = sorted(ring_listing(kv))

    def one(name: str) -> tuple[str, Any]:
        return name, kv.read(f"rings/{q(name)}", what=f"read ring {name}")

    built: dict[str, dict[str, Any]] = {}
    for name, got in mapper(one, names):
        if got is not None:
            shard = built.setdefault(ix.shard_of(name), ix.empty())
            shard["rings"][name] = {"rev": got.version, "doc": got.data, "t": got.created}
    existing = {k.rstrip("/") for k in kv.list(ix.SHARD_PREFIX, what="list index shards")}
    for shard_id in sorted(existing - set(built)):
        built[shard_id] = ix.empty()

    def write(item: tuple[str, dict[str, Any]]) -> None:
        shard_id, new = item

        def change(shard: dict[str, Any]) -> bool:
            return _replace(shard, new)

        shards.update(shard_id, change)

    mapper(write, sorted(built.items()))
    return {"rings": sum(len(s["rings"]) for s in built.values()), "shards": len(built)}


def _replace(shard: dict[str, Any], new: dict[str, Any]) -> bool:
    """Replace the shard's entries by ``new``'s; tokens newer than the rebuilt entries stay
    (a write in flight during the rebuild keeps readers on its ring)."""
    pending = {
        name: [t for t in tokens if int(t["base"]) >= ix.entry_rev(new, name)]
        for name, tokens in shard["pending"].items()
    }
    kept = {k: v for k, v in pending.items() if v}
    after = {"v": 1, "rings": dict(new["rings"]), "pending": kept}
    if after == shard:
        return False
    shard.clear()
    shard.update(after)
    return True
