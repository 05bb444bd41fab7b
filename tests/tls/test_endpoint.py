"""check_endpoint against real peers: each weak configuration fails on the right rule."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from keylife.tls import check_endpoint
from tests.tls.conftest import Endpoint

StartPeer = Callable[[str], Endpoint]


def _check(ep: Endpoint, policy: str = "default", timeout: float = 3.0):  # type: ignore[no-untyped-def]
    return check_endpoint(ep.host, ep.port, policy, sni=ep.sni, ca_file=ep.ca_file, timeout=timeout)


@pytest.mark.parametrize("name", ["strong", "strong-rsa", "tls13-only", "openssl-strong"])
def test_strong_endpoints_pass(start_peer: StartPeer, name: str) -> None:
    report = _check(start_peer(name))
    assert report.verdict == "pass", report.findings
    assert report.findings == ()
    assert report.trusted is True
    accepted = {p.version for p in report.protocols if p.accepted}
    assert accepted == ({"TLS 1.3"} if name == "tls13-only" else {"TLS 1.2", "TLS 1.3"})
    assert report.certificates and report.certificates[0].names == ("localhost", "127.0.0.1")
    assert all(s.strength >= 128 and s.forward_secrecy for s in report.suites)


WEAK = [
    ("tls10-11", "tls.protocol.min-version.v1", "TLS 1.0, TLS 1.1"),
    ("null-suites", "tls.cipher.null.v1", "TLS_RSA_WITH_NULL_SHA256"),
    ("null-suites", "tls.cipher.min-strength.v1", "(0 bits)"),
    ("rsa1024", "tls.cert.key-size.v1", "RSA-1024"),
    ("expired", "tls.cert.expired.v1", "leaf expired"),
    ("self-signed", "tls.cert.self-signed.v1", "CN=self-signed"),
    ("wrong-host", "tls.cert.hostname.v1", "other.example"),
    ("sha1", "tls.cert.signature-hash.v1", "SHA1"),
    ("incomplete-chain", "tls.cert.chain-complete.v1", "CN=intermediate"),
    ("dhe1024", "tls.kex.dh-size.v1", "1024"),
    ("anonymous-only", "tls.cipher.anonymous.v1", "TLS_DH_anon_WITH_AES_128_GCM_SHA256"),
    ("ssl3-rc4-3des", "tls.protocol.min-version.v1", "SSL 3.0, TLS 1.0"),
    ("ssl3-rc4-3des", "tls.cipher.rc4.v1", "TLS_RSA_WITH_RC4_128_SHA"),
    ("ssl3-rc4-3des", "tls.cipher.min-strength.v1", "TLS_RSA_WITH_3DES_EDE_CBC_SHA (112 bits)"),
    ("tls12-3des", "tls.cipher.min-strength.v1", "TLS_RSA_WITH_3DES_EDE_CBC_SHA (112 bits)"),
    ("tls10-export-null", "tls.cipher.export.v1", "TLS_RSA_EXPORT_WITH_RC4_40_MD5"),
    ("tls10-export-null", "tls.cipher.null.v1", "TLS_RSA_WITH_NULL_SHA"),
]


@pytest.mark.parametrize(("name", "rule", "evidence"), WEAK)
def test_weak_endpoints_fail_on_the_right_rule(
    start_peer: StartPeer, name: str, rule: str, evidence: str
) -> None:
    report = _check(start_peer(name))
    assert report.verdict == "fail"
    by_rule = {f.rule_id: f for f in report.findings}
    assert rule in by_rule, sorted(by_rule)
    assert by_rule[rule].severity == "fail"
    assert evidence in by_rule[rule].observed


def test_strength_is_the_real_cipher_strength(start_peer: StartPeer) -> None:
    report = _check(start_peer("ssl3-rc4-3des"))
    suites = {(s.protocol, s.name): s.strength for s in report.suites}
    assert suites[("SSL 3.0", "TLS_RSA_WITH_3DES_EDE_CBC_SHA")] == 112
    assert suites[("TLS 1.0", "TLS_RSA_WITH_RC4_128_SHA")] == 128
    accepted = {p.version: p.accepted for p in report.protocols}
    assert accepted == {
        "SSL 3.0": True,
        "TLS 1.0": True,
        "TLS 1.1": False,
        "TLS 1.2": False,
        "TLS 1.3": False,
    }


def test_suites_are_enumerated_with_few_handshakes(start_peer: StartPeer) -> None:
    report = _check(start_peer("tls10-11"))
    per_version = {p.version for p in report.protocols if p.accepted}
    assert per_version == {"TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"}
    # one handshake per accepted suite, one refusal per version, groups, no per-suite sweep
    bound = len(report.suites) + 5 + len(report.groups) + 2
    assert report.handshakes <= bound
    assert report.handshakes < 100


def test_dh_size_and_groups_are_reported(start_peer: StartPeer) -> None:
    report = _check(start_peer("dhe1024"))
    assert {s.dh_bits for s in report.suites} == {1024}
    strong = _check(start_peer("openssl-strong"))
    assert strong.groups == ("x25519", "secp256r1", "secp384r1")


def test_untrusted_chain_fails_trust(start_peer: StartPeer, pki) -> None:  # type: ignore[no-untyped-def]
    ep = start_peer("strong")
    report = check_endpoint(ep.host, ep.port, sni="localhost", ca_file=pki.sha1.cert_path)
    assert report.trusted is False
    assert "tls.cert.trusted.v1" in {f.rule_id for f in report.findings}


@pytest.mark.parametrize("name", ["never-answers", "garbage", "closes-mid-handshake", "dribbles"])
def test_hostile_peers_give_error_within_the_timeout(start_peer: StartPeer, name: str) -> None:
    ep = start_peer(name)
    started = time.monotonic()
    report = _check(ep, timeout=1.0)
    elapsed = time.monotonic() - started
    assert report.verdict == "error"
    assert report.error
    assert report.findings == ()
    assert elapsed < 2.5, elapsed


def test_unreachable_port_gives_error() -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    report = check_endpoint("127.0.0.1", port, timeout=1.0)
    assert report.verdict == "error"
    assert "refused" in (report.error or "").lower()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("example.com", ("example.com", 443)),
        ("example.com:8443", ("example.com", 8443)),
        ("[::1]:8443", ("::1", 8443)),
        ("::1", ("::1", 443)),
        ("10.0.0.1:443", ("10.0.0.1", 443)),
    ],
)
def test_parse_target(target: str, expected: tuple[str, int]) -> None:
    from keylife.tls import parse_target

    assert parse_target(target) == expected


@pytest.mark.parametrize("target", ["host:0", "host:70000", "host:x", ":443", "[::1]:port"])
def test_parse_target_rejects(target: str) -> None:
    from keylife.errors import TlsError
    from keylife.tls import parse_target

    with pytest.raises(TlsError):
        parse_target(target)


def test_bad_names_raise_before_any_probe() -> None:
    from keylife.errors import TlsTargetError
    from keylife.tls import check_endpoints

    with pytest.raises(TlsTargetError) as caught:
        check_endpoint("a" * 64 + ".test", 443)
    assert caught.value.rule == "a label is 64 characters (at most 63)"
    with pytest.raises(TlsTargetError, match="RFC 6066"):
        check_endpoints(["127.0.0.1:1"], sni="127.0.0.1")
    with pytest.raises(TlsTargetError, match="empty label"):
        check_endpoints([("a..b", 443)])


def test_unicode_host_name_is_sent_as_idna(start_peer: StartPeer) -> None:
    ep = start_peer("strong")
    report = check_endpoint(ep.host, ep.port, sni="bücher.test", ca_file=ep.ca_file, timeout=3)
    assert report.server_name == "bücher.test"
    assert "tls.cert.hostname.v1" in {f.rule_id for f in report.findings}
