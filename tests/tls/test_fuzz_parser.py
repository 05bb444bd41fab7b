"""Fuzz the TLS record/handshake parser (issue 10): random bytes and mutated real flights.

Real flights are captured once, in memory, from a Python ``ssl`` server answering keylife's own
ClientHellos (ServerHello, Certificate, ServerKeyExchange for ECDHE and DHE, ServerHelloDone;
a TLS 1.3 HelloRetryRequest). Property: feeding any bytes, in any chunking, gives a keylife
error or a flight within the caps, never another exception, within the Hypothesis deadline.
The same holds for ``parse_client_hello`` and, end to end, for ``check_endpoint`` against a
loopback server answering with the mutated bytes.
"""

from __future__ import annotations

import itertools
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keylife.errors import FlightLimitError, HelloParseError, KeylifeError
from keylife.tls import check_endpoint, load_policy
from keylife.tls.certs import CERTIFICATE_ERRORS, evaluate_chain, load_chain
from keylife.tls.ciphersuites import GROUPS
from keylife.tls.clienthello import (
    MAX_CERTIFICATES,
    MAX_FLIGHT_BYTES,
    ClientHelloSpec,
    ServerFlightParser,
    TlsVersion,
    build_client_hello,
    parse_client_hello,
)
from keylife.tls.rules import FindingCollector
from tests.tls.peers import HostileServer
from tests.tls.pki import NOW, Pki

FUZZ = settings(
    max_examples=150,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALL_GROUPS = [g.code for g in GROUPS]
PROBES = {
    "ecdhe": (TlsVersion.TLS1_2, [0xC02F]),
    "dhe": (TlsVersion.TLS1_2, [0x009E]),
    "rsa": (TlsVersion.TLS1_2, [0x009C]),
    "tls13-hrr": (TlsVersion.TLS1_3, [0x1301]),
}


def _capture(pki: Pki) -> dict[str, bytes]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.load_cert_chain(pki.rsa_leaf.cert_path, pki.rsa_leaf.key_path)
    ctx.load_dh_params(pki.dh1024)
    flights = {}
    for name, (version, suites) in PROBES.items():
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        server = ctx.wrap_bio(incoming, outgoing, server_side=True)
        incoming.write(build_client_hello(ClientHelloSpec(version, suites, ALL_GROUPS, "a.test")))
        with pytest.raises(ssl.SSLWantReadError):
            server.do_handshake()
        flights[name] = outgoing.read()
    return flights


@pytest.fixture(scope="module")
def flights(pki: Pki) -> dict[str, bytes]:
    captured = _capture(pki)
    for name, data in captured.items():  # the seeds are real, complete and understood
        parsed = ServerFlightParser(PROBES[name][0]).feed(data)
        assert parsed.done and parsed.version is not None, name
    assert ServerFlightParser().feed(captured["dhe"]).dh_bits == 1024
    assert ServerFlightParser().feed(captured["ecdhe"]).group is not None
    return captured


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "length"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "length" and len(data) > at + 3:  # a length field at an extreme
            data[at : at + 3] = draw(
                st.sampled_from([b"\xff\xff\xff", b"\x00\x00\x00", b"\x7f\xff\xff"])
            )
    return bytes(data)


def _feed(data: bytes, cuts: list[int], version: TlsVersion | None = None) -> None:
    """The property: a keylife error, or a flight within the caps."""
    parser = ServerFlightParser(version)
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    try:
        for start, end in itertools.pairwise(bounds):
            flight = parser.feed(data[start:end])
            if flight.done:
                break
    except KeylifeError:
        return
    assert len(parser.flight.certificates) <= MAX_CERTIFICATES
    assert parser.received <= MAX_FLIGHT_BYTES


cuts = st.lists(st.integers(0, 10_000), max_size=8)


@FUZZ
@given(data=st.binary(max_size=2048), cuts=cuts)
def test_random_bytes(data: bytes, cuts: list[int]) -> None:
    _feed(data, cuts)


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(PROBES)), cuts=cuts)
def test_mutated_real_flights(
    flights: dict[str, bytes], data: st.DataObject, name: str, cuts: list[int]
) -> None:
    _feed(data.draw(mutated(flights[name])), cuts, PROBES[name][0])


@FUZZ
@given(data=st.data(), cuts=cuts)
def test_random_bodies_in_valid_framing(data: st.DataObject, cuts: list[int]) -> None:
    """Valid record and handshake headers around random bodies reach the message parsers."""
    out = b""
    for msg_type in data.draw(st.lists(st.sampled_from([2, 11, 12, 13, 14, 22, 99]), max_size=5)):
        body = data.draw(st.binary(max_size=300))
        msg = bytes([msg_type]) + len(body).to_bytes(3, "big") + body
        out += bytes([22, 3, 3]) + len(msg).to_bytes(2, "big") + msg
    hello = b"\x03\x03" + bytes(32) + b"\x00" + data.draw(st.binary(min_size=2, max_size=2))
    hello += b"\x00" + data.draw(st.binary(max_size=40))
    first = bytes([2]) + len(hello).to_bytes(3, "big") + hello
    _feed(bytes([22, 3, 3]) + len(first).to_bytes(2, "big") + first + out, cuts)


