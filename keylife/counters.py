"""Per-version encryption counters: how many messages each key version encrypted under a random
nonce, counted in memory and added to the store in batches.

AES-GCM (and ChaCha20-Poly1305) with random 96-bit nonces is safe for at most 2**32 messages
per key (NIST SP 800-38D §8.3, :data:`~keylife.policy.MESSAGE_LIMIT`). Everything a ring does
that draws a random nonce or salt under a version counts one message for it: ``encrypt``,
``wrap`` on AES rings (so ``data_key`` and ``rewrap`` too) and each ``encrypt_stream``. The
planner rotates a ring when its primary reaches the purpose's ``max_messages``
(:mod:`keylife.rotation.plan`); past :data:`HARD_LIMIT` the version refuses to encrypt
(:class:`~keylife.errors.MessageLimitError`).

**Counting** costs one C call per message: a version's :class:`Counter` holds an
``itertools.count`` (``next(counter.messages)``), which the GIL advances atomically, so threads
never lose a count and take no lock. **Flushing** adds what a process counted to the store
(``KeyStore.add_encryptions``: ``count = count + n``, so processes add up) when a version's
count since the last flush reaches :data:`FLUSH_EVERY`, when a ring is used again after
:data:`FLUSH_INTERVAL` seconds, and when the manager is closed (or the interpreter exits).

**The bound.** Counts are approximate, never high by more than refused messages: a process
that dies without closing its manager (killed, power loss) loses what it counted since its
last flush, one batch: at most :data:`FLUSH_EVERY` - 1 messages per version, and no more than
it encrypted in the last ~6 seconds of use (the interval, plus up to a second before a cached
ring looks again), plus whatever it encrypted while the store could not be reached (a failed
flush keeps its counts and retries). The default ``max_messages`` (2**31, half the limit)
leaves room for 2,048 such crashes per version at the highest rates. A flush costs a store
write (some 3 ms on SQLite with its fsync; a read and a check-and-set write per ring on
Vault), about 3 ns per message at :data:`FLUSH_EVERY`.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Container, Sequence
from typing import Any

from .errors import KeylifeError, MessageLimitError
from .lifecycle import Ring
from .policy import MESSAGE_LIMIT, Policy, Purpose
from .store.base import KeyStore

__all__ = [
    "FLUSH_EVERY",
    "FLUSH_INTERVAL",
    "HARD_LIMIT",
    "Counter",
    "Tally",
    "close",
    "counts_for",
    "prefetch_counts",
    "tally",
]

log = logging.getLogger("keylife.counters")

#: Messages per version between flushes: what a crash can lose, per version and process.
FLUSH_EVERY = 1 << 20
#: Seconds after which the next use of a ring flushes what was counted.
FLUSH_INTERVAL = 5.0
#: Messages after which a version refuses to encrypt (NIST SP 800-38D, 2**32).
HARD_LIMIT = MESSAGE_LIMIT


class Counter:
    """One version's messages in this process.

    ``next(counter.messages)`` counts one message and returns the process's count so far; when
    it reaches ``check_at`` the caller asks :meth:`Tally.reached` (which flushes and checks the
    limit).
    """

    __slots__ = ("check_at", "flushed", "key", "messages", "refused", "stored")

    def __init__(self, key: tuple[str, int]) -> None:
        self.key = key
        self.messages = itertools.count(1)
        #: this process's count already added to the store
        self.flushed = 0
        #: the store's total (every process) as of this process's last flush
        self.stored = 0
        self.check_at = FLUSH_EVERY
        self.refused = False

    def value(self) -> int:
        """This process's count so far (reads the counter without counting)."""
        # itertools.count has no reader; its repr is "count(N)", N the next value it returns
        return int(repr(self.messages)[6:-1]) - 1

    def total(self) -> int:
        """The best known total: the store's as of the last flush plus what was not flushed."""
        return self.stored + self.value() - self.flushed

    def rearm(self) -> None:
        """Ask again after :data:`FLUSH_EVERY` more messages, or where the total would pass
        :data:`HARD_LIMIT`, whichever comes first."""
        self.check_at = self.flushed + min(FLUSH_EVERY, max(HARD_LIMIT - self.stored + 1, 0))

    def __repr__(self) -> str:
        return f"<Counter {self.key[0]} v{self.key[1]}: {self.value()} here, {self.stored} stored>"


