"""check_context, server_context and client_context, with real handshakes."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Callable

import pytest
from OpenSSL import SSL

from keylife.errors import TlsError
from keylife.tls import (
    TlsPolicyError,
    check_context,
    check_endpoint,
    client_context,
    server_context,
)
from keylife.tls.ciphersuites import group_by_code
from keylife.tls.clienthello import parse_client_hello
from tests.tls import peers
from tests.tls.conftest import Endpoint, Pki

StartPeer = Callable[[str], Endpoint]


def _rules(report: object) -> set[str]:
    return {f.rule_id for f in report.findings}  # type: ignore[attr-defined]


def test_ssl_context_allowing_tls10_is_flagged() -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with pytest.warns(DeprecationWarning):
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    report = check_context(ctx)
    assert report.verdict == "fail"
    finding = next(f for f in report.findings if f.rule_id == "tls.protocol.min-version.v1")
    assert "TLS 1.0" in finding.observed
    assert report.min_version == "TLS 1.0"


def test_ssl_context_with_sub_128_bit_suite_is_flagged() -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256:NULL-SHA256:@SECLEVEL=0")
    report = check_context(ctx)
    assert report.verdict == "fail"
    assert {"tls.cipher.min-strength.v1", "tls.cipher.null.v1"} <= _rules(report)
    assert "TLS_RSA_WITH_NULL_SHA256 (0 bits)" in next(
        f.observed for f in report.findings if f.rule_id == "tls.cipher.min-strength.v1"
    )


def test_client_context_without_verification_is_flagged() -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    rules = _rules(check_context(ctx))
    assert {"tls.context.verify-mode.v1", "tls.context.hostname-check.v1"} <= rules


def test_pyopenssl_context_allowing_tls10_and_weak_suites_is_flagged() -> None:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_VERSION)
    ctx.set_cipher_list(b"ALL:eNULL:@SECLEVEL=0")
    ctx.set_verify(SSL.VERIFY_PEER)
    report = check_context(ctx, role="client")
    assert report.verdict == "fail"
    assert "tls.protocol.min-version.v1" in _rules(report)
    assert "tls.cipher.null.v1" in _rules(report)


def test_pyopenssl_strict_client_context_passes() -> None:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_cipher_list(b"ECDHE+AESGCM")
    ctx.set_verify(SSL.VERIFY_PEER)
    report = check_context(ctx)
    assert report.role == "client"
    assert report.verdict == "pass", report.findings
    assert report.min_version == "TLS 1.2"


def test_server_context_passes_and_reports_its_certificate(pki: Pki) -> None:
    ctx = server_context("default", pki.leaf.cert_path, pki.leaf.key_path)
    report = check_context(ctx)
    assert report.role == "server"
    assert report.verdict == "pass", report.findings
    assert report.min_version == "TLS 1.2"
    assert report.certificates[0].subject == "CN=leaf"
    assert all(s.strength >= 128 and s.forward_secrecy for s in report.suites)


def test_server_context_with_expired_certificate_fails_check(pki: Pki) -> None:
    ctx = server_context("default", pki.expired.cert_path, pki.expired.key_path)
    assert "tls.cert.expired.v1" in _rules(check_context(ctx))


def test_server_context_without_certificate_fails_check() -> None:
    assert "tls.cert.missing.v1" in _rules(check_context(server_context()))


def test_server_context_refuses_rsa1024(pki: Pki) -> None:
    with pytest.raises(TlsError):
        server_context("default", pki.rsa1024.cert_path, pki.rsa1024.key_path)


@pytest.mark.parametrize("policy", ["default", "mozilla-intermediate", "mozilla-modern"])
def test_client_context_passes(pki: Pki, policy: str) -> None:
    report = check_context(client_context(policy, ca_file=pki.root.cert_path), policy)
    assert report.verdict == "pass", report.findings


def test_policy_python_ssl_cannot_express_is_refused() -> None:
    with pytest.raises(TlsPolicyError, match="CHACHA20"):
        client_context("nist-800-52r2")


def _handshake(client: ssl.SSLContext, port: int) -> str:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"ping")
        assert tls.recv(4) == b"ping"
        return str(tls.version())


def test_server_and_client_contexts_handshake_with_each_other(pki: Pki) -> None:
    server = server_context("default", pki.leaf.cert_path, pki.leaf.key_path)
    with peers.PythonTlsServer(server) as srv:
        assert _handshake(client_context(ca_file=pki.root.cert_path), srv.port) == "TLSv1.3"
        modern = client_context("mozilla-modern", ca_file=pki.root.cert_path)
        assert _handshake(modern, srv.port) == "TLSv1.3"


def test_client_context_refuses_untrusted_server(pki: Pki) -> None:
    server = server_context("default", pki.self_signed.cert_path, pki.self_signed.key_path)
    with peers.PythonTlsServer(server) as srv, pytest.raises(ssl.SSLCertVerificationError):
        _handshake(client_context(ca_file=pki.root.cert_path), srv.port)


def test_client_context_handshakes_with_openssl_s_server(start_peer: StartPeer, pki: Pki) -> None:
    ep = start_peer("openssl-strong")
    client = client_context(ca_file=pki.root.cert_path)
    with (
        socket.create_connection(("127.0.0.1", ep.port), timeout=5) as raw,
        client.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.0 200")


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_server_context_handshakes_with_openssl_s_client(pki: Pki, version: str) -> None:
    server = server_context("default", pki.rsa_leaf.cert_path, pki.rsa_leaf.key_path)
    with peers.PythonTlsServer(server) as srv:
        proc = subprocess.run(
            [
                "openssl",
                "s_client",
                "-connect",
                f"127.0.0.1:{srv.port}",
                version,
                "-brief",
                "-servername",
                "localhost",
                "-verify_return_error",
                "-CAfile",
                str(pki.root.cert_path),
                "-verify_hostname",
                "localhost",
            ],
            input=b"ping\n",
            capture_output=True,
            timeout=30,
            check=False,
        )
    text = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 0, text
    assert "CONNECTION ESTABLISHED" in text
    assert "Verification: OK" in text


def test_server_context_endpoint_passes_endpoint_check(pki: Pki) -> None:
    server = server_context("default", pki.leaf.cert_path, pki.leaf.key_path)
    with peers.PythonTlsServer(server) as srv:
        report = check_endpoint(
            "127.0.0.1", srv.port, sni="localhost", ca_file=pki.root.cert_path, timeout=3
        )
    assert report.verdict == "pass", report.findings


@pytest.mark.parametrize("profile", ["mozilla-intermediate", "mozilla-modern"])
def test_server_context_passes_its_own_profile_groups_included(pki: Pki, profile: str) -> None:
    """Issue 14: the context left OpenSSL's default groups (x448, secp521r1, ffdhe4096...),
    which fail tls.kex.group.v1 under the Mozilla profiles."""
    server = server_context(profile, pki.leaf.cert_path, pki.leaf.key_path)
    with peers.PythonTlsServer(server) as srv:
        report = check_endpoint(
            "127.0.0.1", srv.port, profile, sni="localhost", ca_file=pki.root.cert_path, timeout=3
        )
    assert report.verdict == "pass", report.findings
    assert report.groups == ("secp256r1",)


def test_client_context_offers_only_the_profiles_groups() -> None:
    client = client_context("mozilla-intermediate")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = client.wrap_bio(incoming, outgoing, server_hostname="a.test")
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    hello = parse_client_hello(outgoing.read())
    names = [g.name for code in hello.groups if (g := group_by_code(code)) is not None]
    assert names == ["secp256r1"]


def test_check_context_rejects_other_objects() -> None:
    with pytest.raises(TlsError):
        check_context(object())


def test_pyopenssl_server_context_reports_its_weak_certificate(pki: Pki) -> None:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_cipher_list(b"ECDHE+AESGCM:@SECLEVEL=0")
    ctx.use_certificate_file(str(pki.rsa1024.cert_path))
    ctx.use_privatekey_file(str(pki.rsa1024.key_path))
    report = check_context(ctx)
    assert report.role == "server"
    assert report.verdict == "fail"
    assert _rules(report) == {"tls.cert.key-size.v1"}
    assert report.certificates[0].key_bits == 1024
