"""Per-ring high-water marks: a version number is never issued twice, whatever the ring says.

``M/hw/<ring>`` = ``{"v": 1, "issued": N}``: the highest version number any committed document
of the ring has issued (its ``next_version - 1``); ``"deleted": true`` is added once ``keylife
key delete`` removed the ring (the name is then never created again). It is kept apart from the
ring document and checked at every commit (:meth:`HighWater.check`): when the document a writer
starts from issued fewer versions than the mark, the ring's document went backwards (an older
KV version's content written back) and the commit is refused with :class:`IntegrityError`
naming the ring and "rolled back", until an operator restores the newest document
(docs/vault.md, "A ring that was rolled back"). The mark is raised after the commit point
(:meth:`raise_to`); a crash in between leaves it low, which only delays detection to the next
commit.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConflictError, IntegrityError
from ..store.base import deleted_ring_error
from .client import q
from .kv import KV

__all__ = ["HW_PREFIX", "HighWater", "issued_by"]

HW_PREFIX = "hw/"


def issued_by(doc: Mapping[str, Any] | None) -> int:
    """The highest version number a stored ring document has issued (0: none, or no doc)."""
    ring = doc.get("ring") if isinstance(doc, Mapping) else None
    if isinstance(ring, str):  # the ring document travels as JSON text
        try:
            ring = json.loads(ring)
        except ValueError:
            ring = None
    nxt = ring.get("next_version") if isinstance(ring, Mapping) else None
    return nxt - 1 if isinstance(nxt, int) and not isinstance(nxt, bool) and nxt > 1 else 0


class HighWater:
    """The high-water marks under one KV mount."""

    def __init__(self, kv: KV) -> None:
        self.kv = kv

    def read(self, ring: str) -> tuple[int, int]:
        """``(issued, KV version of the mark)``; ``(0, 0)`` when there is none."""
        issued, version, _deleted = self.read_mark(ring)
        return issued, version

    def read_mark(self, ring: str) -> tuple[int, int, bool]:
        """``(issued, KV version of the mark, whether the ring was deleted)``."""
        got = self.kv.read(f"{HW_PREFIX}{q(ring)}", what=f"read the high-water mark of {ring}")
        if got is None:
            return 0, 0, False
        issued = got.data.get("issued")
        if not isinstance(issued, int) or isinstance(issued, bool) or issued < 0:
            raise IntegrityError(
                f"the high-water mark {self.kv.mount}/{HW_PREFIX}{ring} of ring {ring} is "
                "malformed; restore it from its KV history (docs/vault.md)"
            )
        return issued, got.version, got.data.get("deleted") is True

    def mark_deleted(self, ring: str, issued: int) -> None:
        """Record on the mark that ``ring`` (which issued up to v``issued``) was deleted: its
        name is never created again (:meth:`check`) and the mark stays."""
        for _ in range(3):
            old, version, deleted = self.read_mark(ring)
            if deleted:
                return
            doc = {"v": 1, "issued": max(old, issued), "deleted": True}
            try:
                self.kv.cas_write(
                    f"{HW_PREFIX}{q(ring)}",
                    doc,
                    cas=version,
                    what=f"mark ring {ring} deleted on its high-water mark",
                    ours=lambda d, doc=doc: d == doc,  # type: ignore[misc]
                )
                return
            except ConflictError:
                continue
        raise ConflictError(f"the high-water mark of ring {ring} kept changing underneath")

    def rolled_back(self, ring: str, where: str, have: int, issued: int) -> str:
        """What is wrong with a ring whose document (``where``) issued only up to ``have``."""
        return (
            f"ring {ring} was rolled back: its document ({where}) issued versions up to "
            f"v{have}, but v{issued} was already issued (high-water mark "
            f"{self.kv.mount}/{HW_PREFIX}{ring}); restore the newest ring document, see "
            "docs/vault.md 'A ring that was rolled back'"
        )

    def damage(self, ring: str, doc: Mapping[str, Any], rev: int) -> str:
        """Empty when ``doc`` (revision ``rev``) issued at least the ring's mark, else why not."""
        try:
            issued, _version = self.read(ring)
        except IntegrityError as exc:
            return str(exc)
        have = issued_by(doc)
        return "" if have >= issued else self.rolled_back(ring, f"revision {rev}", have, issued)

    def check(
        self,
        ring: str,
        base: Mapping[str, Any] | None,
        base_rev: int,
        current_rev: Callable[[], int],
        known: tuple[int, int] | None = None,
    ) -> tuple[int, int]:
        """Refuse a commit on ``base`` (revision ``base_rev``) that issued fewer versions than
        the ring's mark, when ``base`` is the ring's current document (``current_rev()``, read
        only then; a stale base is a :class:`ConflictError`). Returns the mark (``issued``,
        KV version) for :meth:`raise_to`. ``known``: the mark of ``base_rev`` this process
        vouches for (:meth:`keylife.vault.index.IndexShards.vouched`), instead of reading
        it; a new ring (``base_rev`` 0) always reads the mark, which also says whether the
        name was deleted."""
        if known is not None and base_rev != 0:
            issued, version = known
        else:
            issued, version, deleted = self.read_mark(ring)
            if deleted and base_rev == 0:
                raise deleted_ring_error(ring)
        have = issued_by(base)
        if have < issued:
            if current_rev() != base_rev:
                raise ConflictError(
                    f"ring {ring} changed underneath (expected revision {base_rev})"
                )
            where = f"revision {base_rev}" if base_rev else "a new ring of that name"
            raise IntegrityError(self.rolled_back(ring, where, have, issued))
        return issued, version

    def raise_to(self, ring: str, issued: int, mark: tuple[int, int]) -> tuple[int, int] | None:
        """Raise the mark to ``issued`` (no-op when it is already that high). A lost
        check-and-set is re-read once; a mark another writer raised higher stays. Returns the
        mark as it now stands (``(issued, KV version)``), None when that is not known."""
        old, version = mark
        for _ in range(2):
            if issued <= old:
                return old, version
            doc = {"v": 1, "issued": issued}
            try:
                return issued, self.kv.cas_write(
                    f"{HW_PREFIX}{q(ring)}",
                    doc,
                    cas=version,
                    what=f"raise the high-water mark of {ring}",
                    ours=lambda d, doc=doc: d == doc,  # type: ignore[misc]
                )
            except ConflictError:
                with contextlib.suppress(IntegrityError):
                    old, version = self.read(ring)
        return None
