"""TLS peers for the tests: Python ssl servers, openssl s_server, a scripted legacy server and
hostile servers. All listen on 127.0.0.1 on a free port, and each stops exactly what it started.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType


class _ThreadedServer:
    """Accept loop in a thread; one handler thread per connection; stop() joins them all."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._run_handler, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _run_handler(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError, ssl.SSLError, ValueError):
            self.handle(conn)

    def __enter__(self) -> _ThreadedServer:
        self._accept_thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stopping.set()
        self._accept_thread.join(5)
        self._listener.close()
        for t in self._threads:
            t.join(5)


class PythonTlsServer(_ThreadedServer):
    """A Python ``ssl`` server that completes handshakes with ``ctx`` and echoes one read."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        super().__init__()
        self.ctx = ctx

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(3)
        with self.ctx.wrap_socket(conn, server_side=True) as tls:
            data = tls.recv(1024)
            if data:
                tls.sendall(data)
                tls.unwrap()  # close_notify, as a well-behaved server does


class OpensslServer:
    """``openssl s_server -www`` with extra arguments; port read from its ACCEPT line."""

    def __init__(self, args: Sequence[str]) -> None:
        self.args = list(args)
        self.port = 0
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OpensslServer:
        self.proc = subprocess.Popen(
            ["openssl", "s_server", "-www", "-accept", "127.0.0.1:0", *self.args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self._log.seek(0)
            for line in self._log.read().decode(errors="replace").splitlines():
                if line.startswith("ACCEPT"):
                    self.port = int(line.rsplit(":", 1)[1])
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.__exit__(None, None, None)
        raise RuntimeError(f"openssl s_server did not start: {self.output()}")

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# -- a scripted legacy server: answers ClientHello bytes as an old server would -------------


def _read_client_hello(conn: socket.socket) -> tuple[int, list[int]]:
    """(client_version, offered suites) from a ClientHello; independent of keylife's parser."""
    buf = b""
    while len(buf) < 5 or len(buf) < 5 + int.from_bytes(buf[3:5], "big"):
        chunk = conn.recv(65536)
        if not chunk:
            raise ValueError("closed")
        buf += chunk
    body = buf[5 + 4 :]
    client_version = int.from_bytes(body[0:2], "big")
    pos = 2 + 32
    pos += 1 + body[pos]
    n = int.from_bytes(body[pos : pos + 2], "big")
    suites = list(struct.unpack(f"!{n // 2}H", body[pos + 2 : pos + 2 + n]))
    return client_version, suites


def _record(content_type: int, version: int, payload: bytes) -> bytes:
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def _handshake(msg_type: int, body: bytes) -> bytes:
    return struct.pack("!B", msg_type) + len(body).to_bytes(3, "big") + body


class LegacyServer(_ThreadedServer):
    """Speaks only the first flight of SSL 3.0 / TLS 1.0-1.2, with whatever suites it is given.

    Chooses the highest common version and its first listed suite that the client offers,
    then sends ServerHello, Certificate and ServerHelloDone, as a legacy server would.
    """

    def __init__(self, versions: Sequence[int], suites: Sequence[int], cert_der: bytes) -> None:
        super().__init__()
        self.versions = sorted(versions)
        self.suites = list(suites)
        self.cert_der = cert_der

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(3)
        client_version, offered = _read_client_hello(conn)
        version = min(client_version, self.versions[-1])
        if version < self.versions[0]:
            conn.sendall(_record(21, self.versions[0], b"\x02\x46"))  # protocol_version
            return
        suite = next((s for s in self.suites if s in offered), None)
        if suite is None:
            conn.sendall(_record(21, version, b"\x02\x28"))  # handshake_failure
            return
        hello = struct.pack("!H", version) + os.urandom(32) + b"\x00" + struct.pack("!HB", suite, 0)
        cert = len(self.cert_der).to_bytes(3, "big") + self.cert_der
        flight = (
            _handshake(2, hello)
            + _handshake(11, len(cert).to_bytes(3, "big") + cert)
            + _handshake(14, b"")
        )
        conn.sendall(_record(22, version, flight))
        while conn.recv(4096):
            pass


# -- hostile peers ------------------------------------------------------------------------


class HostileServer(_ThreadedServer):
    """Runs ``behaviour(conn, stopping)`` for every connection."""

    def __init__(self, behaviour: Callable[[socket.socket, threading.Event], None]) -> None:
        super().__init__()
        self.behaviour = behaviour

    def handle(self, conn: socket.socket) -> None:
        self.behaviour(conn, self.stopping)


def never_answers(conn: socket.socket, stopping: threading.Event) -> None:
    conn.settimeout(0.1)
    while not stopping.is_set():
        try:
            if conn.recv(4096) == b"":
                return
        except TimeoutError:
            continue


def sends_garbage(conn: socket.socket, stopping: threading.Event) -> None:
    conn.settimeout(2)
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def _server_hello_record() -> bytes:
    hello = b"\x03\x03" + os.urandom(32) + b"\x00" + b"\xc0\x2f\x00"
    return _record(22, 0x0303, _handshake(2, hello))


def closes_mid_handshake(conn: socket.socket, stopping: threading.Event) -> None:
    conn.settimeout(2)
    conn.recv(4096)
    conn.sendall(_server_hello_record()[:20])


def dribbles(conn: socket.socket, stopping: threading.Event) -> None:
    conn.settimeout(2)
    conn.recv(4096)
    for byte in _server_hello_record():
        if stopping.wait(0.3):
            return
        conn.sendall(bytes([byte]))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
