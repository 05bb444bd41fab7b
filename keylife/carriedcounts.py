"""Message counts carried by a backup, a restore and a migration.

A version's message count (:mod:`keylife.counters`) is what ``max_messages`` and the hard
limit of 2^32 AES-GCM messages per key are checked against. A restored or migrated store that
started its counts at zero would let a version encrypt its limit a second time, so the counts
travel with the rings: in an archive as ``"counts": [{"ring", "version", "messages"}]`` (absent
in archives made before counts existed: nothing is carried), and from store to store in a
migration. Only rings whose purpose takes nonces are counted (``policy.NONCE_PURPOSES``:
data-encryption and key-wrapping).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import BackupError
from .lifecycle import Ring
from .policy import NONCE_PURPOSES
from .store.base import KeyStore

__all__ = ["counts_from_archive", "counts_to_archive", "read_counts"]

Counts = dict[tuple[str, int], int]
_COUNTED = frozenset(p.value for p in NONCE_PURPOSES)


def read_counts(store: KeyStore, rings: Iterable[Ring]) -> Counts:
    """Every stored message count of ``rings``: ``{(ring, version): messages}``; read at once
    where the store can (Vault's ``encryption_counts_of``), else ring by ring."""
    counted = [r for r in rings if r.purpose in _COUNTED]
    many = getattr(store, "encryption_counts_of", None)
    names = [r.name for r in counted]
    by_ring = many(names) if many else {n: store.encryption_counts(n) for n in names}
    out: Counts = {}
    for ring in counted:
        known = {v.number for v in ring.versions}
        for number, messages in by_ring.get(ring.name, {}).items():
            if number in known and messages > 0:
                out[(ring.name, number)] = messages
    return out


def counts_to_archive(counts: Mapping[tuple[str, int], int]) -> list[dict[str, Any]]:
    """The archive form of ``counts``, in a stable order."""
    return [
        {"ring": ring, "version": number, "messages": messages}
        for (ring, number), messages in sorted(counts.items())
    ]


def counts_from_archive(rings: Sequence[Ring], items: object) -> Counts:
    """The counts of an archive's ``"counts"`` entry, checked against its ``rings``; None (an
    archive from before counts) carries nothing. Raises :class:`BackupError` naming the entry."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise BackupError("archive content is malformed: 'counts' is not a list")
    versions = {(r.name, v.number) for r in rings for v in r.versions}
    found: Counts = {}
    for i, item in enumerate(items, start=1):
        ring = item.get("ring") if isinstance(item, dict) else None
        number = item.get("version") if isinstance(item, dict) else None
        messages = item.get("messages") if isinstance(item, dict) else None
        if not (isinstance(ring, str) and type(number) is int and type(messages) is int):
            raise BackupError(
                f"archive count #{i} is malformed (needs ring, version and messages, integers)"
            )
        where = f"{ring[:80]!r} v{number}"
        if (ring, number) not in versions:
            raise BackupError(f"archive count #{i} refers to unknown version {where}")
        if messages <= 0:
            raise BackupError(f"archive count #{i} for {where} is {messages}; counts are > 0")
        if (ring, number) in found:
            raise BackupError(f"archive holds the count of {where} twice")
        found[(ring, number)] = messages
    return found
