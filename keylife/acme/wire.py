"""Every answer of the CA, validated into a typed message before anything uses it.

A CA is outside input: each parser here takes the decoded JSON of one response (anything at
all) and returns a frozen dataclass, or raises :class:`keylife.errors.AcmeResponseError` naming
the URL and the field that is wrong. Nothing else escapes: no ``KeyError`` on a missing field, no
``AttributeError`` on a list where an object belongs. URLs the CA hands out must be ``https``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keylife.acme.csr import Identifier
from keylife.errors import AcmeResponseError

#: Largest JSON body and certificate chain keylife reads from a CA.
JSON_LIMIT = 1 << 20
CHAIN_LIMIT = 1 << 20
#: Retry-After values past this are clamped (a CA cannot park a client for years).
MAX_RETRY_AFTER = dt.timedelta(days=30)

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,512}")
_ORDER_STATES = ("pending", "ready", "processing", "valid", "invalid")
_AUTHZ_STATES = ("pending", "valid", "invalid", "deactivated", "expired", "revoked")
_CHALLENGE_STATES = ("pending", "processing", "valid", "invalid")
_ACCOUNT_STATES = ("valid", "deactivated", "revoked")
ERROR_PREFIX = "urn:ietf:params:acme:error:"


def bad(url: str, field: str, expected: str, got: Any = None) -> AcmeResponseError:
    """The error for a malformed field of the answer from ``url``."""
    seen = "" if got is None else f", got {type(got).__name__}"
    return AcmeResponseError(
        f"the ACME server's answer from {url} is malformed: {field} must be {expected}{seen}",
        url=url,
        field=field,
    )


def decode_json(url: str, body: bytes, *, limit: int = JSON_LIMIT) -> Any:
    """Decode a JSON body of at most ``limit`` bytes (deep nesting and bad UTF-8 refused)."""
    if len(body) > limit:
        raise AcmeResponseError(
            f"the answer from {url} is larger than {limit} bytes", url=url, field="body"
        )
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise AcmeResponseError(
            f"the answer from {url} is not JSON ({type(exc).__name__})", url=url, field="body"
        ) from None


def obj(url: str, value: Any, field: str = "body") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise bad(url, field, "a JSON object", value)
    return value


def text(
    url: str, jobj: Mapping[str, Any], key: str, *, required: bool = True, label: str = ""
) -> str | None:
    value = jobj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise bad(url, label + key, "a non-empty string", value)
    return value


def https_url(
    url: str, jobj: Mapping[str, Any], key: str, *, required: bool = True, label: str = ""
) -> str | None:
    value = text(url, jobj, key, required=required, label=label)
    if value is not None and (not value.lower().startswith("https://") or len(value) > 2048):
        raise bad(url, label + key, "an https:// URL")
    return value


def status(url: str, jobj: Mapping[str, Any], allowed: tuple[str, ...]) -> str:
    value = jobj.get("status")
    if value not in allowed:
        raise bad(url, "status", "one of " + ", ".join(allowed))
    return str(value)


def url_list(url: str, jobj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = jobj.get(key, [])
    if not isinstance(value, list):
        raise bad(url, key, "a list of URLs", value)
    return tuple(str(https_url(url, {key: item}, key)) for item in value)


# -- messages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Directory:
    """RFC 8555 §7.1.1 plus RFC 9773's ``renewalInfo``."""

    url: str
    new_nonce: str
    new_account: str
    new_order: str
    revoke_cert: str | None = None
    key_change: str | None = None
    renewal_info: str | None = None
    terms_of_service: str | None = None
    external_account_required: bool = False

    def resource(self, name: str) -> str | None:
        return {
            "newNonce": self.new_nonce,
            "newAccount": self.new_account,
            "newOrder": self.new_order,
            "revokeCert": self.revoke_cert,
            "keyChange": self.key_change,
            "renewalInfo": self.renewal_info,
        }.get(name)


