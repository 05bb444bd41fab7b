"""Issuance against a real Pebble: challenges, key types, identifiers, chains, EAB, errors."""

from __future__ import annotations

import functools
import http.server
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keylife.acme import (
    AcmeClient,
    DnsHook01,
    PollSettings,
    StandaloneHttp01,
    WebrootHttp01,
    build_csr,
    generate_private_key,
    parse_identifier,
)
from keylife.acme.problems import ChallengeFailures
from keylife.errors import AcmeError, ChallengeFailedError, KeylifeError

FAST = PollSettings(interval=0.02, max_interval=0.5, timeout=30)


def client_for(pebble, key_type="ec-p256", **kwargs):
    client = AcmeClient(
        pebble.directory_url,
        generate_private_key(key_type),
        ca_bundle=pebble.ca_bundle,
        trust_roots=kwargs.pop("trust_roots", pebble.trust_roots),
        poll=kwargs.pop("poll", FAST),
        **kwargs,
    )
    try:
        client.register(agree_tos=True, contact=["ops@example.com"])
    except BaseException:
        client.close()
        raise
    return client


def standalone(pebble):
    return StandaloneHttp01(pebble.http_port, "127.0.0.1")


def test_http01_standalone_ecdsa(pebble):
    started = time.monotonic()
    with client_for(pebble) as client:
        key = generate_private_key()
        issued = client.issue(["www.example.com", "example.com"], key, standalone(pebble))
    assert time.monotonic() - started < 5
    cert = issued.load_certificate()
    assert sorted(issued.identifiers) == ["example.com", "www.example.com"]
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert issued.chain_pem.count("BEGIN CERTIFICATE") >= 1
    assert issued.fullchain_pem.startswith(issued.certificate_pem)
    assert issued.order_url.startswith(pebble.directory_url.rsplit("/", 1)[0])
    assert issued.not_before < issued.not_after
    # the responder is gone afterwards: the port is free again
    with StandaloneHttp01(pebble.http_port, "127.0.0.1") as again:
        assert again.bound_port == pebble.http_port


@pytest.mark.parametrize(
    ("key_type", "kind", "size"),
    [("rsa-2048", rsa.RSAPublicKey, 2048), ("ec-p384", ec.EllipticCurvePublicKey, 384)],
)
def test_key_types(pebble, key_type, kind, size):
    with client_for(pebble, key_type="rsa-2048") as client:  # RSA account key (RS256) too
        issued = client.issue(
            ["kt.example.com"], generate_private_key(key_type), standalone(pebble)
        )
    public = issued.load_certificate().public_key()
    assert isinstance(public, kind)
    assert public.key_size == size


def test_http01_webroot(pebble, tmp_path):
    webroot = tmp_path / "www"
    webroot.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(webroot))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", pebble.http_port), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        with client_for(pebble) as client:
            issued = client.issue(
                ["webroot.example.com"], generate_private_key(), WebrootHttp01(webroot)
            )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert issued.identifiers == ("webroot.example.com",)
    assert not (webroot / ".well-known").exists(), "challenge files and dirs are cleaned up"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_dns01_wildcard(pebble, challtestsrv):
    with client_for(pebble) as client:
        solver = DnsHook01(challtestsrv.dns_hook("set"), challtestsrv.dns_hook("clear"))
        issued = client.issue(
            ["dns1.example.com", "*.dns1.example.com"], generate_private_key(), solver
        )
    assert sorted(issued.identifiers) == ["*.dns1.example.com", "dns1.example.com"]


def test_dns01_propagation_wait_is_paid_once(pebble, challtestsrv):
    waits = []
    with client_for(pebble) as client:
        solver = DnsHook01(
            challtestsrv.dns_hook("set"),
            challtestsrv.dns_hook("clear"),
            propagation_wait=7.5,
            sleep=waits.append,
        )
        client.issue(["a.wait.example.com", "b.wait.example.com"], generate_private_key(), solver)
    assert waits == [7.5]


def test_ip_identifier_rfc8738(pebble):
    with client_for(pebble) as client:
        issued = client.issue(["127.0.0.1"], generate_private_key(), standalone(pebble))
    san = issued.load_certificate().extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert issued.identifiers == ("127.0.0.1",)


def test_preferred_chain(pebble_altroots, tmp_path):
    alt_pem = _get(pebble_altroots, "/roots/1")
    alt_root = x509.load_pem_x509_certificate(alt_pem)
    alt_name = alt_root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    both = tmp_path / "roots.pem"  # each chain must verify: trust both roots
    both.write_bytes(_get(pebble_altroots, "/roots/0") + alt_pem)
    with client_for(pebble_altroots, trust_roots=str(both)) as client:
        default = client.issue(
            ["chain.example.com"], generate_private_key(), standalone(pebble_altroots)
        )
        chosen = client.issue(
            ["chain.example.com"],
            generate_private_key(),
            standalone(pebble_altroots),
            preferred_chain=str(alt_name),
        )
    assert default.alternative_chains >= 1
    top = x509.load_pem_x509_certificate(
        chosen.chain_pem.split("-----END CERTIFICATE-----")[-2].encode()
        + b"-----END CERTIFICATE-----\n"
    )
    assert alt_name in top.issuer.rfc4514_string() or alt_name in top.subject.rfc4514_string()
    assert default.chain_pem != chosen.chain_pem


def _get(pebble, path) -> bytes:
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=pebble.ca_bundle)
    with urllib.request.urlopen(pebble.management_url + path, context=ctx, timeout=5) as resp:
        return resp.read()


# -- EAB -------------------------------------------------------------------------------------


