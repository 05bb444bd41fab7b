"""How the Vault client's requests travel: one keep-alive HTTP/1.1 connection per thread and
address over ``http.client`` (:class:`Connections`), or ``requests`` when the environment sets
a proxy for the address (:class:`ProxiedSession`).

Why not ``requests`` for everything: on a rotation over thousands of rings the client is bound
by its own CPU, and ``requests``/``urllib3`` spend about 0.45 ms of it per call against
0.15 ms for a plain ``http.client`` connection (measured against OpenBao on loopback,
benchmarks/RESULTS-concurrency.md). What ``requests`` gave that matters here is kept:

- a connect timeout and a read timeout on every request, and TLS verification on always (the
  pinned CA file, or the system CAs; host names checked);
- a pooled connection the server closed while idle is noticed before it is reused;
- an answer is read up to :data:`MAX_ANSWER` bytes only (a larger declared body is not read).

Failures are told apart the way the client needs them (:class:`TransportError`): the request
was never sent (:class:`NotSent`, :class:`ConnectTimeout`), TLS did not verify
(:class:`TLSFailure`), or it may have reached Vault (:class:`MaybeSent`: a write may have been
applied). Nothing here logs or formats a request body.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import ssl
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .._version import __version__

__all__ = [
    "MAX_ANSWER",
    "Answer",
    "ConnectTimeout",
    "Connections",
    "MaybeSent",
    "NotSent",
    "ProxiedSession",
    "TLSFailure",
    "TransportError",
    "environment_proxies",
]

#: The largest answer read; a larger one is refused unread (Vault's largest is a listing).
MAX_ANSWER = 32 * 1024 * 1024
_AGENT = f"keylife/{__version__}"


class TransportError(Exception):
    """A request got no HTTP answer."""


class NotSent(TransportError):
    """The connection could not be made: the request did not reach the server."""


class ConnectTimeout(NotSent):
    """The connection was not made within the connect timeout."""


class TLSFailure(TransportError):
    """The TLS handshake failed: the server's certificate is not trusted, or not TLS."""


class MaybeSent(TransportError):
    """The connection failed after the request went out (a timeout, a reset, a bad answer):
    a write may have been applied."""


class Answer:
    """One HTTP answer: status, reason, headers (case-insensitive ``get``) and body; ``size``
    is the declared length of a body too large to read (``content`` is then empty)."""

    __slots__ = ("_parsed", "content", "headers", "reason", "size", "status_code")

    def __init__(
        self, status: int, reason: str, headers: Any, content: bytes, size: int | None = None
    ) -> None:
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self.content = content
        self.size = len(content) if size is None else size
        self._parsed: Any = None

    def json(self) -> Any:
        """The body parsed as JSON (once); ``ValueError`` when it is not JSON."""
        if self._parsed is None:
            self._parsed = json.loads(self.content)
        return self._parsed


def environment_proxies(address: str) -> dict[str, str]:
    """The proxies the environment (``HTTP(S)_PROXY``, ``NO_PROXY``) sets for ``address``."""
    import requests.utils

    return dict(requests.utils.get_environ_proxies(address))


def _context(verify: bool | str) -> ssl.SSLContext:
    if verify is True:
        return ssl.create_default_context()
    if not verify:  # never configured so (settings refuse it); verification stays on
        raise ValueError("TLS verification cannot be turned off")
    return ssl.create_default_context(cafile=verify)


