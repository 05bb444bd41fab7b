"""Scripted loopback servers for the Vault transport's tests: :func:`loopback_server` (a
handler per connection) and :func:`tunnel_proxy`, an HTTP proxy whose ``CONNECT host:port``
opens a tunnel (bytes copied both ways, a thread per connection), keeping every request head
it receives."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress


def _head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(1)  # a byte at a time: what follows the head is the client's TLS
        if not chunk:
            return b""
        data += chunk
    return data


def _pipe(a: socket.socket, b: socket.socket) -> None:
    while True:
        ready, _, _ = select.select([a, b], [], [], 30)
        if not ready:
            return
        for src in ready:
            data = src.recv(65536)
            if not data:
                return
            (b if src is a else a).sendall(data)


@contextmanager
def loopback_server(
    handle: Callable[[socket.socket], None], *, threaded: bool = False
) -> Iterator[str]:
    """A server on 127.0.0.1 calling ``handle(conn)`` for each connection (one at a time, or
    each on its own thread); yields ``http://127.0.0.1:PORT``. Stops its threads on exit."""
    server = socket.create_server(("127.0.0.1", 0))
    threads: list[threading.Thread] = []
    stop = threading.Event()

    def one(conn: socket.socket) -> None:
        with conn, suppress(OSError):
            handle(conn)

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not threaded:
                one(conn)
                continue
            t = threading.Thread(target=one, args=(conn,), daemon=True)
            threads.append(t)
            t.start()

    acceptor = threading.Thread(target=serve, daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        server.close()
        acceptor.join(5)
        for t in threads:  # tunnels end when their client closes its connection
            t.join(5)


@contextmanager
def tunnel_proxy(refuse: bytes = b"") -> Iterator[tuple[str, list[bytes]]]:
    """``(http://127.0.0.1:PORT, seen)``; with ``refuse``, that answer instead of a tunnel."""
    seen: list[bytes] = []

    def handle(conn: socket.socket) -> None:
        head = _head(conn)
        seen.append(head)
        if refuse or not head.startswith(b"CONNECT "):
            conn.sendall(refuse or b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return
        host, _, port = head.split(b" ")[1].decode().rpartition(":")
        with socket.create_connection((host, int(port)), timeout=5) as upstream:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _pipe(conn, upstream)

    with loopback_server(handle, threaded=True) as address:
        yield address, seen