def parse_directory(url: str, body: Any) -> Directory:
    jobj = obj(url, body)
    meta = obj(url, jobj.get("meta") or {}, "meta")
    tos = meta.get("termsOfService")
    if tos is not None and not isinstance(tos, str):
        raise bad(url, "meta.termsOfService", "a string", tos)
    eab = meta.get("externalAccountRequired", False)
    if not isinstance(eab, bool):
        raise bad(url, "meta.externalAccountRequired", "true or false", eab)
    return Directory(
        url=url,
        new_nonce=str(https_url(url, jobj, "newNonce")),
        new_account=str(https_url(url, jobj, "newAccount")),
        new_order=str(https_url(url, jobj, "newOrder")),
        revoke_cert=https_url(url, jobj, "revokeCert", required=False),
        key_change=https_url(url, jobj, "keyChange", required=False),
        renewal_info=https_url(url, jobj, "renewalInfo", required=False),
        terms_of_service=tos or None,
        external_account_required=eab,
    )


@dataclass(frozen=True)
class Account:
    url: str
    status: str


def parse_account(url: str, body: Any) -> Account:
    jobj = obj(url, body)
    return Account(url=url, status=status(url, jobj, _ACCOUNT_STATES))


def parse_identifier(url: str, value: Any, field: str = "identifier") -> Identifier:
    jobj = obj(url, value, field)
    kind = jobj.get("type")
    if kind not in ("dns", "ip"):
        raise bad(url, f"{field}.type", "dns or ip")
    name = jobj.get("value")
    if not isinstance(name, str) or not 0 < len(name) <= 255:
        raise bad(url, f"{field}.value", "a name of 1 to 255 characters", name)
    return Identifier("ip" if kind == "ip" else "dns", name)


@dataclass(frozen=True)
class Problem:
    """An RFC 7807 problem document as ACME uses it (§6.7)."""

    type: str
    detail: str = ""
    title: str = ""
    identifier: str | None = None
    subproblems: tuple[Problem, ...] = ()

    @property
    def code(self) -> str | None:
        return self.type[len(ERROR_PREFIX) :] if self.type.startswith(ERROR_PREFIX) else None

    def describe(self) -> str:
        head = f"{self.code or self.type}: {self.detail or self.title or 'no detail'}"
        if self.identifier:
            head = f"{self.identifier}: {head}"
        for sub in self.subproblems:
            head += f"; {sub.identifier or '?'}: {sub.code or sub.type}: {sub.detail}"
        return head[:2000]


