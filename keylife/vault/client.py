"""A small Vault/OpenBao HTTP client, built for a cron job and a cluster (requests travel over
:mod:`keylife.vault.transport`; errors keep hvac's exception as their cause).

What hvac alone does not give (measured against OpenBao 2.7, see docs/vault.md):

- several addresses: a dead node, a sealed node or a standby that redirects (307) to a dead
  leader is skipped and the next address is tried; redirects are never followed blindly;
- explicit timeouts (connect, read) on every request, and retries with exponential backoff
  and jitter on connection errors, 500/502/503, sealed answers and "not ready" answers, up to
  a deadline; the final error names every address tried and what each one answered;
- transport failures and Vault's refusals become keylife errors (``__cause__`` kept);
- token renewal for long runs, and AppRole login (role id and secret id from the
  environment or files);
- one keep-alive connection per thread and address (bulk reads use a thread pool).

Nothing here ever logs or formats a request body: bodies may hold key material on its way
to Transit.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..errors import (
    CasMismatch,
    StoreError,
    StoreUnavailableError,
    TokenExpiredError,
    VaultPermissionError,
)
from .identity import identity_from_lookup
from .settings import VaultSettings
from .transport import (
    MAX_ANSWER,
    Connections,
    MaybeSent,
    NotSent,
    ProxiedSession,
    TLSFailure,
    TransportError,
    environment_proxies,
    is_http_proxy,
    proxy_for,
)

__all__ = ["VaultClient", "VaultSettings", "b64", "q"]

#: Statuses that mean "this node cannot answer now; another node or a later try may".
_RETRY_STATUS = frozenset({412, 429, 500, 502, 503, 504})
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
#: 400 answers that are transient (a new kv-v2 mount seen from a Raft standby).
_TRANSIENT_400 = ("waiting for the primary to upgrade", "upgrading from non-versioned")
_CAS_MESSAGE = "check-and-set parameter did not match"
_LOOKUP_SELF = "auth/token/lookup-self"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Attempts:
    """What each address answered, for the final error message."""

    def __init__(self) -> None:
        self.count = 0
        self.last: dict[str, str] = {}

    def note(self, address: str, what: str) -> None:
        self.count += 1
        self.last[address] = what

    def describe(self) -> str:
        return "; ".join(f"{a}: {w}" for a, w in self.last.items())


@dataclass
class _Call:
    """One logical request and what its attempts met so far."""

    method: str
    path: str
    json: Mapping[str, Any] | None
    what: str
    auth: bool
    end: float
    attempts: _Attempts = field(default_factory=_Attempts)
    ambiguous: bool = False


def _answer(call: _Call, address: str, response: Any) -> tuple[int, dict[str, Any] | None, bool]:
    """A final answer: ``(status, body, ambiguous)`` for 200/204/404, else the keylife error."""
    from hvac import exceptions as hvac_exc

    status = response.status_code
    body = _json(response)
    problem = answer_problem(call.path, status, response, body)
    if problem:
        raise unexpected_answer(address, call.what, problem)
    if status in (200, 204, 404):
        return status, body, call.ambiguous
    errors = _errors(body)
    method, path, what = call.method, call.path, call.what
    cause = hvac_exc.VaultError.from_status(
        status, errors, errors=[errors], method=method, url=f"{address}/v1/{path}"
    )
    if status == 400 and _CAS_MESSAGE in errors:
        raise CasMismatch(f"{what}: check-and-set lost", path=path) from cause
    if status in (401, 403):
        detail = (
            f"HTTP 403 permission denied on {method} {path} at {address}); the token's "
            "policies do not allow it"
            if status == 403
            else "HTTP 401): the token is missing or invalid"
        )
        raise VaultPermissionError(
            f"Vault refused {what} ({detail}", path=path, address=address
        ) from cause
    raise StoreError(
        f"Vault refused {what} (HTTP {status} on {method} {path} at {address}): "
        f"{errors or response.reason}"
    ) from cause


class VaultClient:
    """Thread-safe; every method is one logical operation with retries until the deadline."""

    def __init__(self, settings: VaultSettings) -> None:
        self.settings = settings
        self._transports: dict[str, Connections | ProxiedSession] = {}
        self._lock = threading.Lock()
        self._preferred = 0
        self._token = settings.token
        self._token_expires: float | None = None  # monotonic time; None: unknown / no expiry
        self._token_checked = False
        #: lookup-self worked with this token: a later refusal of it means the token is dead
        self._lookup_ok = False
        self._closed = False
        #: monotonic time since when Vault has been unreachable (a request ran out of its
        #: deadline); while set, requests try each address once instead of waiting again, so a
        #: run over many rings fails fast instead of waiting a deadline per ring.
        self._down_since: float | None = None
        #: (token, identity) from the last lookup-self: see :meth:`identity`.
        self._identity: tuple[str | None, str] | None = None
        self._identity_lock = threading.Lock()  # threads of a run ask once, not each

    # ---- plumbing -----------------------------------------------------------------------

    def _transport(self, address: str) -> Connections | ProxiedSession:
        transport = self._transports.get(address)
        if transport is None:
            s = self.settings
            # the proxy settings of the environment (HTTP(S)_PROXY, NO_PROXY), looked up once
            # for this address instead of twice per request (a scan of the whole environment)
            proxies = environment_proxies(address)
            proxy = proxy_for(address, proxies)
            with self._lock:
                transport = self._transports.get(address)
                if transport is None:
                    transport = (
                        Connections(address, s.verify, s.namespace, proxy)
                        if proxy is None or is_http_proxy(proxy)
                        else ProxiedSession(address, s.verify, s.namespace, proxies)
                    )
                    self._transports[address] = transport
        return transport

    def close(self) -> None:
        with self._lock:
            transports, self._transports = self._transports, {}
            self._closed = True
        for transport in transports.values():
            transport.close()

    @property
    def address(self) -> str:
        """The address that answered last (the one tried first next time)."""
        return self.settings.addresses[self._preferred]

    def unexpected(self, what: str, detail: str) -> StoreUnavailableError:
        """The error for a Vault answer whose content is not what the endpoint returns."""
        return unexpected_answer(self.address, what, detail)

    @property
    def token(self) -> str | None:
        """The token in use (after an AppRole login: the one it gave)."""
        return self._token

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        what: str,
        auth: bool = True,
        deadline: float | None = None,
    ) -> tuple[int, dict[str, Any] | None, bool]:
        """One API call: ``(status, body, ambiguous)``; retries transient failures.

        ``status`` is 200/204 or 404 (returned, not raised). ``ambiguous`` is True when an
        earlier attempt of this write may have reached Vault (a timeout or a dropped
        connection after sending), so a later check-and-set mismatch may be our own write.
        Raises :class:`CasMismatch` on a check-and-set mismatch, :class:`VaultPermissionError`
        on 403, :class:`StoreUnavailableError` when the deadline passes.
        """
        if auth:
            self._ensure_token()
        budget = self.settings.deadline if deadline is None else deadline
        if self._down_since is not None:
            budget = 0.0
        call = _Call(method, path, json, what, auth, time.monotonic() + budget)
        addresses = self.settings.addresses
        round_no = 0
        while True:
            start = self._preferred
            for i in range(len(addresses)):
                index = (start + i) % len(addresses)
                response = self._attempt(addresses[index], call)
                if response is None:
                    continue
                with self._lock:
                    self._preferred = index
                    self._down_since = None
                try:
                    return _answer(call, addresses[index], response)
                except VaultPermissionError as exc:
                    self._check_token_alive(call, addresses[index], exc)
                    raise
            round_no += 1
            now = time.monotonic()
            if now >= call.end:
                raise self._give_up(call, budget, now)
            pause = min(2.0, 0.05 * 2 ** min(round_no, 6)) * (0.5 + random.random() / 2)
            time.sleep(max(0.0, min(pause, call.end - now)))

    def _attempt(self, address: str, call: _Call) -> Any:
        """One try at one address: the response, or None (noted in ``call``) to try on."""
        headers = {"X-Vault-Token": self._token} if call.auth and self._token else {}
        # never wait on one answer past the deadline (a stopping node may accept the
        # connection and never answer)
        left = max(0.5, call.end - time.monotonic())
        timeout = (min(self.settings.connect_timeout, left), min(self.settings.read_timeout, left))
        try:
            response = self._transport(address).request(
                call.method,
                f"/v1/{call.path}",
                headers=headers,
                json_body=call.json,
                timeout=timeout,
            )
        except TLSFailure as exc:
            ca = self.settings.cacert
            trust = f"the CA file {ca}" if ca else "the system CAs"
            raise StoreUnavailableError(
                f"TLS to Vault at {address} failed ({call.what}): the certificate is not "
                f"trusted by {trust} ({_short(exc)}); set VAULT_CACERT (or cacert=) to the "
                "CA that signed Vault's certificate"
            ) from exc
        except NotSent as exc:
            call.attempts.note(address, _short(exc))
            return None
        except MaybeSent as exc:
            # The request may have been sent: a write might have been applied.
            call.ambiguous = call.ambiguous or call.method not in ("GET", "LIST")
            call.attempts.note(address, _short(exc))
            return None
        status = response.status_code
        if status in _REDIRECT_STATUS:
            where = response.headers.get("Location", "?")
            call.attempts.note(address, f"HTTP {status} redirect to {where} (no leader?)")
            return None
        errors = _errors(_json(response))
        if status in _RETRY_STATUS or (
            status == 400 and any(t in errors.lower() for t in _TRANSIENT_400)
        ):
            if status in (500, 502, 504) and call.method not in ("GET", "LIST"):
                call.ambiguous = True
            call.attempts.note(address, f"HTTP {status} {errors or response.reason}")
            return None
        return response

    def _give_up(self, call: _Call, budget: float, now: float) -> StoreUnavailableError:
        with self._lock:
            down = self._down_since
            if down is None:
                self._down_since = now
        if down is not None:
            return StoreUnavailableError(
                f"Vault unavailable: {call.what} failed; Vault has not answered for "
                f"{now - down:.0f} s (deadline {self.settings.deadline:g} s); tried "
                f"{call.attempts.describe()}"
            )
        unset = (
            "; VAULT_ADDR (or BAO_ADDR) is not set, so the default address was tried"
            if self.settings.address_defaulted
            else ""
        )
        return StoreUnavailableError(
            f"Vault unavailable: {call.what} failed after {call.attempts.count} attempts over "
            f"{budget:g} s (deadline); tried {call.attempts.describe()}{unset}"
        )

    # ---- auth -----------------------------------------------------------------------------

    def _ensure_token(self) -> None:
        s = self.settings
        if self._token is None and s.role_id and s.secret_id:
            self.login_approle()
        if self._token is None:
            raise StoreError(
                "no Vault token: set VAULT_TOKEN, or KEYLIFE_VAULT_ROLE_ID(_FILE) and "
                "KEYLIFE_VAULT_SECRET_ID(_FILE) for AppRole"
            )
        if not self._token_checked:
            self._token_checked = True
            self._lookup_self()
        if self._token_expires is not None and time.monotonic() > self._token_expires:
            self._renew()

    def login_approle(self) -> None:
        s = self.settings
        _status, body, _ = self.request(
            "POST",
            f"auth/{s.approle_mount}/login",
            json={"role_id": s.role_id, "secret_id": s.secret_id},
            what="AppRole login",
            auth=False,
        )
        auth = (body or {}).get("auth") or {}
        token = auth.get("client_token")
        if not token:
            raise StoreError("AppRole login returned no token")
        self._token = str(token)
        self._token_checked = True
        self._lookup_ok = "default" in (auth.get("policies") or [])
        self._schedule_renewal(auth.get("lease_duration"), auth.get("renewable"))

    def _schedule_renewal(self, ttl: Any, renewable: Any) -> None:
        if ttl and int(ttl) > 0 and renewable is not False:
            # Renew when half of the TTL has passed.
            self._token_expires = time.monotonic() + int(ttl) / 2
        else:
            self._token_expires = None

    def _check_token_alive(self, call: _Call, address: str, refused: Exception) -> None:
        """After a 403: when this token could look itself up before and cannot now, the token
        expired or was revoked (not a policy refusal): :class:`TokenExpiredError`."""
        if not call.auth or not self._lookup_ok or call.path == _LOOKUP_SELF:
            return
        try:
            self.request("GET", _LOOKUP_SELF, what="token lookup")
        except VaultPermissionError:
            with self._lock:
                self._lookup_ok = False
            raise TokenExpiredError(
                f"Vault at {address} refused the token itself ({call.what} and token lookup "
                "refused): the token expired or was revoked; give keylife a valid token "
                "(VAULT_TOKEN, or AppRole) and run again",
                address=address,
            ) from refused

    def _lookup_self(self) -> None:
        try:
            status, body, _ = self.request("GET", _LOOKUP_SELF, what="token lookup")
        except VaultPermissionError:
            return  # a token without lookup-self: no renewal
        self._lookup_ok = status == 200
        if status == 200 and body:
            data = body.get("data") or {}
            self._schedule_renewal(data.get("ttl"), data.get("renewable"))

    def identity(self) -> str:
        """Who Vault says this token is (see :func:`identity_from_lookup`), from
        ``auth/token/lookup-self``; ``vault:unknown (...)`` when the token may not look itself
        up."""
        with self._identity_lock:
            cached = self._identity
            if cached is not None and cached[0] == self._token:  # asked once per token
                return cached[1]
            try:
                status, body, _ = self.request("GET", "auth/token/lookup-self", what="token lookup")
            except VaultPermissionError:
                return "vault:unknown (the token may not call lookup-self)"
            found = identity_from_lookup(body if status == 200 else None)
            self._identity = (self._token, found)
            return found

    def _renew(self) -> None:
        self._token_expires = None  # before the call: request() must not renew again
        body: dict[str, Any] | None = None
        try:
            _s, body, _ = self.request(
                "POST",
                "auth/token/renew-self",
                json={"increment": self.settings.renew_increment},
                what="token renewal",
            )
        except VaultPermissionError:
            body = None
        auth = (body or {}).get("auth") or {}
        if auth.get("client_token"):
            self._schedule_renewal(auth.get("lease_duration"), auth.get("renewable"))
        elif self.settings.role_id and self.settings.secret_id:
            self.login_approle()


#: 200 answers of these endpoints carry their fields at the top level (no ``data``)
_TOP_LEVEL = {"sys/health": "initialized", "sys/leader": "ha_enabled", "sys/seal-status": "sealed"}


def answer_problem(path: str, status: int, response: Any, body: dict[str, Any] | None) -> str:
    """Why ``response`` is not an answer Vault gives ("" when it is one).

    Vault answers JSON objects (``application/json``) except for an empty 204: a 200 carries
    ``data`` or ``auth`` (a few ``sys/`` endpoints: their own fields), a 404 or any error
    carries ``errors``. A proxy's maintenance page, an empty or ``{}`` body is none of these.
    """
    length = getattr(response, "size", None)
    if length is None:
        length = len(response.content or b"")
    if length > MAX_ANSWER:
        return f"HTTP {status}, a body of {length} bytes"
    if status == 204:
        return "" if length == 0 else "HTTP 204 with a body"
    ctype = str(response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        return f"HTTP {status}, content type {ctype or 'none'}, {length} bytes"
    if body is None:
        return f"HTTP {status}, not a JSON object"
    if status == 200:
        key = _TOP_LEVEL.get(path.split("?", 1)[0])
        if key is not None:
            return "" if key in body else f"HTTP 200 without {key!r}"
        if "data" in body or "auth" in body:
            return ""
        return "HTTP 200 without 'data' or 'auth'"
    if isinstance(body.get("errors"), list):
        return ""
    if status == 404 and isinstance(body.get("warnings"), list):
        return ""  # KV v2: "Invalid path for a versioned K/V secrets engine"
    meta = body.get("data", {}).get("metadata") if isinstance(body.get("data"), dict) else None
    if status == 404 and isinstance(meta, dict) and meta.get("deletion_time"):
        return ""  # KV v2: the current version is deleted (``keylife key delete``)
    return f"HTTP {status} without 'errors'"


def unexpected_answer(address: str, what: str, detail: str) -> StoreUnavailableError:
    """The error for an answer that is not Vault's (a proxy, a maintenance page, a bad body)."""
    return StoreUnavailableError(
        f"Vault unavailable: unexpected answer from {address} ({what}: {detail}); is a proxy "
        "or load balancer answering instead of Vault?"
    )


def _json(response: Any) -> dict[str, Any] | None:
    if not response.content:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _errors(body: dict[str, Any] | None) -> str:
    if not body:
        return ""
    errs = body.get("errors") or []
    return "; ".join(str(e).replace("\n", " ").replace("\t", "").strip() for e in errs)


def _short(exc: BaseException) -> str:
    if isinstance(exc, TransportError) and exc.__cause__ is not None:
        exc = exc.__cause__  # what the socket or TLS layer said
    name, text = type(exc).__name__, str(exc)
    if "Connection refused" in text:
        return f"{name} (connection refused)"
    if "timed out" in text.lower():
        return f"{name} (timed out)"
    if "reset" in text.lower():
        return f"{name} (connection reset)"
    return f"{name} ({text[:120]})"


def q(segment: str) -> str:
    """Quote one path segment."""
    return quote(segment, safe="")
