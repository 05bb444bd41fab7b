"""Group commit for callers on several threads: one request carries what they all asked for.

:class:`Coalescer` hands items submitted concurrently to one ``flush`` at a time: the first
caller flushes at once (a lone caller waits for nobody); callers that arrive while a flush is
in flight queue up and go together in the next one, led by the first of them. Used by the Vault
store for Transit encrypt/decrypt (``batch_input``) and by the audit chain (one check-and-set
on ``audit-head`` for many ring commits), so concurrent rotation costs one request where the
sequential runner made one per ring.

:class:`TransitBatcher` is the Transit half: encrypt and decrypt of the store's wrapping key,
each coalesced, each item with its own derivation context. One item's failure (an altered
blob) fails that item only (``partial_failure_response_code``).
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from ..errors import IntegrityError, StoreError, StoreUnavailableError
from .client import b64, q
from .transit import Transit

__all__ = ["Coalescer", "TransitBatcher"]

T = TypeVar("T")
R = TypeVar("R")

#: How long a queued caller waits for the flush that carries its item (each flush has its
#: own Vault deadline; this bounds the wait should the leading thread never come back).
WAIT_LIMIT = 900.0


class _Slot(Generic[T, R]):
    __slots__ = ("done", "error", "item", "lead", "value", "wake")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False
        #: set when the result is in, or when this caller is handed the lead
        self.wake = threading.Event()
        self.lead = False
        self.value: R | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[T, R]):
    """``submit(item)`` returns ``flush([..., item, ...])``'s result for ``item``.

    ``flush`` gets up to ``max_batch`` items and returns one result per item, in order; a
    result that is an exception is raised in that item's caller; an exception ``flush`` raises
    is raised in every caller of the batch.
    """

    def __init__(
        self, flush: Callable[[list[T]], Sequence[R | BaseException]], *, max_batch: int = 32
    ) -> None:
        self._flush = flush
        self._max = max(1, max_batch)
        self._lock = threading.Lock()
        self._queue: list[_Slot[T, R]] = []
        self._busy = False

    def submit(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            slot.lead = not self._busy
            self._busy = True
        if not slot.lead and not slot.wake.wait(WAIT_LIMIT):
            raise StoreUnavailableError(
                f"Vault unavailable: a batched request waited over {WAIT_LIMIT:g} s"
            )
        if slot.lead:  # first caller, or handed the lead by the previous leader
            self._lead(slot)
        if slot.error is not None:
            raise slot.error
        return slot.value  # type: ignore[return-value]

    def _lead(self, own: _Slot[T, R]) -> None:
        """Flush batches until ``own`` is done, then hand the lead to the next queued caller."""
        while not own.done:
            with self._lock:
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            self._run(batch)
        with self._lock:
            if self._queue:
                nxt = self._queue[0]
                nxt.lead = True
                nxt.wake.set()  # it sees ``lead`` and flushes
            else:
                self._busy = False

    def _run(self, batch: list[_Slot[T, R]]) -> None:
        try:
            results = list(self._flush([s.item for s in batch]))
            if len(results) != len(batch):
                raise StoreError(f"a batch of {len(batch)} returned {len(results)} results")
        except BaseException as exc:  # every caller of the batch sees it
            results = [exc] * len(batch)
        for slot, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                slot.error = result
            else:
                slot.value = result
            slot.lead = False
            slot.done = True
            slot.wake.set()


class TransitBatcher:
    """Encrypt and decrypt with one Transit key, coalescing concurrent callers."""

    def __init__(self, transit: Transit, key: str, *, max_batch: int = 32) -> None:
        self.transit = transit
        self.key = key
        self._enc: Coalescer[tuple[bytes, bytes, str], str] = Coalescer(
            self._encrypt_many, max_batch=max_batch
        )
        self._dec: Coalescer[tuple[str, bytes, str], bytes] = Coalescer(
            self._decrypt_many, max_batch=max_batch
        )

    def encrypt(self, plaintext: bytes, ctx: bytes, *, what: str) -> str:
        return self._enc.submit((plaintext, ctx, what))

    def decrypt(self, ciphertext: str, ctx: bytes, *, what: str) -> bytes:
        """The plaintext; a ciphertext that fails its check raises :class:`IntegrityError`."""
        return self._dec.submit((ciphertext, ctx, what))

    def _batch(self, op: str, items: list[dict[str, str]], what: str) -> list[dict[str, Any]]:
        body = {"batch_input": items, "partial_failure_response_code": 200}
        data = self.transit.client.request(
            "POST", f"{self.transit.mount}/{op}/{q(self.key)}", json=body, what=what
        )[1]
        results = ((data or {}).get("data") or {}).get("batch_results")
        if not isinstance(results, list) or len(results) != len(items):
            raise self.transit.client.unexpected(what, f"a {op} batch without its results")
        return [r if isinstance(r, dict) else {} for r in results]

    def _encrypt_many(self, items: list[tuple[bytes, bytes, str]]) -> list[str | BaseException]:
        if len(items) == 1:
            plain, ctx, what = items[0]
            return [self.transit.encrypt(self.key, plain, ctx, what=what)]
        what = f"seal {len(items)} materials with Transit"
        answers = self._batch(
            "encrypt", [{"plaintext": b64(p), "context": b64(c)} for p, c, _w in items], what
        )
        out: list[str | BaseException] = []
        for (_p, _c, one), res in zip(items, answers, strict=True):
            ct = res.get("ciphertext")
            ok = isinstance(ct, str) and ct.startswith("vault:") and not res.get("error")
            out.append(ct if ok else StoreError(f"Transit returned no ciphertext ({one})"))  # type: ignore[arg-type]
        return out

    def _decrypt_many(self, items: list[tuple[str, bytes, str]]) -> list[bytes | BaseException]:
        if len(items) == 1:
            ct, ctx, what = items[0]
            return [self.transit.decrypt(self.key, ct, ctx, what=what)]
        what = f"unseal {len(items)} materials with Transit"
        answers = self._batch(
            "decrypt", [{"ciphertext": c, "context": b64(x)} for c, x, _w in items], what
        )
        return [_plain(res, one) for (_c, _x, one), res in zip(items, answers, strict=True)]


def _plain(res: dict[str, Any], what: str) -> bytes | BaseException:
    error = str(res.get("error") or "")
    if error:
        if "authentication failed" in error or "unable to decrypt" in error:
            return IntegrityError(
                f"{what}: sealed material failed its integrity check; the blob was altered "
                "or belongs elsewhere"
            )
        return StoreError(f"Transit refused {what}: {error}")
    plain = res.get("plaintext")
    if not isinstance(plain, str):
        return StoreError(f"Transit returned no plaintext ({what})")
    try:
        return base64.b64decode(plain, validate=True)
    except binascii.Error:
        return StoreError(f"Transit returned malformed plaintext ({what})")
