"""How the Vault client's requests travel: one keep-alive HTTP/1.1 connection per thread and
address, a plain socket (TLS-wrapped for https) speaking :mod:`keylife.vault.http11`
(:class:`Connections`). When the environment sets an ``http://`` proxy for the address
(``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``; ``NO_PROXY`` honoured), the connection goes to
the proxy: an https address through a ``CONNECT`` tunnel (TLS end to end, Vault's certificate
verified as without a proxy), an http one with the full URL in the request line; credentials
in the proxy URL are sent as ``Proxy-Authorization: Basic`` and never shown. Any other proxy
(``socks5://``, ``https://``) goes through ``requests`` (:class:`ProxiedSession`).

Why not ``requests`` for everything: on a rotation over thousands of rings the client is bound
by its own CPU, and ``requests``/``urllib3`` spend about 0.45 ms of it per call against
0.15 ms for an ``http.client`` connection and less again for this one (measured against
OpenBao on loopback, benchmarks/RESULTS-concurrency.md). What ``requests`` gave that matters
here is kept:

- a connect timeout and a read timeout on every request, and TLS verification on always (the
  pinned CA file, or the system CAs; host names checked); the read timeout bounds the whole
  answer, so a peer that trickles it a byte at a time is cut off too;
- a pooled connection the server closed while idle is noticed before it is reused;
- an answer is read up to :data:`MAX_ANSWER` bytes only (a larger declared body is not read).

Failures are told apart the way the client needs them (:class:`TransportError`): the request
was never sent (:class:`NotSent`, :class:`ConnectTimeout`), TLS did not verify
(:class:`TLSFailure`), or it may have reached Vault (:class:`MaybeSent`: a write may have been
applied). Nothing here logs or formats a request body.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from .._version import __version__
from .http11 import BadAnswer, read_answer, read_head, request_bytes, tunnel_bytes

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
    "is_http_proxy",
    "proxy_for",
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
    """The proxies the environment (``HTTP(S)_PROXY``, ``NO_PROXY``) sets for ``address``.
    ``requests`` (about 90 ms to import) is asked only when some proxy is set at all."""
    from urllib.request import getproxies_environment

    if not getproxies_environment():
        return {}
    import requests.utils

    return dict(requests.utils.get_environ_proxies(address))


def proxy_for(address: str, proxies: Mapping[str, str]) -> str | None:
    """The proxy URL of ``proxies`` (:func:`environment_proxies`) that ``address`` goes
    through: its scheme's, else ``all``'s; None for a direct connection."""
    return proxies.get(urlsplit(address).scheme) or proxies.get("all") or None


class _Proxy:
    """An ``http://[user:password@]host[:port]`` proxy; its repr and ``shown`` never hold the
    credentials."""

    __slots__ = ("authorization", "host", "port", "shown")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        try:
            port = parts.port or 80
        except ValueError:
            port = -1
        if parts.scheme != "http" or not parts.hostname or port < 1:
            raise ValueError("an http:// proxy URL with a host (and a port from 1 to 65535)")
        self.host, self.port = parts.hostname, port
        literal = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self.shown = f"http://{literal}:{port}"
        self.authorization: str | None = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.authorization = "Basic " + base64.b64encode(pair.encode()).decode()

    def __repr__(self) -> str:
        return f"<proxy {self.shown}>"


def is_http_proxy(url: str) -> bool:
    """True for a proxy :class:`Connections` speaks to itself (``http://``)."""
    try:
        _Proxy(url)
    except ValueError:
        return False
    return True


def _base_headers(namespace: str | None) -> dict[str, str]:
    """The headers every request carries."""
    headers = {"User-Agent": _AGENT, "X-Vault-Request": "true"}
    if namespace:
        headers["X-Vault-Namespace"] = namespace
    return headers


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


class _Deadline(io.RawIOBase):
    """The socket's bytes, each read waiting only until ``deadline`` (monotonic): a peer that
    trickles its answer a byte at a time cannot hold a request past its read timeout."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline = 0.0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the answer did not arrive in time (timed out)")
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


class _Link:
    """One open connection: its socket and the buffered reader its answers come through."""

    __slots__ = ("clock", "rfile", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.clock = _Deadline(sock)
        self.rfile = io.BufferedReader(self.clock)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.rfile.close()
        with contextlib.suppress(OSError):
            self.sock.close()


class Connections:
    """Keep-alive connections to one Vault address, one per thread; thread-safe."""

    def __init__(
        self, address: str, verify: bool | str, namespace: str | None, proxy: str | None = None
    ) -> None:
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) address: {address!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        literal = f"[{self._host}]" if ":" in self._host else self._host
        self._hostport = f"{literal}:{self._port}"
        self._prefix = parts.path.rstrip("/")
        self._context = _context(verify) if self._https else None
        self._headers = _base_headers(namespace)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[_Link] = set()
        self._pid = os.getpid()
        self._proxy = None if proxy is None else _Proxy(proxy)
        if self._proxy is not None and not self._https:  # the full URL in the request line
            self._prefix = f"http://{self._hostport}{self._prefix}"
            if self._proxy.authorization:
                self._headers["Proxy-Authorization"] = self._proxy.authorization

    def close(self) -> None:
        """Close every connection; a later request opens a new one."""
        with self._lock:
            links, self._open = self._open, set()
        for link in links:
            link.close()

    def _forget(self, link: _Link) -> None:
        link.close()
        self._local.link = None
        with self._lock:
            self._open.discard(link)

    def _connection(self, connect_timeout: float) -> _Link:
        if os.getpid() != self._pid:
            # a forked child: the parent's connections are not its own to use. Closing the
            # child's copies of their sockets leaves the parent's open (no shutdown is sent).
            with self._lock:
                inherited, self._open = self._open, set()
                self._local, self._pid = threading.local(), os.getpid()
            for old in inherited:
                old.close()
        link: _Link | None = getattr(self._local, "link", None)
        if link is not None and not _dropped(link.sock):
            return link
        if link is not None:
            self._forget(link)
        link = _Link(self._connect(connect_timeout))
        self._local.link = link
        with self._lock:
            self._open.add(link)
        return link

    def _connect(self, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        proxy = self._proxy
        to = (self._host, self._port) if proxy is None else (proxy.host, proxy.port)
        try:
            sock = socket.create_connection(to, timeout=timeout)
        except TimeoutError as exc:
            raise ConnectTimeout(f"connect timed out after {timeout:g} s") from exc
        except OSError as exc:
            raise NotSent(str(exc) if proxy is None else f"proxy {proxy.shown}: {exc}") from exc
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._context is None:
            return sock
        if proxy is not None:
            try:
                _tunnel(sock, proxy, self._hostport, deadline)
            except NotSent:
                sock.close()
                raise
        try:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            return self._context.wrap_socket(sock, server_hostname=self._host)
        except TimeoutError as exc:
            sock.close()
            raise ConnectTimeout(f"TLS handshake timed out after {timeout:g} s") from exc
        except ssl.SSLError as exc:
            sock.close()
            raise TLSFailure(str(exc)) from exc
        except OSError as exc:
            sock.close()
            raise NotSent(str(exc)) from exc

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
        sent = {**self._headers, **headers}
        body = None
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":"), allow_nan=False).encode()
            sent["Content-Type"] = "application/json"
        try:
            data = request_bytes(method, self._prefix + path, self._hostport, sent, body)
        except ValueError as exc:  # a header or path that could break out of its place
            raise NotSent(str(exc)) from exc
        link = self._connection(timeout[0])
        try:
            # the read timeout bounds the whole exchange, not each wait for a packet
            link.clock.deadline = time.monotonic() + timeout[1]
            link.sock.settimeout(timeout[1])
            link.sock.sendall(data)
            reply = read_answer(link.rfile, method, MAX_ANSWER)
        except (BadAnswer, OSError) as exc:  # timeouts, resets and TLS errors too
            self._forget(link)
            raise MaybeSent(f"{type(exc).__name__}: {exc}") from exc
        if not reply.keep_alive:
            self._forget(link)  # closed by the server, or a body left unread
        return Answer(reply.status, reply.reason, reply.headers, reply.body, reply.oversized)


def _tunnel(sock: socket.socket, proxy: _Proxy, authority: str, deadline: float) -> None:
    """Ask ``proxy`` on ``sock`` for a tunnel to ``authority`` (``host:port``), before
    ``deadline`` (monotonic); NotSent (ConnectTimeout) when it does not open one."""
    fields = {"User-Agent": _AGENT}
    if proxy.authorization:
        fields["Proxy-Authorization"] = proxy.authorization
    clock = _Deadline(sock)  # read unbuffered: the bytes after the head are Vault's TLS
    clock.deadline = deadline
    try:
        sock.sendall(tunnel_bytes(authority, fields))
        _minor, status, reason, _headers = read_head(clock)
    except TimeoutError as exc:
        raise ConnectTimeout(f"proxy {proxy.shown} did not open a tunnel in time") from exc
    except (BadAnswer, OSError, ValueError) as exc:
        raise NotSent(f"proxy {proxy.shown} did not open a tunnel to {authority}: {exc}") from exc
    if not 200 <= status < 300:
        said = "".join(c if c.isprintable() else "?" for c in reason[:80])
        raise NotSent(f"proxy {proxy.shown} refused a tunnel to {authority}: {status} {said}")


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
        self._headers = _base_headers(namespace)

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
                content = _read_body(response.raw, time.monotonic() + timeout[1])
            except (requests.exceptions.RequestException, OSError) as exc:
                raise MaybeSent(f"{type(exc).__name__}: {exc}") from exc
        return Answer(response.status_code, response.reason or "", response.headers, content)


def _read_body(raw: Any, deadline: float) -> bytes:
    """Up to ``MAX_ANSWER + 1`` bytes of a ``requests`` answer, before ``deadline``
    (monotonic): each read returns what has arrived (``read1``), so a body trickled a byte at
    a time is cut off once the deadline passes (each read still waits at most the read
    timeout). The headers before it are read by ``requests``, line by line and size-capped,
    with the read timeout on every packet."""
    read = getattr(raw, "read1", None) or raw.read  # urllib3 1.x has no read1
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_ANSWER:
        if time.monotonic() > deadline:
            raise TimeoutError("the answer did not arrive in time (timed out)")
        chunk = read(min(65536, MAX_ANSWER + 1 - size), decode_content=True)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
