"""Optional store capabilities for large stores (100,000 rings and more).

Neither is part of :class:`~keylife.store.base.KeyStore`: a store that lacks them works as
before, through the fallbacks here and in :mod:`keylife.rotation.schedule`.

- :class:`SchedulingStore`: the store remembers, per ring, that the planner found nothing due
  at a moment ``checked`` under a given planner digest (policy and planner code), and until when
  that provably stays so (``until``: the planner's next event, or a re-check horizon). A
  rotation run then loads only the rings without such a record; every other ring is provably
  not due. A record is only valid for the ring's revision it names: any commit (by this or an
  older keylife) or any change to the ring's material makes it void.
- :class:`RingIteratingStore`: rings read a page at a time, in name order, with a name prefix
  and a limit, so ``keylife key list`` streams without holding the whole store in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..lifecycle import Ring
from .base import KeyStore

__all__ = [
    "QuietRing",
    "RingIteratingStore",
    "RingsToPlan",
    "SchedulingStore",
    "iter_rings",
]


@dataclass(frozen=True)
class QuietRing:
    """Ring ``name`` at ``revision`` had nothing due at ``checked`` (planned under ``digest``,
    keys healthy); nothing falls due before ``until``. ``next_due``: the planner's next event."""

    name: str
    revision: int
    digest: str
    checked: dt.datetime
    until: dt.datetime
    next_due: dt.datetime | None


#: Rings a run holds in memory at once while it plans and checks a large store.
PLAN_PAGE = 512


@dataclass(frozen=True)
class RingsToPlan:
    """What a run must plan at a moment: the rings without a valid record (``names``, read a
    page at a time by ``load``: a run over a large store never holds them all), and the quiet
    rings by name with their next event (provably nothing due; not loaded)."""

    names: tuple[str, ...] = ()
    quiet: dict[str, dt.datetime | None] = field(default_factory=dict)
    load: Callable[[Sequence[str]], list[Ring]] | None = None

    def pages(self, size: int | None = None) -> Iterator[list[Ring]]:
        """The rings to plan, in name order, ``size`` (default :data:`PLAN_PAGE`) at a time,
        read afresh on each call."""
        size = size or PLAN_PAGE
        for start in range(0, len(self.names), size):
            assert self.load is not None
            yield self.load(self.names[start : start + size])

    @property
    def rings(self) -> list[Ring]:
        """Every ring to plan, loaded at once (small stores and tests)."""
        return [ring for page in self.pages() for ring in page]


@runtime_checkable
class SchedulingStore(Protocol):
    def rings_to_plan(self, digest: str, now: dt.datetime) -> RingsToPlan:
        """The rings without a record valid at ``now`` for ``digest`` (loaded, name order),
        and the others' next events. A record is valid when its revision is the ring's, its
        digest is ``digest``, and ``checked <= now < until``."""
        ...

    def remember_quiet(self, quiet: Sequence[QuietRing]) -> int:
        """Record ``quiet``; an entry whose ring is no longer at its revision is ignored.
        Returns how many were recorded."""
        ...


@runtime_checkable
class RingIteratingStore(Protocol):
    def iter_rings(self, *, prefix: str = "", limit: int | None = None) -> Iterator[Ring]:
        """Rings whose name starts with ``prefix``, in name order, at most ``limit``, read a
        page at a time."""
        ...


def iter_rings(store: KeyStore, *, prefix: str = "", limit: int | None = None) -> Iterator[Ring]:
    """``store``'s rings in name order (``prefix``, ``limit``): a page at a time when the store
    can, else from :meth:`~keylife.store.base.KeyStore.load_rings`."""
    if isinstance(store, RingIteratingStore):
        yield from store.iter_rings(prefix=prefix, limit=limit)
        return
    if limit is not None and limit <= 0:
        return
    count = 0
    for ring in sorted(store.load_rings(), key=lambda r: r.name):
        if not ring.name.startswith(prefix):
            continue
        yield ring
        count += 1
        if limit is not None and count >= limit:
            return
