"""Revocation (account key, certificate key) and account key rollover against real Pebble."""

from __future__ import annotations

import pytest

from keylife.acme import AcmeClient, PollSettings, StandaloneHttp01, generate_private_key
from keylife.acme.revoke import parse_reason, revoke_certificate
from keylife.acme.rollover import rollover_account_key
from keylife.errors import AcmeError

FAST = PollSettings(interval=0.02, max_interval=0.5, timeout=30)


def issue(pebble, client, name):
    key = generate_private_key()
    issued = client.issue([name], key, StandaloneHttp01(pebble.http_port, "127.0.0.1"))
    return key, issued


@pytest.fixture
def client(pebble):
    with AcmeClient(
        pebble.directory_url,
        generate_private_key(),
        ca_bundle=pebble.ca_bundle,
        trust_roots=pebble.trust_roots,
        poll=FAST,
    ) as client:
        client.register(agree_tos=True)
        yield client


def test_revoke_by_account_key(pebble, client):
    _, issued = issue(pebble, client, "revoke1.example.com")
    assert pebble.cert_status(issued.serial)["Status"] == "Valid"
    assert revoke_certificate(client, issued.certificate_pem, "keyCompromise") is True
    status = pebble.cert_status(issued.serial)
    assert status["Status"] == "Revoked"
    assert status["Reason"] == 1
    # a second revocation is reported, not raised
    assert revoke_certificate(client, issued.certificate_pem, "keyCompromise") is False


def test_revoke_by_certificate_key(pebble, client):
    key, issued = issue(pebble, client, "revoke2.example.com")
    # a different account (or none at all) holding only the certificate key can revoke
    with AcmeClient(
        pebble.directory_url,
        generate_private_key(),
        ca_bundle=pebble.ca_bundle,
        trust_roots=pebble.trust_roots,
    ) as stranger:
        assert revoke_certificate(
            stranger, issued.certificate_pem, "superseded", certificate_key=key
        )
    status = pebble.cert_status(issued.serial)
    assert status["Status"] == "Revoked"
    assert status["Reason"] == 4


def test_revoke_with_the_wrong_key_is_refused_locally(pebble, client):
    _, issued = issue(pebble, client, "revoke3.example.com")
    with pytest.raises(AcmeError, match="not the certificate's key"):
        revoke_certificate(
            client, issued.certificate_pem, "superseded", certificate_key=generate_private_key()
        )
    assert pebble.cert_status(issued.serial)["Status"] == "Valid"


def test_revoke_by_unrelated_account_is_the_cas_problem(pebble, client):
    _, issued = issue(pebble, client, "revoke4.example.com")
    with AcmeClient(
        pebble.directory_url,
        generate_private_key(),
        ca_bundle=pebble.ca_bundle,
        trust_roots=pebble.trust_roots,
    ) as other:
        other.register(agree_tos=True)
        with pytest.raises(AcmeError, match="ACME server answered"):
            revoke_certificate(other, issued.certificate_pem, "unspecified")
    assert pebble.cert_status(issued.serial)["Status"] == "Valid"


def test_reason_names():
    assert parse_reason("keyCompromise").rfc5280_code == 1
    assert parse_reason("key-compromise").rfc5280_code == 1
    assert parse_reason("KEYCOMPROMISE").rfc5280_code == 1
    assert parse_reason("cessation-of-operation").rfc5280_code == 5
    assert parse_reason(4).rfc5280_code == 4
    assert parse_reason("0").rfc5280_code == 0
    for bad in ("cACompromise", "certificateHold", 7, "nope"):
        with pytest.raises(AcmeError):
            parse_reason(bad)


@pytest.mark.parametrize("new_type", ["ec-p384", "rsa-2048"])
def test_account_key_rollover(pebble, client, new_type):
    old_key = client.account_key
    account = client.account_url
    new_key = generate_private_key(new_type)
    rollover_account_key(client, new_key)
    assert client.account_key is new_key
    # the same account keeps issuing with the new key
    _, issued = issue(pebble, client, "rollover.example.com")
    assert issued.identifiers == ("rollover.example.com",)
    with AcmeClient(
        pebble.directory_url, new_key, ca_bundle=pebble.ca_bundle, trust_roots=pebble.trust_roots
    ) as again:
        assert again.register(only_existing=True) == account
    # the old key no longer names an account
    refused = pytest.raises(AcmeError, match="accountDoesNotExist")
    with (
        AcmeClient(
            pebble.directory_url,
            old_key,
            ca_bundle=pebble.ca_bundle,
            trust_roots=pebble.trust_roots,
        ) as stale,
        refused,
    ):
        stale.register(only_existing=True)


def test_rollover_needs_an_account(pebble):
    with (
        AcmeClient(
            pebble.directory_url,
            generate_private_key(),
            ca_bundle=pebble.ca_bundle,
            trust_roots=pebble.trust_roots,
        ) as client,
        pytest.raises(AcmeError, match="register first"),
    ):
        rollover_account_key(client, generate_private_key())