def test_eab_required_and_given(pebble_eab, eab_credentials):
    EAB_KID, EAB_HMAC = eab_credentials

    with AcmeClient(
        pebble_eab.directory_url,
        generate_private_key(),
        ca_bundle=pebble_eab.ca_bundle,
        trust_roots=pebble_eab.trust_roots,
        poll=FAST,
    ) as client:
        assert client.external_account_required
        client.register(agree_tos=True, eab_kid=EAB_KID, eab_hmac_key=EAB_HMAC)
        issued = client.issue(["eab.example.com"], generate_private_key(), standalone(pebble_eab))
    assert issued.identifiers == ("eab.example.com",)


def test_eab_missing_fails_clearly(pebble_eab):
    with (
        AcmeClient(
            pebble_eab.directory_url,
            generate_private_key(),
            ca_bundle=pebble_eab.ca_bundle,
            trust_roots=pebble_eab.trust_roots,
        ) as client,
        pytest.raises(AcmeError, match="requires External Account Binding"),
    ):
        client.register(agree_tos=True)


def test_eab_wrong_key_is_the_cas_problem(pebble_eab):
    with (
        AcmeClient(
            pebble_eab.directory_url,
            generate_private_key(),
            ca_bundle=pebble_eab.ca_bundle,
            trust_roots=pebble_eab.trust_roots,
        ) as client,
        pytest.raises(AcmeError, match="ACME server answered") as info,
    ):
        client.register(agree_tos=True, eab_kid="kid-1", eab_hmac_key="c2VjcmV0LXdyb25n")
    assert "c2VjcmV0LXdyb25n" not in str(info.value)
    assert info.value.__cause__ is not None


# -- failures: clear errors, never a traceback from acme/requests ----------------------------


def test_failed_http01_names_identifier_and_reason(pebble, unused_port):
    wrong = StandaloneHttp01(unused_port(), "127.0.0.1")  # the CA will knock on another port
    with client_for(pebble) as client, pytest.raises(ChallengeFailedError) as info:
        client.issue(["fail1.example.com", "fail2.example.com"], generate_private_key(), wrong)
    err = info.value
    assert isinstance(err, ChallengeFailures)
    assert set(err.failures) == {"fail1.example.com", "fail2.example.com"}
    assert "connection" in str(err).lower()
    assert "fail1.example.com" in str(err)


def test_failed_dns01_hook_that_publishes_nothing(pebble):
    expected = pytest.raises(ChallengeFailedError, match=r"\*\.nodns\.example\.com")
    with client_for(pebble) as client, expected:
        client.issue(["*.nodns.example.com"], generate_private_key(), DnsHook01("true"))


def test_dns_hook_failure_is_clear(pebble):
    with (
        client_for(pebble) as client,
        pytest.raises(AcmeError, match=r"dns-01 hook for x\.example\.com exited with status 3"),
    ):
        client.issue(["x.example.com"], generate_private_key(), DnsHook01("echo oops >&2; exit 3"))


def test_unreachable_ca(unused_port):
    url = f"https://127.0.0.1:{unused_port()}/dir"
    expected = pytest.raises(AcmeError, match="cannot reach the ACME server")
    with AcmeClient(url, generate_private_key(), network_timeout=2) as client, expected as info:
        client.register(agree_tos=True)
    assert info.value.__cause__ is not None


def test_tls_verification_stays_on(pebble):
    # Without the listener CA the connection must fail, with a hint, not silently proceed.
    expected = pytest.raises(AcmeError, match="TLS verification")
    with AcmeClient(pebble.directory_url, generate_private_key()) as client, expected:
        client.register(agree_tos=True)


def test_problem_document_is_wrapped(pebble):
    """Finalizing with a CSR for other names: the CA answers with a problem document."""
    with client_for(pebble) as client:
        key = generate_private_key()
        ident = parse_identifier("csr1.example.com")
        order = client.new_order([ident])
        client.authorize(order, standalone(pebble))
        with pytest.raises(AcmeError, match="ACME server answered") as info:
            client.finalize(order, build_csr(key, [parse_identifier("other.example.com")]))
    assert not isinstance(info.value, ChallengeFailedError)
    assert "badCSR" in str(info.value) or "unauthorized" in str(info.value)


def test_terms_of_service_must_be_agreed(pebble):
    with (
        AcmeClient(
            pebble.directory_url,
            generate_private_key(),
            ca_bundle=pebble.ca_bundle,
            trust_roots=pebble.trust_roots,
        ) as client,
        pytest.raises(AcmeError, match="terms of service"),
    ):
        client.register()


def test_bad_names_rejected_before_any_request():
    for bad in ["", "a..b", "*.com", "foo.*.example.com", "x*.example.com"]:
        with pytest.raises(AcmeError):
            parse_identifier(bad)


# -- badNonce storm --------------------------------------------------------------------------


def test_bad_nonce_storm_still_issues(pebble_nonce_storm):
    for _ in range(2):
        with client_for(pebble_nonce_storm, bad_nonce_attempts=30) as client:
            issued = client.issue(
                ["storm.example.com"], generate_private_key(), standalone(pebble_nonce_storm)
            )
        assert issued.identifiers == ("storm.example.com",)


def test_bad_nonce_storm_without_retries_fails_clearly(pebble_nonce_storm):
    """Guard for the test above: with the acme package's single retry the storm does break
    issuance (so the retry loop is what makes it pass), and the failure is an AcmeError."""
    failures = []
    for _ in range(4):
        try:
            with client_for(pebble_nonce_storm, bad_nonce_attempts=1) as client:
                client.issue(
                    ["storm.example.com"], generate_private_key(), standalone(pebble_nonce_storm)
                )
        except KeylifeError as exc:
            failures.append(exc)
    assert failures, "60 % nonce rejection never broke a single-retry client"
    assert all(isinstance(e, AcmeError) and "badNonce" in str(e) for e in failures)
