"""TLS policy profiles and user policies from the [tls] table of a TOML policy file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from keylife.errors import PolicyError, TlsError
from keylife.tls import PROFILES, RULES, TlsVersion, check_endpoint, load_policy
from tests.tls.conftest import Endpoint

StartPeer = Callable[[str], Endpoint]


def test_profiles() -> None:
    assert set(PROFILES) == {"default", "mozilla-modern", "mozilla-intermediate", "nist-800-52r2"}
    default = load_policy()
    assert default.min_version == TlsVersion.TLS1_2
    assert default.min_cipher_bits == 128
    assert (default.min_rsa_bits, default.min_ec_bits, default.min_dh_bits) == (2048, 256, 2048)
    assert load_policy("mozilla-modern").min_version == TlsVersion.TLS1_3
    assert all(r.rsplit(".", 1)[1].startswith("v") for r in RULES)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keylife-policy.toml"
    path.write_text(text)
    return path


def test_user_policy_shares_the_key_policy_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[policy]                # the key policy's own table: the TLS loader reads only [tls]
profile = "default"

[tls]
name = "payments"
extends = "mozilla-intermediate"
min_version = "TLS 1.3"
expiry_warning_days = 10
allowed_groups = ["x25519", "prime256v1"]

[tls.rules]
"tls.kex.forward-secrecy.v1" = "off"
"tls.cert.expiring.v1" = "fail"
""",
    )
    import keylife.policy

    keylife.policy.load_policy(path)  # the key policy loader accepts the same file
    policy = load_policy(path)
    assert policy.name == "payments"
    assert policy.min_version == TlsVersion.TLS1_3
    assert policy.allowed_groups == frozenset({"x25519", "secp256r1"})
    assert policy.allowed_suites == PROFILES["mozilla-intermediate"].allowed_suites
    assert policy.action("tls.kex.forward-secrecy.v1") == "off"
    assert policy.action("tls.cert.expiring.v1") == "fail"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[keys]\n", r"no \[tls\] table"),
        ("[tls]\nmin_version = 'TLS 0.9'\n", "min_version"),
        ("[tls]\nmin_cipher_bits = 'many'\n", "min_cipher_bits"),
        ("[tls]\nciphers = []\n", "unknown setting 'ciphers'"),
        ("[tls]\nextends = 'strict'\n", "unknown profile"),
        ("[tls]\nallowed_suites = ['TLS_FOO']\n", "unknown cipher suite"),
        ("[tls.rules]\n'tls.cert.hostname.v9' = 'off'\n", "tls.cert.hostname.v1"),
        ("[tls.rules]\n'tls.cert.hostname.v1' = 'ignore'\n", "'fail', 'warn' or 'off'"),
        ("[tls\n", "cannot read"),
    ],
)
def test_invalid_policy_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TlsError, match=message) as info:
        load_policy(_write(tmp_path, text))
    assert isinstance(info.value, PolicyError)


def test_unknown_profile_name() -> None:
    with pytest.raises(TlsError, match="mozilla-modern"):
        load_policy("modern")


def test_modern_profile_fails_a_tls12_server(start_peer: StartPeer) -> None:
    ep = start_peer("strong")
    report = check_endpoint(ep.host, ep.port, "mozilla-modern", ca_file=ep.ca_file)
    rules = {f.rule_id for f in report.findings}
    assert report.verdict == "fail"
    assert {"tls.protocol.min-version.v1", "tls.cipher.allowlist.v1"} <= rules


def test_intermediate_profile_flags_groups_and_nist_flags_chacha(start_peer: StartPeer) -> None:
    ep = start_peer("strong")  # Python ssl: default groups include x448 and secp521r1
    inter = check_endpoint(ep.host, ep.port, "mozilla-intermediate", ca_file=ep.ca_file)
    group = next(f for f in inter.findings if f.rule_id == "tls.kex.group.v1")
    assert "x448" in group.observed
    nist = check_endpoint(ep.host, ep.port, "nist-800-52r2", ca_file=ep.ca_file)
    allow = next(f for f in nist.findings if f.rule_id == "tls.cipher.allowlist.v1")
    assert "CHACHA20" in allow.observed
    strict = start_peer("openssl-strong")
    report = check_endpoint(strict.host, strict.port, "mozilla-intermediate", ca_file=ep.ca_file)
    assert report.verdict == "pass", report.findings


def test_warn_does_not_fail_and_off_hides(start_peer: StartPeer, tmp_path: Path) -> None:
    ep = start_peer("wrong-host")
    warn = _write(tmp_path, "[tls.rules]\n'tls.cert.hostname.v1' = 'warn'\n")
    report = check_endpoint(ep.host, ep.port, warn, sni="localhost", ca_file=ep.ca_file)
    assert report.verdict == "pass"
    assert [(f.rule_id, f.severity) for f in report.findings] == [("tls.cert.hostname.v1", "warn")]
    off = tmp_path / "off.toml"
    off.write_text("[tls.rules]\n'tls.cert.hostname.v1' = 'off'\n")
    report = check_endpoint(ep.host, ep.port, off, sni="localhost", ca_file=ep.ca_file)
    assert report.verdict == "pass" and report.findings == ()


def test_non_utf8_policy_file_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[tls]\nname = "\xff\xfe"\n')
    with pytest.raises(PolicyError, match="cannot read TLS policy"):
        load_policy(path)


def test_tls_errors_live_in_keylife_errors() -> None:
    """ProbeError, HelloParseError and TlsPolicyError moved; old import paths still work."""
    import keylife.errors as errors
    from keylife.tls import clienthello as hello
    from keylife.tls import policy, probe

    assert probe.ProbeError is errors.ProbeError
    assert policy.TlsPolicyError is errors.TlsPolicyError
    assert hello.HelloParseError is errors.HelloParseError
    assert issubclass(errors.HelloParseError, TlsError)
    assert issubclass(errors.HelloParseError, ValueError)
    assert issubclass(errors.TlsPolicyError, PolicyError)
    assert issubclass(errors.FlightLimitError, errors.HelloParseError)