@FUZZ
@given(data=st.data())
def test_client_hello_parser(data: st.DataObject) -> None:
    version = data.draw(st.sampled_from(list(TlsVersion)))
    seed = build_client_hello(ClientHelloSpec(version, [0xC02F, 0x1301], ALL_GROUPS, "a.test"))
    raw = data.draw(st.one_of(st.binary(max_size=600), mutated(seed)))
    try:
        hello = parse_client_hello(raw)
    except KeylifeError:
        return
    assert all(0 <= s <= 0xFFFF for s in hello.suites)


@FUZZ
@given(data=st.data())
def test_mutated_certificates_are_judged_or_refused(pki: Pki, data: st.DataObject) -> None:
    """What check_endpoint does with a peer's chain: an error verdict or findings, no crash."""
    chain_der = [data.draw(mutated(pki.behind_intermediate.der)), pki.intermediate.der]
    try:
        chain = load_chain(chain_der)
        out = FindingCollector(load_policy())
        evaluate_chain(chain, host="localhost", ca_file=str(pki.root.cert_path), now=NOW, out=out)
    except KeylifeError:
        return  # load_chain: a ProbeError, reported as verdict error
    except CERTIFICATE_ERRORS:
        return  # check_endpoint reports these as verdict error


# -- end to end: check_endpoint against a server answering with mutated flights -------------


class _Answer:
    """What the loopback server answers to every ClientHello (set per example)."""

    def __init__(self) -> None:
        self.data = b""
        self.lock = threading.Lock()

    def __call__(self, conn: socket.socket, stopping: threading.Event) -> None:
        conn.settimeout(1)
        conn.recv(65536)
        with self.lock:
            data = self.data
        conn.sendall(data)


@pytest.fixture(scope="module")
def answering() -> Iterator[tuple[_Answer, int]]:
    answer = _Answer()
    with HostileServer(answer) as server:
        yield answer, server.port


@settings(
    max_examples=40,
    deadline=8000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), name=st.sampled_from(["ecdhe", "dhe", "rsa"]))
def test_check_endpoint_never_raises_on_mutated_flights(
    flights: dict[str, bytes], answering: tuple[_Answer, int], data: st.DataObject, name: str
) -> None:
    answer, port = answering
    with answer.lock:
        answer.data = data.draw(mutated(flights[name]))
    report = check_endpoint("127.0.0.1", port, timeout=1, deadline=3, max_connections=2)
    assert report.verdict in ("pass", "fail", "error")
    assert report.verdict != "error" or report.error


def _record(body: bytes) -> bytes:
    return bytes([22, 3, 3]) + len(body).to_bytes(2, "big") + body


def _message(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


SERVER_HELLO = _record(_message(2, b"\x03\x03" + bytes(32) + b"\x00\xc0\x2f\x00"))


def test_unknown_messages_without_end_hit_the_byte_cap() -> None:
    parser = ServerFlightParser(TlsVersion.TLS1_2)
    parser.feed(SERVER_HELLO)
    status = _record(_message(22, b"abcd")) * 100
    with pytest.raises(FlightLimitError, match="MAX_FLIGHT_BYTES") as caught:
        for _ in range(MAX_FLIGHT_BYTES // len(status) + 2):
            parser.feed(status)
    assert caught.value.limit == MAX_FLIGHT_BYTES
    assert caught.value.unit == "bytes"


def test_a_second_certificate_message_is_refused() -> None:
    certificate = _message(11, b"\x00\x00\x04\x00\x00\x01\x30")
    with pytest.raises(HelloParseError, match="second Certificate"):
        ServerFlightParser().feed(SERVER_HELLO + _record(certificate + certificate))


def test_certificates_over_the_cap_are_refused() -> None:
    certs = b"\x00\x00\x01\x30" * (MAX_CERTIFICATES + 1)
    certificate = _message(11, len(certs).to_bytes(3, "big") + certs)
    with pytest.raises(FlightLimitError, match="MAX_CERTIFICATES"):
        ServerFlightParser().feed(SERVER_HELLO + _record(certificate))


def test_odd_length_suite_list_in_a_client_hello_is_a_parse_error() -> None:
    hello = build_client_hello(ClientHelloSpec(TlsVersion.TLS1_2, [0xC02F], ALL_GROUPS))
    raw = bytearray(hello)
    raw[5 + 4 + 2 + 32 + 1 + 1] = 3  # suite vector length 2 -> 3
    with pytest.raises(HelloParseError):
        parse_client_hello(bytes(raw))
