"""HTTP to the CA: https only, one overall deadline per operation, a size cap on every body.

``acme.client.ClientNetwork`` signs requests and keeps nonces; this subclass changes how bytes
move. Every request is streamed and read with a cap (:data:`~keylife.acme.wire.JSON_LIMIT`,
:data:`~keylife.acme.wire.CHAIN_LIMIT`), so a huge answer costs at most the cap in memory.
Every request runs under the operation's :class:`Deadline`: per-read socket timeouts never
exceed what is left, and a watchdog shuts the connection's socket down when the deadline
passes, so a CA that answers one byte per second cannot keep a run alive past it.
Problem documents are validated (:func:`~keylife.acme.wire.parse_problem`) before they become
``acme.messages.Error``.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
import urllib3
from acme import client as acme_client
from acme import messages
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool

from keylife.acme.wire import (
    CHAIN_LIMIT,
    JSON_LIMIT,
    Problem,
    decode_json,
    parse_problem,
    parse_retry_after,
)
from keylife.errors import AcmeError, AcmeResponseError, AcmeTimeoutError

log = logging.getLogger(__name__)

USER_AGENT = "keylife-acme/0.1"
#: Overall deadline of one ACME operation (issue, revoke, rollover, renewal info), seconds.
DEFAULT_TIMEOUT = 300.0
_CHUNK = 64 * 1024


def _no_header_tracebacks(record: logging.LogRecord) -> bool:
    """urllib3 logs a traceback for unparsable headers; keylife reports the failure itself."""
    return not str(record.msg).startswith("Failed to parse headers")


for _name in ("urllib3.connection", "urllib3.connectionpool"):
    logging.getLogger(_name).addFilter(_no_header_tracebacks)


class Deadline:
    """A monotonic instant by which an operation must be done."""

    def __init__(self, seconds: float) -> None:
        if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
            raise AcmeError("the ACME timeout must be a positive number of seconds")
        self.seconds = float(seconds)
        self.end = time.monotonic() + self.seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self, what: str, url: str | None = None) -> float:
        """Seconds left; raises :class:`AcmeTimeoutError` when none are."""
        left = self.remaining()
        if left <= 0:
            raise AcmeTimeoutError(
                f"the ACME operation timed out after {self.seconds:g} s ({what}); "
                "raise --timeout if the CA is just slow",
                url=url,
                timeout=self.seconds,
            )
        return left


class _Watch:
    """The sockets one request uses; :meth:`fire` shuts them down (from the timer thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self.fired = False

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        try:
            # A duplicate descriptor of the same connection: shutting it down ends reads on the
            # original (TLS-wrapped or not) without touching its Python object from this thread.
            dup = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except OSError:
            return
        with self._lock:
            if self.fired:
                _shutdown(dup)
            self._socks.append(dup)

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            for dup in self._socks:
                _shutdown(dup)

    def close(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
        for dup in socks:
            dup.close()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_WATCH: contextvars.ContextVar[_Watch | None] = contextvars.ContextVar("keylife_acme_watch")


def _track(sock: socket.socket | None) -> None:
    watch = _WATCH.get(None)
    if watch is not None:
        watch.add(sock)


class _WatchedConnection(HTTPSConnection):
    """Registers its socket with the running request's watchdog (new and reused sockets)."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _track(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _track(self.sock)
        super().request(*args, **kwargs)


class _WatchedPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": _WatchedPool}


def read_capped(response: requests.Response, limit: int, deadline: Deadline, url: str) -> bytes:
    """The whole body, refused once it passes ``limit`` bytes."""
    length = response.headers.get("Content-Length", "")
    if length.strip().isdigit() and int(length) > limit:
        raise AcmeResponseError(
            f"the answer from {url} is {int(length)} bytes; keylife reads at most {limit}",
            url=url,
            field="body",
        )
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = response.raw.read(_CHUNK, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise AcmeResponseError(
                f"the answer from {url} is larger than {limit} bytes", url=url, field="body"
            )
        chunks.append(chunk)
        deadline.check("reading the answer", url)


class AcmeNetwork(acme_client.ClientNetwork):
    """ClientNetwork with deadlines, size caps, validated problems and patient badNonce retries.

    ``deadline`` returns the running operation's deadline; ``clock`` dates Retry-After.
    """

    def __init__(
        self,
        key: Any,
        alg: Any,
        *,
        verify: bool | str,
        timeout: float,
        bad_nonce_attempts: int,
        deadline: Callable[[], Deadline],
        clock: Callable[[], dt.datetime],
        account_url: str | None = None,
    ) -> None:
        super().__init__(key=key, alg=alg, user_agent=USER_AGENT, timeout=math.ceil(timeout))
        # ClientNetwork passes this to requests as ``verify``; a path selects a CA bundle.
        setattr(self, "verify_ssl", verify)  # noqa: B010 - typed bool upstream, str works
        self.session.mount("https://", _WatchedAdapter())
        self.bad_nonce_attempts = bad_nonce_attempts
        self.request_timeout = float(timeout)
        self.deadline = deadline
        self.clock = clock
        self.set_account(account_url)

    def set_account(self, account_url: str | None) -> None:
        if account_url is None:
            self.account = None
        else:
            self.account = messages.RegistrationResource(
                body=messages.Registration(), uri=account_url
            )

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        if not isinstance(url, str) or not url.lower().startswith("https://"):
            raise AcmeError(f"refusing {url!r}: ACME is spoken over https:// only")
        deadline = self.deadline()
        left = deadline.check(f"{method} {url}", url)
        headers = dict(kwargs.pop("headers", None) or {})
        headers.setdefault("User-Agent", self.user_agent)
        headers["Accept-Encoding"] = "identity"
        limit = CHAIN_LIMIT if "Accept" in headers else JSON_LIMIT
        kwargs.update(
            headers=headers,
            verify=self.verify_ssl,
            timeout=min(self.request_timeout, left),
            stream=True,
            allow_redirects=False,
        )
        watch = _Watch()
        token = _WATCH.set(watch)
        timer = threading.Timer(left, watch.fire)
        timer.daemon = True
        timer.start()
        try:
            response = self.session.request(method, url, *args, **kwargs)
            try:
                body = read_capped(response, limit, deadline, url)
            except BaseException:
                response.close()
                raise
            if watch.fired:  # the watchdog's shutdown can look like a short, complete answer
                raise OSError("connection shut down at the deadline")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if watch.fired or deadline.remaining() <= 0:
                deadline.check(f"{method} {url}", url)
                raise AcmeTimeoutError(
                    f"the ACME operation timed out after {deadline.seconds:g} s ({method} {url})",
                    url=url,
                    timeout=deadline.seconds,
                ) from exc
            if isinstance(exc, requests.RequestException):
                raise
            raise AcmeError(f"{method} {url} failed: {type(exc).__name__}") from exc
        finally:
            timer.cancel()
            _WATCH.reset(token)
            watch.close()
        # The body, read under the cap, stored where requests keeps a consumed body.
        vars(response).update(_content=body, _content_consumed=True)
        response.encoding = "utf-8"
        log.debug("%s %s -> HTTP %d, %d bytes", method, url, response.status_code, len(body))
        return response

    @classmethod
    def _check_response(
        cls, response: requests.Response, content_type: str | None = None
    ) -> requests.Response:
        url = str(response.url)
        if response.ok:
            if content_type == cls.JSON_CONTENT_TYPE:
                decode_json(url, response.content)
            return response
        jobj: Any = None
        if response.content:
            try:
                jobj = decode_json(url, response.content)
            except AcmeResponseError:
                jobj = None
        problem = parse_problem(jobj)
        if problem is None:
            raise AcmeResponseError(
                f"the ACME server answered HTTP {response.status_code} at {url} "
                "without a problem document",
                url=url,
                field="body",
            )
        raise problem_error(problem, response.headers.get("Retry-After"))

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        # Each ``super().post`` already tries twice on badNonce.
        rounds = max(1, math.ceil(self.bad_nonce_attempts / 2))
        for attempt in range(1, rounds + 1):
            try:
                response: requests.Response = super().post(*args, **kwargs)
                return response
            except messages.Error as problem:
                self._date(problem)
                if problem.code != "badNonce" or attempt == rounds:
                    raise
                log.debug("badNonce from the CA, retrying (round %d of %d)", attempt, rounds)
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, url: str, content_type: str = "application/json", **kwargs: Any) -> Any:
        try:
            return super().get(url, content_type=content_type, **kwargs)
        except messages.Error as problem:
            self._date(problem)
            raise

    def _date(self, problem: messages.Error) -> None:
        header = getattr(problem, "keylife_retry_after_header", None)
        problem.keylife_retry_after = parse_retry_after(header, self.clock())

    def close(self) -> None:
        self.session.close()


def problem_error(problem: Problem, retry_after: str | None) -> messages.Error:
    """The ``acme`` package's error for a validated problem, carrying the original."""
    fields: dict[str, Any] = {"typ": problem.type, "detail": problem.detail}
    if problem.title:
        fields["title"] = problem.title
    error = messages.Error(**fields)
    error.keylife_problem = problem
    error.keylife_retry_after_header = retry_after
    error.keylife_retry_after = None
    return error


__all__ = ["DEFAULT_TIMEOUT", "USER_AGENT", "AcmeNetwork", "Deadline", "problem_error"]
