"""Applying independent rings on several threads under the runner's one lease.

:func:`apply_rings` hands rings to at most ``concurrency`` threads, in plan order. Each ring is
settled by one thread (re-planned and applied step by step, every write a check-and-set), so
what the sequential runner guarantees per ring holds per ring here; rings share nothing but the
store, whose writes are thread-safe (the Vault store batches what threads send at once: audit
appends, Transit calls). Between rings, on the calling thread: the stop check (deadline,
SIGTERM/SIGINT, a store outage seen by any thread) and the lease renewal. Once a stop is
seen, rings in flight finish (their commits complete) and no new ring starts: each is
reported ``skipped``, "not attempted", by name.

With ``concurrency`` 1 the rings run on the calling thread, one after the other, exactly as
before (the default for the embedded SQLite store, which serialises writers anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from ..errors import KeylifeError, StoreUnavailableError
from .results import RingResult

__all__ = ["MAX_CONCURRENCY", "apply_rings", "check_concurrency", "map_rings"]

log = logging.getLogger("keylife.rotate")

#: more threads than this only queue behind Vault's own limits (and the client's CPU)
MAX_CONCURRENCY = 256
#: how often the calling thread looks at the stop check while it waits for a ring
_POLL = 0.25

T = TypeVar("T")
R = TypeVar("R")


def check_concurrency(value: object) -> int:
    """``value`` as a thread count, or a :class:`KeylifeError` that says what is allowed."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise KeylifeError(
            f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY} (rings applied at "
            f"once; default 16 on Vault, 1 on the embedded store), not {value!r}"
        )
    return value


def map_rings(fn: Callable[[T], R], items: Sequence[T], concurrency: int) -> list[R]:
    """``[fn(i) for i in items]`` on up to ``concurrency`` threads (in order)."""
    if concurrency <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(min(concurrency, len(items)), thread_name_prefix="keylife-rotate") as p:
        return list(p.map(fn, items))


def apply_rings(
    names: Iterable[str],
    run_one: Callable[[str], RingResult],
    *,
    concurrency: int,
    stop: Callable[[], str],
    renew: Callable[[], None],
    progress: Callable[[str], None] | None = None,
) -> tuple[list[RingResult], str]:
    """Settle each ring with ``run_one``; returns the results in the order of ``names`` and
    why the run stopped early ("" when it did not).

    ``run_one`` fails its own ring on any error but a store outage
    (:class:`StoreUnavailableError`), which stops the run: that ring is reported failed,
    rings not yet started are skipped. ``stop()`` gives a reason to stop ("" to go on);
    ``renew()`` keeps the lease (an outage there stops the run too).
    """
    order = list(names)
    results: dict[str, RingResult] = {}
    aborted = ""
    inflight: dict[Future[RingResult], str] = {}

    def outage(name: str, exc: StoreUnavailableError) -> None:
        nonlocal aborted
        # Not this ring's fault: stop here rather than fail every remaining ring.
        log.error("store unavailable, stopping the run: %s", exc)
        aborted = aborted or str(exc)
        results[name] = RingResult(name, "failed", error=str(exc))

    def collect(done: Iterable[Future[RingResult]]) -> None:
        for fut in done:
            name = inflight.pop(fut)
            try:
                results[name] = fut.result()
            except StoreUnavailableError as exc:
                outage(name, exc)
            if progress is not None:
                progress(name)

    pool = (
        ThreadPoolExecutor(concurrency, thread_name_prefix="keylife-rotate")
        if concurrency > 1
        else None
    )
    try:
        for name in order:
            while len(inflight) >= concurrency:
                collect(wait(inflight, timeout=_POLL, return_when=FIRST_COMPLETED)[0])
            aborted = aborted or stop()
            if aborted:
                results[name] = RingResult(name, "skipped", error="not attempted: " + aborted)
                continue
            try:
                renew()
            except StoreUnavailableError as exc:
                outage(name, exc)
                continue
            if pool is not None:
                inflight[pool.submit(run_one, name)] = name
                continue
            try:
                results[name] = run_one(name)
            except StoreUnavailableError as exc:
                outage(name, exc)
            if progress is not None:
                progress(name)
        while inflight:  # in-flight rings finish, whatever stopped the run
            collect(wait(inflight, timeout=_POLL, return_when=FIRST_COMPLETED)[0])
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return [results[n] for n in order], aborted
