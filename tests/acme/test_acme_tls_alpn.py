"""tls-alpn-01 (RFC 8737): the standalone responder, against Pebble's validation authority and
against hostile or confused TLS clients."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import ssl
import time

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keylife.acme import (
    AcmeClient,
    CertSettings,
    ChallengeTask,
    PollSettings,
    StandaloneTlsAlpn01,
    generate_private_key,
)
from keylife.acme.tlsalpn import ACME_IDENTIFIER_OID, ACME_TLS_1, sni_name
from keylife.errors import AcmeError, ChallengeFailedError

FAST = PollSettings(interval=0.02, max_interval=0.5, timeout=30)
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def client_for(pebble):
    client = AcmeClient(
        pebble.directory_url,
        generate_private_key(),
        ca_bundle=pebble.ca_bundle,
        trust_roots=pebble.trust_roots,
        poll=FAST,
    )
    client.register(agree_tos=True)
    return client


def task(identifier="alpn.example.com", kind="dns", keyauth="tok.thumb", wildcard=False):
    return ChallengeTask(
        identifier=identifier,
        identifier_type=kind,
        wildcard=wildcard,
        token="tok",
        validation=keyauth,
        challenge_url="https://ca.invalid/chall",
        authorization_url="https://ca.invalid/authz",
    )


def handshake(port, server_name, alpn=(ACME_TLS_1,)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der), tls.selected_alpn_protocol()


# -- against Pebble -------------------------------------------------------------------------


def test_tls_alpn01_issues_against_pebble(pebble):
    started = time.monotonic()
    with client_for(pebble) as client:
        issued = client.issue(
            ["alpn.example.com", "www.alpn.example.com"],
            generate_private_key(),
            StandaloneTlsAlpn01(pebble.tls_port, "127.0.0.1"),
        )
    assert sorted(issued.identifiers) == ["alpn.example.com", "www.alpn.example.com"]
    assert time.monotonic() - started < 10


def test_tls_alpn01_ip_identifier(pebble):
    """RFC 8738 §6: the CA names an IP identifier by its reverse-DNS name in SNI."""
    with client_for(pebble) as client:
        issued = client.issue(
            ["127.0.0.1"], generate_private_key(), StandaloneTlsAlpn01(pebble.tls_port, "127.0.0.1")
        )
    assert issued.identifiers == ("127.0.0.1",)


def test_tls_alpn01_nobody_listening_fails_with_the_cas_reason(pebble, unused_port):
    """The responder on another port than the CA's: the CA's connection is refused."""
    with client_for(pebble) as client, pytest.raises(ChallengeFailedError) as info:
        client.issue(
            ["missed.example.com"],
            generate_private_key(),
            StandaloneTlsAlpn01(unused_port(), "127.0.0.1"),
        )
    assert "missed.example.com" in info.value.failures


def test_settings_select_tls_alpn01(pebble):
    settings = CertSettings(
        directory=pebble.directory_url,
        domains=("a.example.com",),
        challenge="tls-alpn-01",
        tls_port=pebble.tls_port,
        tls_address="127.0.0.1",
    )
    solver = settings.solver()
    assert isinstance(solver, StandaloneTlsAlpn01)
    assert (solver.port, solver.address) == (pebble.tls_port, "127.0.0.1")
    assert CertSettings.from_json(settings.to_json()) == settings
    with pytest.raises(AcmeError, match="wildcard"):
        CertSettings(
            directory=pebble.directory_url, domains=("*.example.com",), challenge="tls-alpn-01"
        )
    with pytest.raises(AcmeError, match="65535"):
        CertSettings(
            directory=pebble.directory_url,
            domains=("a.example.com",),
            challenge="tls-alpn-01",
            tls_port=70000,
        )


# -- the responder on its own ----------------------------------------------------------------


def test_responder_serves_the_rfc8737_certificate():
    t = task()
    with StandaloneTlsAlpn01(0, "127.0.0.1", clock=lambda: NOW) as solver:
        solver.prepare([t])
        cert, alpn = handshake(solver.bound_port, "alpn.example.com")
        solver.cleanup([t])
    assert alpn == ACME_TLS_1
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical and san.value.get_values_for_type(x509.DNSName) == ["alpn.example.com"]
    ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    assert ext.critical
    assert ext.value.value == b"\x04\x20" + hashlib.sha256(b"tok.thumb").digest()
    assert cert.not_valid_before_utc < NOW < cert.not_valid_after_utc


def test_responder_ip_identifier_answers_the_reverse_name():
    t = task("192.0.2.7", kind="ip")
    assert sni_name(t) == "7.2.0.192.in-addr.arpa"
    with StandaloneTlsAlpn01(0, "127.0.0.1") as solver:
        solver.prepare([t])
        cert, _ = handshake(solver.bound_port, "7.2.0.192.in-addr.arpa")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]


@pytest.mark.parametrize("server_name", ["other.example.com", None])
def test_responder_refuses_unknown_or_missing_names(server_name):
    with StandaloneTlsAlpn01(0, "127.0.0.1") as solver:
        solver.prepare([task()])
        with pytest.raises(ssl.SSLError):
            handshake(solver.bound_port, server_name)
        # and it still answers the real challenge afterwards
        cert, _ = handshake(solver.bound_port, "alpn.example.com")
        assert cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID).critical


def test_responder_offers_only_acme_tls_1():
    with StandaloneTlsAlpn01(0, "127.0.0.1") as solver:
        solver.prepare([task()])
        _, alpn = handshake(solver.bound_port, "alpn.example.com", alpn=("h2", "http/1.1"))
    assert alpn is None


def test_responder_survives_a_silent_client_and_garbage():
    with StandaloneTlsAlpn01(0, "127.0.0.1") as solver:
        solver.prepare([task()])
        port = solver.bound_port
        silent = socket.create_connection(("127.0.0.1", port), timeout=5)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as junk:
            junk.sendall(b"GET / HTTP/1.1\r\n\r\n" * 10)
        cert, _ = handshake(port, "alpn.example.com")
        silent.close()
    assert cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID).critical


def test_responder_listens_only_while_challenges_are_pending():
    solver = StandaloneTlsAlpn01(0, "127.0.0.1")
    solver.prepare([task()])
    port = solver.bound_port
    workdir = solver._workdir
    assert workdir is not None and oct(workdir.stat().st_mode & 0o777) == "0o700"
    solver.cleanup([task()])
    with pytest.raises(AcmeError, match="not running"):
        _ = solver.bound_port
    assert not workdir.exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_busy_port_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(AcmeError, match="--tls-port"):
            StandaloneTlsAlpn01(port, "127.0.0.1").prepare([task()])


def test_wildcard_refused():
    with pytest.raises(AcmeError, match="dns-01"):
        StandaloneTlsAlpn01(0, "127.0.0.1").prepare([task(wildcard=True)])


# -- the identifier comes from the CA: any value is a keylife error or a served certificate ----

IDENTIFIERS = st.one_of(
    st.text(max_size=300),
    st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z0-9-]{1,20}){0,4}", fullmatch=True),
    st.ip_addresses().map(str),
)


@settings(max_examples=100, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(identifier=IDENTIFIERS, kind=st.sampled_from(["dns", "ip"]))
def test_fuzz_identifiers_from_the_ca(identifier, kind):
    solver = StandaloneTlsAlpn01(0, "127.0.0.1", clock=lambda: NOW)
    t = task(identifier, kind=kind)
    try:
        solver.prepare([t])
    except AcmeError:
        assert solver._server is None, "nothing listens after a refused challenge"
        return
    try:
        assert solver._server is not None and sni_name(t) in solver._server.contexts
    finally:
        solver.cleanup([t])
