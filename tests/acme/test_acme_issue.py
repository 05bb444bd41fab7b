"""Issuance against a real Pebble."""

from __future__ import annotations

import time

from cryptography import x509

from keylife.acme import AcmeClient, DnsHook01, PollSettings, StandaloneHttp01, generate_private_key

FAST = PollSettings(interval=0.02, max_interval=0.5, timeout=30)


def client_for(pebble, key_type="ec-p256"):
    client = AcmeClient(
        pebble.directory_url, generate_private_key(key_type), ca_bundle=pebble.ca_bundle, poll=FAST
    )
    client.register(agree_tos=True, contact=["ops@example.com"])
    return client


def test_http01_standalone(pebble):
    t = time.monotonic()
    with client_for(pebble) as client:
        key = generate_private_key()
        issued = client.issue(
            ["www.example.com", "example.com"], key, StandaloneHttp01(pebble.http_port, "127.0.0.1")
        )
    print("took", time.monotonic() - t)
    cert = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    assert sorted(issued.identifiers) == ["example.com", "www.example.com"]
    assert issued.chain_pem.count("BEGIN CERTIFICATE") >= 1
    assert cert.serial_number == issued.serial


def test_dns01_wildcard(pebble, challtestsrv):
    t = time.monotonic()
    with client_for(pebble) as client:
        key = generate_private_key()
        solver = DnsHook01(challtestsrv.dns_hook("set"), challtestsrv.dns_hook("clear"))
        issued = client.issue(["dns1.example.com", "*.dns1.example.com"], key, solver)
    print("took", time.monotonic() - t)
    assert sorted(issued.identifiers) == ["*.dns1.example.com", "dns1.example.com"]
