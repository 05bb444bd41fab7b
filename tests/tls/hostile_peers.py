"""Hostile TLS servers for tests/hostile/test_tls_*.py, and a way to run the CLI under a
wall-clock and memory measurement.

Each behaviour is scripted byte by byte (no TLS library), runs for one connection in a
``peers.HostileServer`` thread on 127.0.0.1, stops when the client goes away or the server is
stopped, and never blocks for more than a second at a time.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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


def run_keylife(*args: str, hard_limit: float = 90.0) -> CliRun:
    """``keylife ARGS`` in a subprocess: exit status, output, wall time and its own max RSS.

    The RSS is the child's own peak: ``VmHWM`` of its address space, sampled from
    ``/proc/PID/status`` while it runs. (``ru_maxrss`` from ``wait4`` is no good: Linux carries
    the pre-exec peak over, which is the forking pytest process's size, 300 MB late in a full
    run.) A child still running after ``hard_limit`` seconds is killed, status -9.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "keylife_cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        status, peak_kb = 0, 0
        while True:
            peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.monotonic() - started > hard_limit:
                proc.kill()
                _, status, _ = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen
        out.seek(0)
        err.seek(0)
        return CliRun(
            returncode=proc.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            seconds=seconds,
            max_rss_mb=peak_kb / 1024,
        )


def _vm_hwm_kb(pid: int) -> int:
    """The peak resident size (kB) of ``pid``'s current address space, 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
