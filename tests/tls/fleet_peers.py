"""Fleet test peers: Python ssl servers that wait before answering and count the connections
waiting at the same time.

A connection counts as open from the moment the server accepts it until the server starts its
handshake; during that ``delay`` the client is waiting for an answer, so it still holds the
connection too. The peak over every server sharing one :class:`OpenCounter` is therefore a
lower bound of the simultaneous connections the client had open (it never over-counts).
"""

from __future__ import annotations

import socket
import ssl
import threading

from tests.tls.peers import PythonTlsServer


class OpenCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0
        self.peak = 0
        self.total = 0

    def enter(self) -> None:
        with self._lock:
            self.open += 1
            self.total += 1
            self.peak = max(self.peak, self.open)

    def leave(self) -> None:
        with self._lock:
            self.open -= 1


class SlowTlsServer(PythonTlsServer):
    """A Python ssl server that holds each accepted connection ``delay`` seconds first."""

    def __init__(self, ctx: ssl.SSLContext, delay: float, counter: OpenCounter) -> None:
        super().__init__(ctx)
        self.delay = delay
        self.counter = counter

    def handle(self, conn: socket.socket) -> None:
        self.counter.enter()
        try:
            self.stopping.wait(self.delay)
        finally:
            self.counter.leave()
        super().handle(conn)
