"""The HTTP/1.1 exchange the Vault transport speaks (``keylife.vault.http11``): requests that
cannot smuggle anything, answers read within limits, and a fuzz test of the answer parser."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keylife.vault.http11 import MAX_HEADERS, MAX_LINE, BadAnswer, read_answer, request_bytes

CAP = 4096


def answer(data: bytes, method: str = "GET", cap: int = CAP):  # type: ignore[no-untyped-def]
    return read_answer(io.BufferedReader(io.BytesIO(data)), method, cap)  # type: ignore[arg-type]


def test_a_request_is_what_vault_expects() -> None:
    got = request_bytes("POST", "/v1/kv/data/a%2Fb", "127.0.0.1:8200", {"X-A": "1"}, b"{}")
    assert got == (
        b"POST /v1/kv/data/a%2Fb HTTP/1.1\r\nHost: 127.0.0.1:8200\r\nAccept-Encoding: identity\r\n"
        b"X-A: 1\r\nContent-Length: 2\r\n\r\n{}"
    )
    assert request_bytes("GET", "/v1/x", "h:1", {}, None).endswith(b"identity\r\n\r\n")


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        ("GET", "/v1/x", {"X-Vault-Token": "t\r\nX-Evil: 1"}),
        ("GET", "/v1/x", {"X-Evil\r\nA": "1"}),
        ("GET", "/v1/x y", {}),
        ("GET", "/v1/x\r\nHost: evil", {}),
        ("GET x", "/v1/x", {}),
        ("GET", "v1/x", {}),
    ],
)
def test_nothing_can_be_smuggled_into_a_request(
    method: str, target: str, headers: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="HTTP does not allow"):
        request_bytes(method, target, "h:1", headers, None)


def test_an_answer_by_content_length() -> None:
    reply = answer(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        b"X-A: 1\r\nx-a: 2\r\n\r\n{}"
    )
    assert (reply.status, reply.reason, reply.body, reply.keep_alive) == (200, "OK", b"{}", True)
    assert reply.headers.get("CONTENT-TYPE") == "application/json"
    assert reply.headers.get("x-a") == "1, 2"


def test_a_chunked_answer_with_trailers_and_a_skipped_100() -> None:
    reply = answer(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    assert (reply.status, reply.body, reply.keep_alive) == (404, b"abcde", True)


@pytest.mark.parametrize(
    ("data", "keep"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\n\r\nto the end", False),
    ],
)
def test_whether_the_connection_carries_the_next_request(data: bytes, keep: bool) -> None:
    assert answer(data).keep_alive is keep


def test_bodies_over_the_cap_are_not_read() -> None:
    declared = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n")
    assert (declared.oversized, declared.body, declared.keep_alive) == (99999999, b"", False)
    chunks = b"".join(b"400\r\n" + b"x" * 1024 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    chunked = answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    assert chunked.oversized == 5 * 1024 and chunked.body == b"" and not chunked.keep_alive
    endless = answer(b"HTTP/1.1 200 OK\r\n\r\n" + b"y" * (CAP + 10))
    assert endless.oversized == CAP + 1 and endless.body == b""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "ended 5 bytes before"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "ended in the header"),
        (b"HTTP/2 200 OK\r\n\r\n", "not an HTTP/1.x status line"),
        (b"<html>maintenance</html>\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "without a valid name"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "is not a number"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n", "is not a number"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not hexadecimal"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY", "not followed by"),
        (b"HTTP/1.1 200 OK\r\n" + b"A: b\r\n" * (MAX_HEADERS + 1) + b"\r\n", "header lines"),
        (b"HTTP/1.1 200 OK\r\nA: " + b"b" * MAX_LINE + b"\r\n\r\n", "longer than"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" * 11, "too many 1xx"),
    ],
)
def test_what_is_not_an_answer_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(BadAnswer, match=message):
        answer(data)


GOOD = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"data":{}}'


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda cut, junk, at: GOOD[:at] + junk + GOOD[at + cut :],
            st.integers(0, 10),
            st.binary(max_size=20),
            st.integers(0, len(GOOD)),
        ),
    )
)
def test_fuzzed_answers_parse_or_are_refused(data: bytes) -> None:
    try:
        reply = answer(data, cap=64)
    except BadAnswer as exc:
        assert "\n" not in str(exc)
        return
    assert 100 <= reply.status <= 599 and len(reply.body) <= 64
    if reply.oversized is not None:
        assert reply.body == b"" and not reply.keep_alive


@settings(max_examples=100, deadline=None)
@given(
    status=st.integers(200, 599).filter(lambda s: s not in (204, 304)),
    body=st.binary(max_size=200),
    chunked=st.booleans(),
    names=st.lists(st.from_regex(r"X-[A-Za-z0-9]{1,8}", fullmatch=True), max_size=5),
)
def test_well_formed_answers_round_trip(
    status: int, body: bytes, chunked: bool, names: list[str]
) -> None:
    head = f"HTTP/1.1 {status} Reason\r\n" + "".join(f"{n}: v\r\n" for n in names)
    if chunked:
        framed = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
        data = head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + framed
    else:
        data = head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    reply = answer(data + b"HTTP/1.1 200 OK\r\n")  # the next answer's bytes stay unread
    assert (reply.status, reply.body, reply.keep_alive) == (status, body, True)
    assert all(reply.headers.get(n) is not None for n in names)
