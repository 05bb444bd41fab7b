"""A scripted HTTP proxy for tests: ``CONNECT host:port`` opens a tunnel (bytes copied both
ways, one thread per connection); every request head it receives is kept in ``seen``."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
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
def tunnel_proxy(refuse: bytes = b"") -> Iterator[tuple[str, list[bytes]]]:
    """``(http://127.0.0.1:PORT, seen)``; with ``refuse``, that answer instead of a tunnel."""
    server = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []
    threads: list[threading.Thread] = []
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn, suppress(OSError):
            head = _head(conn)
            seen.append(head)
            if refuse or not head.startswith(b"CONNECT "):
                conn.sendall(refuse or b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            host, _, port = head.split(b" ")[1].decode().rpartition(":")
            with socket.create_connection((host, int(port)), timeout=5) as upstream:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                _pipe(conn, upstream)

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=handle, args=(conn,), daemon=True)
            threads.append(t)
            t.start()

    acceptor = threading.Thread(target=serve, daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", seen
    finally:
        stop.set()
        server.close()
        acceptor.join(5)
        for t in threads:  # tunnels end when their client closes its connection
            t.join(5)