def _dropped(sock: Any) -> bool:
    """True when an idle pooled connection was closed by the server (or has stray data)."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return True


class Connections:
    """Keep-alive connections to one Vault address, one per thread; thread-safe."""

    def __init__(self, address: str, verify: bool | str, namespace: str | None) -> None:
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) address: {address!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._context = _context(verify) if self._https else None
        self._headers = {"User-Agent": _AGENT, "X-Vault-Request": "true"}
        if namespace:
            self._headers["X-Vault-Namespace"] = namespace
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()
        self._pid = os.getpid()

    def close(self) -> None:
        """Close every connection; a later request opens a new one."""
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            conn.close()

    def _forget(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        self._local.conn = None
        with self._lock:
            self._open.discard(conn)

    def _connection(self, connect_timeout: float) -> http.client.HTTPConnection:
        if os.getpid() != self._pid:
            # a forked child: the parent's connections are not its own to use. Closing the
            # child's copies of their sockets leaves the parent's open (no shutdown is sent).
            with self._lock:
                inherited, self._open = self._open, set()
                self._local, self._pid = threading.local(), os.getpid()
            for old in inherited:
                old.close()
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None and not _dropped(conn.sock):
            return conn
        if conn is not None:
            self._forget(conn)
        if self._https:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=connect_timeout, context=self._context
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=connect_timeout)
        try:
            conn.connect()
        except TimeoutError as exc:
            conn.close()
            raise ConnectTimeout(f"connect timed out after {connect_timeout:g} s") from exc
        except ssl.SSLError as exc:
            conn.close()
            raise TLSFailure(str(exc)) from exc
        except OSError as exc:
            conn.close()
            raise NotSent(str(exc)) from exc
        self._local.conn = conn
        with self._lock:
            self._open.add(conn)
        return conn

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        json_body: Mapping[str, Any] | None,
        timeout: tuple[float, float],
    ) -> Answer:
        """Send one request on this thread's connection and read the answer."""
        conn = self._connection(timeout[0])
        sent = {**self._headers, **headers}
        body = None
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":"), allow_nan=False).encode()
            sent["Content-Type"] = "application/json"
        try:
            assert conn.sock is not None
            conn.sock.settimeout(timeout[1])
            conn.request(method, self._prefix + path, body=body, headers=sent)
            response = conn.getresponse()
            return self._read(conn, response)
        except (http.client.HTTPException, OSError) as exc:  # timeouts and TLS errors too
            self._forget(conn)
            raise MaybeSent(f"{type(exc).__name__}: {exc}") from exc

    def _read(self, conn: http.client.HTTPConnection, response: Any) -> Answer:
        declared = response.getheader("Content-Length")
        try:
            size = int(declared) if declared is not None else None
        except ValueError:
            size = None
        if size is not None and size > MAX_ANSWER:
            self._forget(conn)  # the body stays unread: the connection cannot be reused
            return Answer(response.status, response.reason, response.msg, b"", size)
        content = response.read(MAX_ANSWER + 1)
        if len(content) > MAX_ANSWER or response.will_close:
            self._forget(conn)
        return Answer(response.status, response.reason, response.msg, content)


class ProxiedSession:
    """Requests through the proxies the environment sets for one address, with ``requests``."""

    def __init__(
        self, address: str, verify: bool | str, namespace: str | None, proxies: dict[str, str]
    ) -> None:
        import requests

        self._address = address.rstrip("/")
        self._session = requests.Session()
        self._session.verify = verify
        self._session.proxies = proxies
        self._session.trust_env = False  # the pinned CA file, not REQUESTS_CA_BUNDLE
        self._headers = {"User-Agent": _AGENT, "X-Vault-Request": "true"}
        if namespace:
            self._headers["X-Vault-Namespace"] = namespace

    def close(self) -> None:
        self._session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        json_body: Mapping[str, Any] | None,
        timeout: tuple[float, float],
    ) -> Answer:
        import requests

        try:
            response = self._session.request(
                method,
                self._address + path,
                headers={**self._headers, **headers},
                json=json_body,
                timeout=timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.SSLError as exc:
            raise TLSFailure(str(exc)) from exc
        except requests.exceptions.ConnectTimeout as exc:
            raise ConnectTimeout(str(exc)) from exc
        except requests.exceptions.RequestException as exc:
            raise MaybeSent(f"{type(exc).__name__}: {exc}") from exc
        with response:
            try:
                content = response.raw.read(MAX_ANSWER + 1, decode_content=True) or b""
            except requests.exceptions.RequestException as exc:
                raise MaybeSent(f"{type(exc).__name__}: {exc}") from exc
            except OSError as exc:
                raise MaybeSent(f"{type(exc).__name__}: {exc}") from exc
        return Answer(response.status_code, response.reason or "", response.headers, content)
