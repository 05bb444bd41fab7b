"""Per-version encryption counts on Vault / OpenBao: one counter document per ring.

``M/cnt/<ring>`` = ``{"v": 1, "counts": {"<version>": N, ...}, "tx": "<random>"}``: messages
encrypted per version of the ring (:mod:`keylife.counters`). Adding is a read and a
check-and-set write of that document, retried (random back-off) when another process added at
the same time, so no addition is lost and a flush costs two requests per ring it touches.
``tx`` makes every write's content unique, so a write whose answer was lost is recognised as
ours (or not) when read back. Where that cannot be told (another write came after it), or a
flush fails after some of its rings were written, the next flush adds those again: on Vault a
count may run high by a batch, which only makes the rotation come earlier, never low.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..contention import cas_backoff
from ..errors import ConflictError, IntegrityError
from .client import q
from .kv import KV

__all__ = ["CNT_PREFIX", "VaultCounts", "add_counts", "parse_counts", "read_counts"]

CNT_PREFIX = "cnt/"
_RETRIES = 10


def parse_counts(data: Any, where: str) -> dict[int, int]:
    """The counts in a counter document, or :class:`IntegrityError` naming ``where``."""
    counts = data.get("counts") if isinstance(data, Mapping) else None
    bad = IntegrityError(
        f"the encryption counter document {where} is malformed; delete it (counting restarts "
        "from zero, so rotate the ring) or restore it from its KV history"
    )
    if not isinstance(counts, Mapping):
        raise bad
    out: dict[int, int] = {}
    for key, value in counts.items():
        if not isinstance(key, str) or not key.isascii() or not key.isdigit() or len(key) > 10:
            raise bad
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad
        out[int(key)] = value
    return out


def read_counts(kv: KV, ring: str) -> tuple[dict[int, int], int]:
    """``(counts per version, KV version of the document)``; ``({}, 0)`` when there is none."""
    path = f"{CNT_PREFIX}{q(ring)}"
    got = kv.read(path, what=f"read the encryption counts of {ring}")
    if got is None:
        return {}, 0
    return parse_counts(got.data, f"{kv.mount}/{path}"), got.version


def add_counts(kv: KV, ring: str, add: Mapping[int, int]) -> dict[int, int]:
    """Add ``add`` (per version) to ring ``ring``'s counter document; the new counts."""
    path = f"{CNT_PREFIX}{q(ring)}"
    for attempt in range(_RETRIES):
        counts, version = read_counts(kv, ring)
        for number, n in add.items():
            counts[number] = counts.get(number, 0) + n
        data = {
            "v": 1,
            "counts": {str(v): n for v, n in sorted(counts.items())},
            "tx": secrets.token_hex(8),
        }
        try:
            kv.cas_write(
                path,
                data,
                cas=version,
                what=f"add to the encryption counts of {ring}",
                ours=lambda d, data=data: d == data,  # type: ignore[misc]
            )
        except ConflictError:
            cas_backoff(attempt, first=0.002)
            continue
        return counts
    raise ConflictError(f"the encryption counts of ring {ring} kept changing underneath")


class VaultCounts:
    """The encryption-count part of :class:`~keylife.vault.store.VaultKeyStore`."""

    kv: KV
    map: Callable[[Callable[[Any], Any], Iterable[Any]], list[Any]]

    def add_encryptions(self, counts: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        by_ring: dict[str, dict[int, int]] = {}
        for (ring, version), n in counts.items():
            if n > 0:
                by_ring.setdefault(ring, {})[int(version)] = int(n)
        totals: dict[tuple[str, int], int] = {}
        for ring, add in sorted(by_ring.items()):
            new = add_counts(self.kv, ring, add)
            totals.update({(ring, v): new[v] for v in add})
        return totals

    def encryption_counts(self, ring: str) -> dict[int, int]:
        return read_counts(self.kv, ring)[0]

    def encryption_counts_of(self, rings: Sequence[str]) -> dict[str, dict[int, int]]:
        """The counts of every ring in ``rings`` at once (a planning pass over a fleet): one
        listing of the counter documents, then the existing ones read in parallel; a ring
        without a document has ``{}``."""
        present = set(self.kv.list(CNT_PREFIX, what="list the encryption counters"))
        names = [r for r in rings if q(r) in present]
        found = self.map(lambda name: read_counts(self.kv, name)[0], names)
        by_name = dict(zip(names, found, strict=True))
        return {r: by_name.get(r, {}) for r in rings}
