"""One HTTP/1.1 exchange on a connection the caller keeps: the request's bytes
(:func:`request_bytes`) and the answer read from the connection's buffered reader
(:func:`read_answer`); through an HTTP proxy, the tunnel's ``CONNECT`` request
(:func:`tunnel_bytes`) and its answer's head (:func:`read_head`).

Vault answers small JSON documents on a keep-alive connection, and the client of a rotation
over thousands of rings is bound by its own CPU; ``http.client`` parses every answer's headers
with the ``email`` package, which was half of the transport's cost. This reads what Vault sends
(a status line, header lines, a body by ``Content-Length``, chunked, or up to the end of the
connection) and refuses everything else with :class:`BadAnswer`, within fixed limits: a line
of at most 64 KiB, at most 100 header lines, a body of at most ``cap`` bytes (a larger one is
not read: the caller must drop the connection). The header names and values the caller sends
are checked: no CR, LF or other control characters, so nothing can be smuggled into the
request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, BinaryIO, Protocol

__all__ = [
    "BadAnswer",
    "Headers",
    "LineReader",
    "Reply",
    "read_answer",
    "read_head",
    "request_bytes",
    "tunnel_bytes",
]

MAX_LINE = 65536
MAX_HEADERS = 100
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*\Z")
#: origin form (``/v1/...``), or absolute form (``http://host:port/v1/...``) for a proxy
_TARGET = re.compile(r"(?:http://[\x21-\x2e\x30-\x7e]+)?/[\x21-\x7e]*\Z")
_AUTHORITY = re.compile(r"[\x21-\x2e\x30-\x7e]+:[0-9]{1,5}\Z")
_STATUS = re.compile(r"HTTP/1\.([01]) ([1-5][0-9][0-9])(?: (.*))?\Z")
_HEX = re.compile(r"[0-9A-Fa-f]{1,15}\Z")
_LENGTH = re.compile(r"[0-9]{1,15}\Z")


class LineReader(Protocol):
    """What :func:`read_head` reads from: a buffered reader, or a raw stream that reads a
    byte at a time (so nothing after the head is taken)."""

    def readline(self, size: int = -1, /) -> bytes: ...


class BadAnswer(Exception):
    """The peer's bytes are not an HTTP/1.1 answer within the limits (or the connection
    ended in the middle of one)."""


class Headers(dict[str, str]):
    """Header fields by lower-case name; ``get`` takes any case. Repeated fields are joined
    with ``", "``."""

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)


class Reply:
    """A parsed answer: ``status``, ``reason``, ``headers``, ``body``; ``oversized`` is the
    size of a body larger than the cap (``body`` is then empty and the connection unusable);
    ``keep_alive`` says whether the connection may carry the next request."""

    __slots__ = ("body", "headers", "keep_alive", "oversized", "reason", "status")

    def __init__(
        self,
        status: int,
        reason: str,
        headers: Headers,
        body: bytes,
        *,
        keep_alive: bool,
        oversized: int | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.oversized = oversized


def request_bytes(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    """The bytes of one request; ``ValueError`` for a method, target or header that could
    break out of its place (control characters, spaces, CR or LF)."""
    if not _TOKEN.match(method) or not _TARGET.match(target):
        raise ValueError("the request method or path holds characters HTTP does not allow")
    fields = dict(headers)
    if body is not None:
        fields["Content-Length"] = str(len(body))
    head = _head(f"{method} {target} HTTP/1.1", host, {"Accept-Encoding": "identity", **fields})
    return head if body is None else head + body


def tunnel_bytes(authority: str, headers: Mapping[str, str]) -> bytes:
    """The ``CONNECT host:port`` request that asks an HTTP proxy for a tunnel; ``ValueError``
    as for :func:`request_bytes`."""
    if not _AUTHORITY.match(authority):
        raise ValueError("the tunnel's host and port hold characters HTTP does not allow")
    return _head(f"CONNECT {authority} HTTP/1.1", authority, headers)


def _head(first: str, host: str, fields: Mapping[str, str]) -> bytes:
    lines = [first, f"Host: {host}"]
    for name, value in fields.items():
        if not _TOKEN.match(name) or not _VALUE.match(value):
            raise ValueError(f"header {name[:40]!r} holds characters HTTP does not allow")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _line(rfile: LineReader, what: str) -> bytes:
    line = rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise BadAnswer(f"{what} longer than {MAX_LINE} bytes")
    if not line.endswith(b"\n"):
        raise BadAnswer(f"the connection ended in the {what}" if line else "no answer")
    return line


def _headers(rfile: LineReader) -> Headers:
    out = Headers()
    for _ in range(MAX_HEADERS + 1):
        line = _line(rfile, "header")
        if line in (b"\r\n", b"\n"):
            return out
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not _TOKEN.match(name):
            raise BadAnswer("a header line without a valid name")
        key, value = name.lower(), value.strip(" \t\r\n")
        out[key] = f"{out[key]}, {value}" if key in out else value
    raise BadAnswer(f"more than {MAX_HEADERS} header lines")


def _exactly(rfile: BinaryIO, n: int) -> bytes:
    data = rfile.read(n)
    if len(data) != n:
        raise BadAnswer(f"the connection ended {n - len(data)} bytes before the body's end")
    return data


def _chunked(rfile: BinaryIO, cap: int) -> tuple[bytes, int | None]:
    body = bytearray()
    while True:
        size_text = _line(rfile, "chunk size").split(b";", 1)[0].strip().decode("latin-1")
        if not _HEX.match(size_text):
            raise BadAnswer("a chunk size that is not hexadecimal")
        size = int(size_text, 16)
        if size == 0:
            while _line(rfile, "trailer") not in (b"\r\n", b"\n"):
                pass
            return bytes(body), None
        if len(body) + size > cap:
            return b"", len(body) + size
        body += _exactly(rfile, size)
        if _exactly(rfile, 2) != b"\r\n":
            raise BadAnswer("a chunk not followed by CRLF")


def read_head(rfile: LineReader) -> tuple[int, int, str, Headers]:
    """An answer's status line and header lines: ``(HTTP/1.x minor version, status, reason,
    headers)``; the body, if any, is left unread."""
    status_line = _line(rfile, "status line").decode("latin-1").rstrip("\r\n")
    matched = _STATUS.match(status_line)
    if matched is None:
        raise BadAnswer(f"not an HTTP/1.x status line: {status_line[:60]!r}")
    return int(matched[1]), int(matched[2]), matched[3] or "", _headers(rfile)


def read_answer(rfile: BinaryIO, method: str, cap: int) -> Reply:
    """Read one answer to a ``method`` request from ``rfile`` (1xx answers skipped)."""
    for _ in range(10):
        minor, status, reason, headers = read_head(rfile)
        if status >= 200:
            break
    else:
        raise BadAnswer("too many 1xx answers")
    connection = headers.get("connection", "").lower()
    keep = "close" not in connection and (minor == 1 or "keep-alive" in connection)
    if method == "HEAD" or status in (204, 304):
        return Reply(status, reason, headers, b"", keep_alive=keep)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, over = _chunked(rfile, cap)
        return Reply(
            status, reason, headers, body, keep_alive=keep and over is None, oversized=over
        )
    length = headers.get("content-length")
    if length is not None:
        if not _LENGTH.match(length):
            raise BadAnswer(f"Content-Length {length[:20]!r} is not a number")
        if int(length) > cap:
            return Reply(status, reason, headers, b"", keep_alive=False, oversized=int(length))
        return Reply(status, reason, headers, _exactly(rfile, int(length)), keep_alive=keep)
    body = rfile.read(cap + 1)  # no length: the body ends with the connection
    if len(body) > cap:
        return Reply(status, reason, headers, b"", keep_alive=False, oversized=len(body))
    return Reply(status, reason, headers, body, keep_alive=False)
