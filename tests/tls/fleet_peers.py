"""Fleet test peers: Python ssl servers that wait before answering and count the connections
waiting at the same time.

A connection counts as open from the moment the server accepts it until the server starts its
handshake; during that ``delay`` the client is waiting for an answer, so it still holds the
connection too. The peak over every server sharing one :class:`OpenCounter` is therefore a
lower bound of the simultaneous connections the client had open (it never over-counts).
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import ssl
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

from tests.tls.peers import PythonTlsServer
from tests.tls.pki import Issued, Pki

FLEET_MIX = ["modern", "modern", "modern", "modern", "tls10", "tls10", "weak-suites",
             "weak-suites", "expired", "expired"]  # fmt: skip
"""The benchmark fleet's configurations, repeated in this order over the ports."""


def _context(
    cert: Issued,
    ciphers: str = "ECDHE+AESGCM:ECDHE+CHACHA20",
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = minimum
    ctx.maximum_version = maximum
    ctx.set_ciphers(ciphers)
    ctx.load_cert_chain(cert.cert_path, cert.key_path)
    return ctx


def fleet_contexts(pki: Pki) -> dict[str, ssl.SSLContext]:
    """modern (passes), TLS 1.0 allowed, RSA key transport suites, expired leaf."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ssl.TLSVersion.TLSv1
        tls10 = _context(pki.rsa_leaf, "ECDHE+AESGCM:ECDHE+AES:@SECLEVEL=0", ssl.TLSVersion.TLSv1)
    weak = _context(
        pki.rsa_leaf,
        "AES128-SHA:AES256-SHA:ECDHE+AESGCM:@SECLEVEL=0",
        maximum=ssl.TLSVersion.TLSv1_2,
    )
    return {"modern": _context(pki.leaf), "tls10": tls10, "weak-suites": weak,
            "expired": _context(pki.expired)}  # fmt: skip


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


class MultiPortTlsServer:
    """Many TLS endpoints in one thread: one listening port per context, 127.0.0.1 only.

    A selector accepts on every port; each accepted connection runs its handshake in its own
    thread (5 s timeout). ``__exit__`` closes the ports and joins every thread it started.
    """

    def __init__(self, contexts: Sequence[ssl.SSLContext]) -> None:
        self._selector = selectors.DefaultSelector()
        self._listeners: list[socket.socket] = []
        for ctx in contexts:
            listener = socket.create_server(("127.0.0.1", 0), backlog=256)
            listener.setblocking(False)
            self._selector.register(listener, selectors.EVENT_READ, ctx)
            self._listeners.append(listener)
        self.ports: list[int] = [s.getsockname()[1] for s in self._listeners]
        self.stopping = threading.Event()
        self._handlers: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            for key, _ in self._selector.select(0.1):
                listener = key.fileobj
                assert isinstance(listener, socket.socket)
                try:
                    conn, _ = listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return
                t = threading.Thread(target=self._handle, args=(conn, key.data), daemon=True)
                with self._lock:
                    self._handlers.add(t)
                t.start()

    def _handle(self, conn: socket.socket, ctx: ssl.SSLContext) -> None:
        try:
            conn.setblocking(True)
            conn.settimeout(5)
            with (
                conn,
                contextlib.suppress(OSError, ssl.SSLError, ValueError),
                ctx.wrap_socket(conn, server_side=True) as tls,
            ):
                data = tls.recv(1024)
                if data:
                    tls.sendall(data)
        finally:
            with self._lock:
                self._handlers.discard(threading.current_thread())

    def __enter__(self) -> MultiPortTlsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._thread.join(5)
        for listener in self._listeners:
            listener.close()
        self._selector.close()
        with self._lock:
            handlers = list(self._handlers)
        for t in handlers:
            t.join(6)


def raise_nofile(need: int) -> tuple[int, int]:
    """Raise the soft open-file limit to ``need`` when the hard limit allows; the new limits."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def serve_fleet(n: int, directory: Path) -> None:
    """n endpoints (FLEET_MIX) on n ports; prints {ports, kinds, ca}; serves until stdin ends."""
    from tests.tls.pki import make_pki

    raise_nofile(n * 3 + 256)
    pki = make_pki(directory)
    contexts = fleet_contexts(pki)
    kinds = [FLEET_MIX[i % len(FLEET_MIX)] for i in range(n)]
    with MultiPortTlsServer([contexts[k] for k in kinds]) as server:
        info = {"ports": server.ports, "kinds": kinds, "ca": str(pki.root.cert_path)}
        print(json.dumps(info), flush=True)
        sys.stdin.read()


if __name__ == "__main__":  # python -m tests.tls.fleet_peers N DIR (benchmarks/bench_tls.py)
    serve_fleet(int(sys.argv[1]), Path(sys.argv[2]))
