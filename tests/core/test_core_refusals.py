"""Weak or unknown key specs and broken policy files are refused, naming what is allowed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import keylife
from keylife.errors import PolicyError, SpecNotAllowedError, UnknownSpecError

SIGNING_2026 = "rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384, ec-p521, ed25519, ed448"
SIGNING_128 = "rsa-3072, rsa-4096, ec-p256, ec-p384, ec-p521, ed25519, ed448"

# (type, purpose, extra CLI args, error class, words the message must contain)
CASES = [
    ("rsa-1024", "signing", (), SpecNotAllowedError, ["rsa-1024", "80 bits", SIGNING_2026]),
    ("ec-p224", "signing", (), SpecNotAllowedError, ["ec-p224", "P-224", SIGNING_2026]),
    (
        "3des",
        "data-encryption",
        (),
        SpecNotAllowedError,
        ["3des", "3DES", "aes-128, aes-192, aes-256, chacha20"],
    ),
    (
        "dsa-2048",
        "signing",
        (),
        SpecNotAllowedError,
        ["dsa-2048", "DSA", SIGNING_2026],
    ),
    (
        "hmac-sha256:96",
        "authentication",
        (),
        SpecNotAllowedError,
        ["96-bit", "112", "hmac-sha256, hmac-sha384, hmac-sha512"],
    ),
    (
        "aes-256",
        "signing",
        (),
        SpecNotAllowedError,
        ["aes-256 cannot be used for signing", SIGNING_2026],
    ),
    ("rsa-9999", "signing", (), UnknownSpecError, ["unknown key type", "rsa-3072", "chacha20"]),
]


@pytest.mark.parametrize(("type_", "purpose", "extra", "error", "words"), CASES)
def test_library_refuses_with_allowed_choices(
    store, t0, type_, purpose, extra, error, words
) -> None:
    with store.open(clock=keylife.FixedClock(t0)) as m:
        with pytest.raises(error) as info:
            m.create_ring("weak", type_, purpose)
        for word in words:
            assert word in str(info.value)
        assert m.rings() == []
        # The refusal itself is audited (as a failure), never silently dropped.
        last = m.audit_records()[-1]
        assert last.action == "create" and last.outcome.startswith("failure")


@pytest.mark.parametrize(("type_", "purpose", "extra", "error", "words"), CASES)
def test_cli_refuses_with_exit_1(store, type_, purpose, extra, error, words) -> None:
    result = store.run("key", "create", "weak", "--type", type_, "--purpose", purpose)
    assert result.exit_code == 1
    assert result.stdout == ""
    for word in words:
        assert word in result.stderr
    assert "allowed" in result.stderr.lower() or "known types" in result.stderr
    doc = store.json("key", "list")
    assert doc == {"rings": []}


def test_hmac_size_option_under_112_bits(store) -> None:
    result = store.run(
        "key",
        "create",
        "mac",
        "--type",
        "hmac-sha256",
        "--size",
        "96",
        "--purpose",
        "authentication",
    )
    assert result.exit_code == 1
    assert "96-bit security strength" in result.stderr
    assert "hmac-sha256, hmac-sha384, hmac-sha512" in result.stderr
    # 112 bits is the floor through 2030, 128 bits is fine.
    ok = store.run(
        "--json",
        "key",
        "create",
        "mac",
        "--type",
        "hmac-sha256",
        "--size",
        "128",
        "--purpose",
        "authentication",
    )
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["spec"] == "hmac-sha256:128"


def test_rsa_2048_refused_under_128_bit_profile(store, t0) -> None:
    with store.open(policy="128-bit", clock=keylife.FixedClock(t0)) as m:
        with pytest.raises(SpecNotAllowedError) as info:
            m.create_ring("sig", "rsa-2048", "signing")
        msg = str(info.value)
        assert "128-bit profile" in msg and "112-bit" in msg
        assert SIGNING_128 in msg
        assert m.create_ring("sig", "rsa-3072", "signing").state is keylife.State.ACTIVE
    result = store.run(
        "--policy", "128-bit", "key", "create", "s2", "--type", "rsa-2048", "--purpose", "signing"
    )
    assert result.exit_code == 1
    assert "128-bit profile" in result.stderr and SIGNING_128 in result.stderr


def test_rsa_2048_default_profile_changes_on_2031_01_01(store) -> None:
    last_day = dt.datetime(2030, 12, 31, 23, 59, tzinfo=dt.UTC)
    with store.open(clock=keylife.FixedClock(last_day)) as m:
        assert m.create_ring("old", "rsa-2048", "signing").spec.name == "rsa-2048"
    clock = keylife.FixedClock(dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
    with store.open(clock=clock) as m:
        with pytest.raises(SpecNotAllowedError) as info:
            m.create_ring("new", "rsa-2048", "signing")
        msg = str(info.value)
        assert "2031-01-01" in msg and "at least 128 bits" in msg
        assert SIGNING_128 in msg
        # Rotating an existing 112-bit ring is a new key too: from 2031 it is made with the
        # purpose's default type instead (the policy moved on; issue 11 item 7).
        successor = m.rotate("old")
        assert successor.spec.name == "ec-p256" and m.load("old").spec.name == "ec-p256"
        # ...but the existing version still processes (it is not new).
        assert m.ring("old").version(1).number == 1
    policy = store.json("policy", "show", "--as-of", "2031-01-01")
    assert "rsa-2048" not in policy["purposes"]["signing"]["allowed_now"]
    policy = store.json("policy", "show", "--as-of", "2030-12-31")
    assert "rsa-2048" in policy["purposes"]["signing"]["allowed_now"]


def test_unknown_purpose_names_allowed_purposes(store) -> None:
    with store.open() as m, pytest.raises(PolicyError) as info:
        m.create_ring("x", "aes-256", "encryption")
    assert "data-encryption" in str(info.value) and "authentication" in str(info.value)
    result = store.run("key", "create", "x", "--purpose", "encryption")
    assert result.exit_code == 2  # click.Choice: a usage error
    assert "data-encryption" in result.stderr


BAD_POLICIES = [
    ('[policy]\nprofile = "strong"\n', "policy.profile", "default, 128-bit"),
    ("[policy]\nmin_strength = 100\n", "policy.min_strength", "112, 128, 192, 256"),
    ("[policy]\ncolour = 1\n", "policy.colour", "profile, min_strength"),
    ('[purposes.signing]\ncryptoperiod = "two years"\n', "purposes.signing.cryptoperiod", "90d"),
    (
        '[purposes.signing]\nallowed = ["rsa-1024"]\n',
        "purposes.signing.allowed",
        "ec-p256",
    ),
    (
        '[purposes.signing]\ndefault_type = "aes-256"\n',
        "purposes.signing.default_type",
        "ec-p256",
    ),
    ('[purposes.encryption]\ncryptoperiod = "30d"\n', "purposes.encryption", "data-encryption"),
    ("[purposes.signing]\nsize = 3\n", "purposes.signing.size", "cryptoperiod"),
    ("[policy\n", "not valid TOML", ""),
]


@pytest.mark.parametrize(("text", "key", "allowed"), BAD_POLICIES)
def test_bad_policy_file_names_file_key_and_allowed_values(
    store, tmp_path: Path, text, key, allowed
) -> None:
    path = tmp_path / "bad-policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        keylife.load_policy(path)
    for word in (str(path), key, allowed):
        assert word in str(info.value)
    result = store.run("policy", "check", str(path))
    assert result.exit_code == 1
    for word in (str(path), key, allowed):
        assert word in result.stderr
    as_json = store.run("--json", "policy", "check", str(path))
    assert as_json.exit_code == 1
    doc = json.loads(as_json.stdout)
    assert doc["error"]["type"] == "PolicyError" and key in doc["error"]["message"]
    # A broken policy given as the effective policy is refused the same way.
    used = store.run("--policy", str(path), "key", "create", "k", "--purpose", "signing")
    assert used.exit_code == 1 and str(path) in used.stderr


def test_good_policy_file_checks_and_applies(store, tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[policy]\nprofile = "128-bit"\n\n'
        '[purposes.signing]\ncryptoperiod = "365d"\nlead_time = "30d"\ngrace_period = "90d"\n'
        'allowed = ["ec-p256", "ed25519"]\ndefault_type = "ed25519"\n'
    )
    result = store.run("policy", "check", str(path))
    assert result.exit_code == 0 and "valid" in result.stdout
    doc = store.json("--policy", str(path), "policy", "show")
    assert doc["profile"] == "128-bit" and doc["source"] == str(path)
    assert doc["purposes"]["signing"]["cryptoperiod"] == "365d"
    assert doc["purposes"]["signing"]["allowed_now"] == ["ec-p256", "ed25519"]
    created = store.json("--policy", str(path), "key", "create", "sig", "--purpose", "signing")
    assert created["spec"] == "ed25519"
    refused = store.run(
        "--policy", str(path), "key", "create", "s2", "--type", "ec-p384", "--purpose", "signing"
    )
    assert refused.exit_code == 1
    assert "allowed list" in refused.stderr and "ec-p256, ed25519" in refused.stderr


def test_policy_show_text_and_json(store) -> None:
    text = store.run("policy", "show")
    assert text.exit_code == 0
    for word in ("default", "signing", "data-encryption", "authentication", "730d"):
        assert word in text.stdout
    doc = store.json("policy", "show")
    assert doc["profile"] == "default" and doc["source"] == "<built-in>"
    assert set(doc["purposes"]) == {p.value for p in keylife.Purpose}
    assert doc["purposes"]["tls-server"]["destroy_after"] == "30d"
    strict = store.json("--policy", "128-bit", "policy", "show")
    assert "rsa-2048" not in strict["purposes"]["signing"]["allowed_now"]