def parse_problem(body: Any, *, depth: int = 0) -> Problem | None:
    """A problem document, or ``None`` if ``body`` is not one (never raises)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("type"), str):
        return None

    def field(key: str) -> str:
        value = body.get(key)
        return value[:1000] if isinstance(value, str) else ""

    ident = body.get("identifier")
    ident_value = None
    if isinstance(ident, Mapping) and isinstance(ident.get("value"), str):
        ident_value = str(ident["value"])[:255]
    subs: list[Problem] = []
    raw_subs = body.get("subproblems")
    if depth == 0 and isinstance(raw_subs, list):
        for raw in raw_subs[:50]:
            sub = parse_problem(raw, depth=1)
            if sub is not None:
                subs.append(sub)
    return Problem(
        str(body["type"])[:200], field("detail"), field("title"), ident_value, tuple(subs)
    )


@dataclass(frozen=True)
class Challenge:
    type: str
    url: str
    status: str
    token: str | None = None
    error: Problem | None = None


def parse_challenge(url: str, value: Any, field: str = "challenge") -> Challenge:
    jobj = obj(url, value, field)
    kind = jobj.get("type")
    if not isinstance(kind, str) or not kind:
        raise bad(url, f"{field}.type", "a non-empty string", kind)
    chall_url = https_url(url, jobj, "url", label=f"{field}.")
    state = jobj.get("status", "pending")
    if state not in _CHALLENGE_STATES:
        raise bad(url, f"{field}.status", "one of " + ", ".join(_CHALLENGE_STATES))
    token = jobj.get("token")
    if kind in ("http-01", "dns-01", "tls-alpn-01") and (
        not isinstance(token, str) or not _TOKEN.fullmatch(token)
    ):
        raise bad(url, f"{field}.token", "a base64url token")
    return Challenge(
        type=kind,
        url=str(chall_url),
        status=str(state),
        token=token if isinstance(token, str) else None,
        error=parse_problem(jobj.get("error")),
    )


@dataclass(frozen=True)
class Authorization:
    url: str
    status: str
    identifier: Identifier
    wildcard: bool
    challenges: tuple[Challenge, ...]

    @property
    def display(self) -> str:
        return f"*.{self.identifier.value}" if self.wildcard else self.identifier.value

    def failure(self) -> str:
        for chall in self.challenges:
            if chall.error is not None:
                return chall.error.describe()
        return f"authorization is {self.status}"


def parse_authorization(url: str, body: Any) -> Authorization:
    jobj = obj(url, body)
    challs = jobj.get("challenges", [])
    if not isinstance(challs, list):
        raise bad(url, "challenges", "a list of challenge objects", challs)
    wildcard = jobj.get("wildcard", False)
    if not isinstance(wildcard, bool):
        raise bad(url, "wildcard", "true or false", wildcard)
    return Authorization(
        url=url,
        status=status(url, jobj, _AUTHZ_STATES),
        identifier=parse_identifier(url, jobj.get("identifier")),
        wildcard=wildcard,
        challenges=tuple(
            parse_challenge(url, c, f"challenges[{i}]") for i, c in enumerate(challs[:20])
        ),
    )


@dataclass(frozen=True)
class Order:
    """An ACME order as last seen."""

    url: str
    status: str
    identifiers: tuple[Identifier, ...]
    authorizations: tuple[str, ...]
    finalize: str
    certificate: str | None = None
    replaces: str | None = None
    error: Problem | None = None


def parse_order(url: str, body: Any) -> Order:
    jobj = obj(url, body)
    idents = jobj.get("identifiers", [])
    if not isinstance(idents, list) or len(idents) > 100:
        raise bad(url, "identifiers", "a list of identifiers", idents)
    replaces = jobj.get("replaces")
    return Order(
        url=url,
        status=status(url, jobj, _ORDER_STATES),
        identifiers=tuple(
            parse_identifier(url, i, f"identifiers[{n}]") for n, i in enumerate(idents)
        ),
        authorizations=url_list(url, jobj, "authorizations")[:100],
        finalize=str(https_url(url, jobj, "finalize")),
        certificate=https_url(url, jobj, "certificate", required=False),
        replaces=replaces if isinstance(replaces, str) else None,
        error=parse_problem(jobj.get("error")),
    )


def parse_retry_after(value: Any, now: dt.datetime) -> dt.datetime | None:
    """A Retry-After header (seconds or an HTTP date) as an absolute UTC time, clamped to
    :data:`MAX_RETRY_AFTER` ahead; ``None`` when absent or unreadable."""
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        return None
    value = value.strip()
    latest = now + MAX_RETRY_AFTER
    if value.isascii() and value.isdigit():
        seconds = int(value)
        if seconds > MAX_RETRY_AFTER.total_seconds():
            return latest
        return now + dt.timedelta(seconds=seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(when.astimezone(dt.UTC), latest)


__all__ = [
    "CHAIN_LIMIT",
    "JSON_LIMIT",
    "Account",
    "Authorization",
    "Challenge",
    "Directory",
    "Order",
    "Problem",
    "decode_json",
    "parse_account",
    "parse_authorization",
    "parse_challenge",
    "parse_directory",
    "parse_identifier",
    "parse_order",
    "parse_problem",
    "parse_retry_after",
]
