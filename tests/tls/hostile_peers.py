"""Hostile TLS servers for tests/hostile/test_tls_*.py, and a way to run the CLI under a
wall-clock and memory measurement.

Each behaviour is scripted byte by byte (no TLS library), runs for one connection in a
``peers.HostileServer`` thread on 127.0.0.1, stops when the client goes away or the server is
stopped, and never blocks for more than a second at a time.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Behaviour = Callable[[socket.socket, threading.Event], None]

SUITE = 0xC02F  # TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256


def record(content_type: int, payload: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def handshake(msg_type: int, body: bytes, length: int | None = None) -> bytes:
    declared = len(body) if length is None else length
    return struct.pack("!B", msg_type) + declared.to_bytes(3, "big") + body


def read_client_hello(conn: socket.socket) -> tuple[int, list[int]]:
    """(client_version, offered suites) of the ClientHello on ``conn``; independent of keylife."""
    buf = b""
    while len(buf) < 5 or len(buf) < 5 + int.from_bytes(buf[3:5], "big"):
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("client closed before its ClientHello")
        buf += chunk
    body = buf[9:]
    pos = 2 + 32
    pos += 1 + body[pos]
    n = int.from_bytes(body[pos : pos + 2], "big")
    return int.from_bytes(body[0:2], "big"), list(
        struct.unpack(f"!{n // 2}H", body[pos + 2 : pos + 2 + n])
    )


def server_hello(version: int = 0x0303, suite: int = SUITE) -> bytes:
    body = struct.pack("!H", version) + os.urandom(32) + b"\x00" + struct.pack("!HB", suite, 0)
    return handshake(2, body)


def _send_forever(
    conn: socket.socket, stopping: threading.Event, chunk: Callable[[], bytes]
) -> None:
    conn.settimeout(15)  # a slow reader is waited for: it is the reader that must give up
    while not stopping.is_set():
        conn.sendall(chunk())  # raises once the client has gone: the handler ends


def forever_certificates(conn: socket.socket, stopping: threading.Event) -> None:
    """ServerHello, then Certificate messages without end, each full of tiny certificates."""
    conn.settimeout(2)
    read_client_hello(conn)
    conn.sendall(record(22, server_hello()))
    certs = b"\x00\x00\x01\x30" * 4000  # 4000 one-byte "certificates" per message
    message = record(22, handshake(11, len(certs).to_bytes(3, "big") + certs))
    _send_forever(conn, stopping, lambda: message * 4)


def huge_length(conn: socket.socket, stopping: threading.Event) -> None:
    """A Certificate message declaring 2^24-1 bytes, then its body, one-byte certs, at speed."""
    conn.settimeout(2)
    read_client_hello(conn)
    length = 2**24 - 1
    inner = length - 3
    conn.sendall(record(22, server_hello() + handshake(11, inner.to_bytes(3, "big"), length)))
    filler = record(22, b"\x00\x00\x01\x30" * 4096)
    _send_forever(conn, stopping, lambda: filler * 4)


def tls_framed_garbage(conn: socket.socket, stopping: threading.Event) -> None:
    """A valid ServerHello, then handshake records of seeded random bytes without end."""
    conn.settimeout(2)
    read_client_hello(conn)
    conn.sendall(record(22, server_hello()))
    rng = random.Random(10)
    _send_forever(conn, stopping, lambda: record(22, rng.randbytes(16000)))


@dataclass
class AcceptEverything:
    """Answers every ClientHello with its first suite at the client's version after ``delay``
    seconds; connection number ``reset_on`` (counted from 1) gets a ServerHello and half a
    Certificate, then a TCP reset."""

    cert_der: bytes
    delay: float = 0.3
    reset_on: int | None = None

    def __post_init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self, conn: socket.socket, stopping: threading.Event) -> None:
        conn.settimeout(2)
        version, offered = read_client_hello(conn)
        with self._lock:
            self._count += 1
            number = self._count
        if stopping.wait(self.delay) or not offered:
            return
        version = min(version, 0x0303)
        cert = len(self.cert_der).to_bytes(3, "big") + self.cert_der
        certificate = handshake(11, len(cert).to_bytes(3, "big") + cert)
        if number == self.reset_on:
            conn.sendall(record(22, server_hello(version, offered[0]) + certificate[:200], version))
            stopping.wait(0.3)  # let the client read the ServerHello before the reset
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return  # closing with SO_LINGER 0 sends RST
        flight = server_hello(version, offered[0]) + certificate + handshake(14, b"")
        conn.sendall(record(22, flight, version))
        while not stopping.is_set() and conn.recv(4096):
            pass


# -- running the CLI ---------------------------------------------------------------------


@dataclass(frozen=True)
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float


#: Starts ``python -m keylife_cli ARGS`` from a small process and writes the child's own peak RSS
#: (kB) to the file named first. Linux counts the RSS a process had when it forked into the
#: child's ``ru_maxrss``, so a child forked straight from a big test process (a long pytest run)
#: would report the test process's memory, not its own.
_LAUNCHER = """
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "keylife_cli", *sys.argv[2:]])
_, status, rusage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(str(rusage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


def run_keylife(*args: str, hard_limit: float = 90.0) -> CliRun:
    """``keylife ARGS`` in a subprocess: exit status, output, wall time and its own max RSS.

    The RSS is the CLI process's own peak (``wait4`` in a small launcher gives the rusage of
    exactly that process). A child still running after ``hard_limit`` seconds is killed with
    its launcher and reported with status -9.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        rss_file = Path(tmp) / "maxrss"
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(rss_file), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # the launcher and the CLI: one process group to kill
        )
        try:
            proc.wait(hard_limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        kb = int(rss_file.read_text() or 0) if rss_file.exists() else 0
        return CliRun(
            returncode=proc.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            seconds=seconds,
            max_rss_mb=kb / 1024,  # Linux: kilobytes
        )
