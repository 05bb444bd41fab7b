"""Fuzzing every parser of what a CA (or an operator) hands keylife's ACME client.

Property for each: a typed result or a keylife ``AcmeError``; never another exception.
Inputs are random JSON built from the ACME field names, and valid messages with fields
removed or replaced by random JSON.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from typing import Any

import requests
from acme import messages
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keylife.acme.csr import parse_identifier
from keylife.acme.issued import IssuedCertificate
from keylife.acme.network import AcmeNetwork
from keylife.acme.renewal import RenewalInfo, parse_renewal_info
from keylife.acme.wire import (
    MAX_RETRY_AFTER,
    Account,
    Authorization,
    Challenge,
    Directory,
    Order,
    Problem,
    decode_json,
    parse_account,
    parse_authorization,
    parse_challenge,
    parse_directory,
    parse_order,
    parse_problem,
    parse_retry_after,
)
from keylife.errors import AcmeError

FUZZ = settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow], database=None
)
URL = "https://ca.test/x"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
KEYS = [
    *("status", "type", "value", "identifier", "identifiers", "challenges", "token", "url"),
    *("wildcard", "authorizations", "finalize", "certificate", "replaces", "error", "detail"),
    *("title", "subproblems", "newNonce", "newAccount", "newOrder", "revokeCert", "keyChange"),
    *("renewalInfo", "meta", "termsOfService", "externalAccountRequired", "suggestedWindow"),
    *("start", "end", "explanationURL"),
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["https://ca.test/a", "http://ca.test/a", "valid", "pending", "dns", "ip"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=6)
    ),
    max_leaves=25,
)

CHALL = {"type": "http-01", "url": "https://ca.test/c", "status": "pending", "token": "abc_-1"}
VALID: dict[str, Any] = {
    "directory": {
        "newNonce": "https://ca.test/n",
        "newAccount": "https://ca.test/a",
        "newOrder": "https://ca.test/o",
        "renewalInfo": "https://ca.test/r",
        "meta": {"termsOfService": "https://ca.test/tos", "externalAccountRequired": False},
    },
    "account": {"status": "valid"},
    "order": {
        "status": "pending",
        "identifiers": [{"type": "dns", "value": "a.example"}],
        "authorizations": ["https://ca.test/z"],
        "finalize": "https://ca.test/f",
        "certificate": "https://ca.test/cert",
        "error": {"type": "urn:ietf:params:acme:error:malformed", "detail": "x"},
    },
    "authorization": {
        "status": "pending",
        "identifier": {"type": "dns", "value": "a.example"},
        "wildcard": False,
        "challenges": [CHALL, {**CHALL, "type": "dns-01"}],
    },
    "challenge": CHALL,
    "problem": {
        "type": "urn:ietf:params:acme:error:rejectedIdentifier",
        "detail": "no",
        "subproblems": [{"type": "x", "identifier": {"type": "dns", "value": "a"}}],
    },
    "renewal": {
        "suggestedWindow": {"start": "2026-07-01T00:00:00Z", "end": "2026-07-02T00:00:00Z"},
        "explanationURL": "https://ca.test/why",
    },
}


def mutated(name: str) -> st.SearchStrategy[Any]:
    """The valid message with some fields dropped or replaced by random JSON (recursively)."""

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        return mutate(VALID[name], draw)

    def mutate(value: Any, data: st.DrawFn) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                action = data(st.sampled_from(["keep", "keep", "drop", "junk", "deep"]))
                if action == "keep":
                    out[key] = item
                elif action == "junk":
                    out[key] = data(json_values)
                elif action == "deep":
                    out[key] = mutate(item, data)
            return out
        if isinstance(value, list):
            return [mutate(v, data) for v in value] + data(st.lists(json_values, max_size=2))
        return value

    return build()


def inputs(name: str) -> st.SearchStrategy[Any]:
    return json_values | mutated(name)


def typed_or_acme_error(parse: Any, body: Any, kind: type) -> None:
    try:
        result = parse(URL, body)
    except AcmeError:
        return
    assert isinstance(result, kind)


@FUZZ
@given(inputs("directory"))
def test_directory(body):
    typed_or_acme_error(parse_directory, body, Directory)


@FUZZ
@given(inputs("account"))
def test_account(body):
    typed_or_acme_error(parse_account, body, Account)


@FUZZ
@given(inputs("order"))
def test_order(body):
    typed_or_acme_error(parse_order, body, Order)


@FUZZ
@given(inputs("authorization"))
def test_authorization(body):
    typed_or_acme_error(parse_authorization, body, Authorization)


@FUZZ
@given(inputs("challenge"))
def test_challenge(body):
    typed_or_acme_error(parse_challenge, body, Challenge)


@FUZZ
@given(inputs("problem"))
def test_problem(body):
    problem = parse_problem(body)  # never raises
    assert problem is None or isinstance(problem, Problem)
    if problem is not None:
        assert isinstance(problem.describe(), str)


@FUZZ
@given(inputs("renewal"), st.none() | st.text(max_size=40) | st.integers().map(str))
def test_renewal_info(body, retry_after):
    try:
        info = parse_renewal_info(body, retry_after, NOW)
    except AcmeError:
        return
    assert isinstance(info, RenewalInfo) and info.start <= info.end
    assert NOW < info.retry_after <= NOW + dt.timedelta(days=7)


@FUZZ
@given(
    st.none()
    | st.text(max_size=60)
    | st.integers(min_value=0, max_value=10**40).map(str)
    | st.datetimes(timezones=st.just(dt.UTC)).map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT"))
)
def test_retry_after(value):
    when = parse_retry_after(value, NOW)
    assert when is None or when <= NOW + MAX_RETRY_AFTER


@FUZZ
@given(st.binary(max_size=300) | json_values.map(lambda v: repr(v).encode()))
def test_decode_json(body):
    with contextlib.suppress(AcmeError):
        decode_json(URL, body)


@FUZZ
@given(st.text(max_size=80) | st.sampled_from(["*.a.example", "[::1]", "exämple.com", "a..b"]))
def test_domain_names(name):
    try:
        ident = parse_identifier(name)
    except AcmeError:
        return
    if ident.type == "dns":
        assert re.fullmatch(r"(\*\.)?[a-z0-9.-]{1,253}", ident.value), ident


@FUZZ
@given(
    st.integers(min_value=100, max_value=599),
    st.binary(max_size=200) | json_values.map(lambda v: repr(v).encode()),
    st.none() | st.text(max_size=20),
)
def test_check_response(status, body, retry_after):
    response = requests.Response()
    response.status_code = status
    response.url = URL
    vars(response).update(_content=body, _content_consumed=True)
    if retry_after is not None and retry_after.isprintable() and retry_after.isascii():
        response.headers["Retry-After"] = retry_after
    with contextlib.suppress(AcmeError, messages.Error):
        AcmeNetwork._check_response(response, content_type="application/json")


@FUZZ
@given(
    st.text(max_size=200).map(
        lambda t: f"-----BEGIN CERTIFICATE-----\n{t}\n-----END CERTIFICATE-----\n"
    )
    | st.text(max_size=100)
)
def test_certificate_chain(text):
    with contextlib.suppress(AcmeError):
        IssuedCertificate.from_fullchain(text, URL)
