"""ConnectionGate: one limit on simultaneous TCP connections across every endpoint of a run.

Every connection a probe opens (ClientHello probes and the TLS 1.3 certificate fetch) takes a
slot before ``connect`` and gives it back when the socket is closed, so ``limit`` bounds the
open connections of the whole run, whatever the number of endpoints checked at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from keylife.errors import ProbeError

__all__ = ["ConnectionGate"]


class ConnectionGate:
    """A counting semaphore that also records how many slots were ever held at once."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a connection limit is at least 1")
        self.limit = limit
        self._cond = threading.Condition()
        self._open = 0
        self.peak = 0

    @property
    def open(self) -> int:
        """Connections holding a slot now."""
        return self._open

    @contextmanager
    def slot(self, timeout: float) -> Iterator[None]:
        """Hold one slot for the block; :class:`ProbeError` if none frees within ``timeout``."""
        until = time.monotonic() + timeout
        with self._cond:
            while self._open >= self.limit:
                left = until - time.monotonic()
                if left <= 0:
                    raise ProbeError(
                        f"no connection slot free within {timeout:g} s "
                        f"({self.limit} connections at most)"
                    )
                self._cond.wait(left)
            self._open += 1
            self.peak = max(self.peak, self._open)
        try:
            yield
        finally:
            with self._cond:
                self._open -= 1
                self._cond.notify()