class Tally:
    """The counters of every version used through one store object."""

    def __init__(self, store: Any, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = weakref.ref(store)
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._counters: dict[tuple[str, int], Counter] = {}
        self.next_flush = monotonic() + FLUSH_INTERVAL

    def counter(self, ring: str, version: int) -> Counter:
        """The counter of ``ring`` v``version``; a new one starts from the store's total."""
        key = (ring, version)
        found = self._counters.get(key)
        if found is not None:
            return found
        new = Counter(key)
        store = self._store()
        try:
            new.stored = 0 if store is None else store.encryption_counts(ring).get(version, 0)
        except KeylifeError as exc:
            log.warning("encryption counts of %s not read (counting from zero): %s", ring, exc)
        new.rearm()
        with self._lock:
            return self._counters.setdefault(key, new)

    def count(self, ring: str, version: int) -> None:
        """Count one message of ``ring`` v``version`` (off the fast path: wraps, streams)."""
        c = self.counter(ring, version)
        if next(c.messages) >= c.check_at:
            self.reached(c)
        self.maybe_flush()

    def flush(self, *, wait: bool = True) -> None:
        """Add every count not yet in the store to it, in one ``add_encryptions`` call
        (``wait=False``: not if another thread is flushing now)."""
        if not self._flush_lock.acquire(blocking=wait):
            return
        try:
            self._flush()
        finally:
            self._flush_lock.release()

    def _flush(self) -> None:
        store = self._store()
        with self._lock:
            counters = list(self._counters.values())
        taken = [(c, c.value()) for c in counters]
        pending = {c.key: v - c.flushed for c, v in taken if v > c.flushed}
        self.next_flush = self.monotonic() + FLUSH_INTERVAL
        if not pending or store is None:
            return
        totals = store.add_encryptions(pending)
        for c, v in taken:
            if c.key in pending:
                c.stored = max(c.stored + pending[c.key], totals.get(c.key, 0))
                c.flushed = v
                c.rearm()

    def flush_quietly(self) -> None:
        """:meth:`flush`, a store failure logged (the counts stay here for the next flush)."""
        try:
            self.flush(wait=False)
        except KeylifeError as exc:
            log.warning("encryption counts not stored yet, kept for the next flush: %s", exc)

    def maybe_flush(self) -> None:
        if self.monotonic() >= self.next_flush:
            self.flush_quietly()

    def reached(self, c: Counter) -> None:
        """``c`` reached its ``check_at``: flush, then refuse the message if it would pass
        :data:`HARD_LIMIT` (counted by every process that flushed)."""
        if not c.refused and c.total() <= HARD_LIMIT:
            self.flush_quietly()
        total = c.total()
        if c.refused or total > HARD_LIMIT:
            c.refused = True
            ring, version = c.key
            raise MessageLimitError(
                f"ring {ring} v{version} has encrypted {min(total, HARD_LIMIT)} messages, as many "
                f"as random nonces allow ({HARD_LIMIT}, NIST SP 800-38D); rotate the ring "
                "(`keylife rotate` does at the policy's max_messages)",
                ring=ring,
                version=version,
                count=total,
            )
        if c.check_at <= c.value():  # the flush failed: ask again after another batch
            c.check_at = c.value() + min(FLUSH_EVERY, max(HARD_LIMIT - total, 1))


def _counted(policy: Policy, ring: Ring) -> bool:
    """Whether the planner needs ``ring``'s counts: its purpose sets ``max_messages``."""
    try:
        rules = policy.rules(Purpose(ring.purpose))
    except ValueError:
        return False
    return rules.max_messages is not None and not ring.damage


def counts_for(store: KeyStore, policy: Policy, ring: Ring) -> dict[int, int]:
    """The store's message counts of ``ring`` when its purpose sets ``max_messages`` (else
    {}, without asking the store): what the planner's rule 9 needs."""
    return store.encryption_counts(ring.name) if _counted(policy, ring) else {}


def prefetch_counts(
    store: KeyStore, policy: Policy, rings: Sequence[Ring], *, known: Container[str] = ()
) -> dict[str, dict[int, int]]:
    """What :func:`counts_for` would give for each counted ring of ``rings`` not in ``known``,
    read at once where the store can (Vault: a listing and parallel reads instead of one read
    per ring in turn); {} where it cannot (the embedded store reads its counts in
    microseconds)."""
    many = getattr(store, "encryption_counts_of", None)
    wanted = [r.name for r in rings if r.name not in known and _counted(policy, r)]
    if many is None or not wanted:
        return {}
    return dict(many(wanted))


_TALLIES: weakref.WeakKeyDictionary[Any, Tally] = weakref.WeakKeyDictionary()
_TALLIES_LOCK = threading.Lock()


def tally(store: Any) -> Tally:
    """The tally of ``store`` (one per store object, shared by every manager using it)."""
    found = _TALLIES.get(store)
    if found is None:
        with _TALLIES_LOCK:
            found = _TALLIES.get(store)
            if found is None:
                found = _TALLIES[store] = Tally(store)
    return found


def close(store: Any) -> None:
    """Flush ``store``'s counts (before the store closes); a failure is logged."""
    with _TALLIES_LOCK:
        found = _TALLIES.pop(store, None)
    if found is not None:
        try:
            found.flush()  # waits for a flush another thread started: the tally goes after
        except KeylifeError as exc:
            log.warning("encryption counts not stored when the store closed: %s", exc)


@atexit.register
def _flush_all() -> None:
    """At interpreter exit, flush what open managers counted (best effort)."""
    with _TALLIES_LOCK:
        tallies = list(_TALLIES.values())
    for t in tallies:
        try:
            t.flush()
        except Exception:  # the store may be closed or gone at exit
            log.debug("encryption counts not flushed at exit", exc_info=True)
