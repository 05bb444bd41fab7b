"""Renewal timing (pure), ARI and ``replaces`` against a scripted stub, Retry-After polling."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keylife.acme import AcmeClient, PollSettings, generate_private_key, parse_identifier
from keylife.acme.renewal import (
    RenewalInfo,
    ari_cert_id,
    ari_check_due,
    fetch_renewal_info,
    lifetime_due,
    parse_renewal_info,
    renewal_due,
    spread_for,
)
from keylife.errors import AcmeError, RateLimitedError

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)
DAY = dt.timedelta(days=1)


def test_ninety_day_cert_due_with_a_third_left():
    due = renewal_due(T0, T0 + 90 * DAY, now=T0)
    assert due == T0 + 60 * DAY


def test_six_day_cert_due_at_half():
    due = renewal_due(T0, T0 + 6 * DAY, now=T0)
    assert due == T0 + 3 * DAY


def test_ten_day_boundary_uses_a_third():
    assert lifetime_due(T0, T0 + 10 * DAY) == T0 + 10 * DAY - 10 * DAY / 3
    assert lifetime_due(T0, T0 + 10 * DAY - dt.timedelta(seconds=1)) < T0 + 6 * DAY


def test_pebble_five_year_cert():
    due = renewal_due(T0, T0 + dt.timedelta(seconds=157766400), now=T0)
    assert T0 + 3 * 365 * DAY < due < T0 + 4 * 365 * DAY


def test_ari_window_wins_over_lifetime():
    window = (T0 + 10 * DAY, T0 + 12 * DAY)  # e.g. the CA plans a mass revocation
    assert renewal_due(T0, T0 + 90 * DAY, T0, window) == T0 + 10 * DAY
    assert renewal_due(T0, T0 + 90 * DAY, T0, window, spread=0.5) == T0 + 11 * DAY


def test_ari_window_later_than_lifetime_rule_is_honoured_while_fresh():
    window = (T0 + 70 * DAY, T0 + 72 * DAY)
    fresh_until = T0 + 65 * DAY
    assert renewal_due(T0, T0 + 90 * DAY, T0 + 61 * DAY, window, fresh_until) == T0 + 70 * DAY
    # stale window (Retry-After passed, CA not asked again): the lifetime rule bounds it
    stale = renewal_due(T0, T0 + 90 * DAY, T0 + 66 * DAY, window, fresh_until)
    assert stale == T0 + 60 * DAY


def test_ari_window_never_past_not_after():
    window = (T0 + 100 * DAY, T0 + 120 * DAY)
    assert renewal_due(T0, T0 + 90 * DAY, T0, window) == T0 + 90 * DAY


def test_naive_datetimes_are_utc():
    naive = T0.replace(tzinfo=None)
    assert renewal_due(naive, naive + 90 * DAY, naive) == T0 + 60 * DAY


def test_spread_must_be_a_fraction():
    with pytest.raises(ValueError):
        renewal_due(T0, T0 + DAY, T0, (T0, T0 + DAY), spread=1.0)


def test_ari_check_due():
    assert ari_check_due(None, T0)
    assert not ari_check_due(T0 + DAY, T0)
    assert ari_check_due(T0 + DAY, T0 + DAY)


@given(
    lifetime_s=st.integers(min_value=1, max_value=10 * 365 * 86400),
    window=st.one_of(
        st.none(),
        st.tuples(st.integers(0, 400 * 86400), st.integers(0, 5 * 86400)),
    ),
    spread=st.floats(min_value=0, max_value=0.999),
)
def test_due_is_within_lifetime(lifetime_s, window, spread):
    not_after = T0 + dt.timedelta(seconds=lifetime_s)
    ari = None
    if window is not None:
        start = T0 + dt.timedelta(seconds=window[0])
        ari = (start, start + dt.timedelta(seconds=window[1]))
    due = renewal_due(T0, not_after, T0, ari, spread=spread)
    assert due <= not_after
    if ari is None:
        assert T0 < due < not_after
        remaining = (not_after - due) / (not_after - T0)
        assert remaining == pytest.approx(0.5 if lifetime_s < 10 * 86400 else 1 / 3, abs=1e-5)
    else:
        assert due >= min(ari[0], not_after)


def test_spread_for_is_stable_and_in_range():
    assert spread_for(12345) == spread_for(12345)
    assert 0 <= spread_for(12345) < 1
    assert spread_for(1) != spread_for(2)


def test_parse_renewal_info_clamps_retry_after():
    body = {"suggestedWindow": {"start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"}}
    info = parse_renewal_info(body, "3600", T0)
    assert info.retry_after == T0 + dt.timedelta(hours=1)
    assert parse_renewal_info(body, None, T0).retry_after == T0 + dt.timedelta(hours=6)
    assert parse_renewal_info(body, "1", T0).retry_after == T0 + dt.timedelta(minutes=1)
    assert RenewalInfo.from_json(info.to_json()) == info
    with pytest.raises(AcmeError):
        parse_renewal_info({"suggestedWindow": {"start": "x"}}, None, T0)


def test_ari_cert_id_rfc9773_example():
    """The worked example of RFC 9773 §4.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")])
    aki = bytes.fromhex("69885b6b87464041e1b37b847ba0ae2cde01c8d4")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x87654321)
        .not_valid_before(T0)
        .not_valid_after(T0 + DAY)
        .add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
        .sign(key, hashes.SHA256())
    )
    assert ari_cert_id(cert) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


# -- against the stub -----------------------------------------------------------------------


def stub_client(stub, **kwargs):
    client = AcmeClient(
        stub.directory_url,
        generate_private_key(),
        ca_bundle=stub.ca_bundle,
        trust_roots=stub.roots_file,
        **kwargs,
    )
    client.register(agree_tos=True)
    return client


def test_replaces_is_sent_when_the_ca_offers_ari(acme_stub):
    with stub_client(acme_stub) as client:
        order = client.new_order([parse_identifier("a.example")], replaces="aaa.bbb")
    assert order.status == "ready"
    assert acme_stub.payloads("/order") == [
        {"identifiers": [{"type": "dns", "value": "a.example"}], "replaces": "aaa.bbb"}
    ]


def test_replaces_refused_then_ordered_without(acme_stub):
    acme_stub.behaviour["reject_replaces"] = True
    with stub_client(acme_stub) as client:
        order = client.new_order([parse_identifier("a.example")], replaces="aaa.bbb")
    assert order.url.endswith("/order/1")
    sent = acme_stub.payloads("/order")
    assert [("replaces" in (p or {})) for p in sent] == [True, False]


def test_rate_limit_reports_retry_time(acme_stub):
    acme_stub.behaviour["rate_limit"] = True
    before = dt.datetime.now(UTC)
    with stub_client(acme_stub) as client, pytest.raises(RateLimitedError) as info:
        client.new_order([parse_identifier("a.example")], replaces="aaa.bbb")
    retry = info.value.retry_after
    assert retry is not None
    assert before + dt.timedelta(seconds=119) <= retry <= before + dt.timedelta(seconds=125)
    assert "rateLimited" in str(info.value)
    assert len(acme_stub.payloads("/order")) == 1, "a rate limit is not retried"


def test_polling_honours_retry_after(acme_stub):
    from keylife.acme import build_csr

    acme_stub.behaviour.update(processing_polls=3, retry_after="2")
    slept: list[float] = []
    poll = PollSettings(interval=0.01, max_interval=0.02, timeout=30)
    with stub_client(acme_stub, poll=poll, sleep=slept.append) as client:
        key = generate_private_key()
        order = client.new_order([parse_identifier("a.example")])
        done = client.finalize(order, build_csr(key, [parse_identifier("a.example")]))
    assert done.status == "valid"
    assert len(slept) == 2
    assert all(1.0 <= s <= 2.0 for s in slept), slept  # Retry-After, not the 10 ms interval


def test_polling_backs_off_without_retry_after(acme_stub):
    from keylife.acme import build_csr

    acme_stub.behaviour.update(processing_polls=5, retry_after=None)
    slept: list[float] = []
    poll = PollSettings(interval=0.1, max_interval=0.4, timeout=30)
    with stub_client(acme_stub, poll=poll, sleep=slept.append) as client:
        key = generate_private_key()
        order = client.new_order([parse_identifier("a.example")])
        client.finalize(order, build_csr(key, [parse_identifier("a.example")]))
    assert slept == pytest.approx([0.1, 0.2, 0.4, 0.4])


def test_polling_deadline(acme_stub):
    from keylife.acme import build_csr

    acme_stub.behaviour.update(processing_polls=10_000, retry_after=None)
    poll = PollSettings(interval=0.05, max_interval=0.05, timeout=0.4)
    started = time.monotonic()
    with stub_client(acme_stub, poll=poll) as client, pytest.raises(AcmeError, match="timed out"):
        key = generate_private_key()
        order = client.new_order([parse_identifier("a.example")])
        client.finalize(order, build_csr(key, [parse_identifier("a.example")]))
    assert time.monotonic() - started < 3


def test_fetch_renewal_info_from_stub(acme_stub, pebble):
    from keylife.acme import StandaloneHttp01

    # a real certificate (with an AKI) from Pebble, asked about at the stub's renewalInfo
    with AcmeClient(
        pebble.directory_url,
        generate_private_key(),
        ca_bundle=pebble.ca_bundle,
        trust_roots=pebble.trust_roots,
    ) as real:
        real.register(agree_tos=True)
        issued = real.issue(
            ["ari.example.com"],
            generate_private_key(),
            StandaloneHttp01(pebble.http_port, "127.0.0.1"),
        )
        assert fetch_renewal_info(real, issued.certificate_pem, T0) is None  # Pebble 2.4: no ARI
    with stub_client(acme_stub) as client:
        info = fetch_renewal_info(client, issued.certificate_pem, now=T0)
    assert info is not None
    assert info.start == dt.datetime(2030, 1, 1, tzinfo=UTC)
    assert info.retry_after == T0 + dt.timedelta(hours=1)
    cert_id = ari_cert_id(issued.load_certificate())
    assert ("GET", f"/ari/{cert_id}", None) in acme_stub.requests


def test_ari_cert_id_matches_the_acme_package(pebble):
    """Cross-check against acme's own (private) implementation on a real Pebble certificate."""
    from acme.client import _renewal_info_path_component

    from keylife.acme import StandaloneHttp01

    with AcmeClient(
        pebble.directory_url,
        generate_private_key(),
        ca_bundle=pebble.ca_bundle,
        trust_roots=pebble.trust_roots,
    ) as client:
        client.register(agree_tos=True)
        issued = client.issue(
            ["ari2.example.com"],
            generate_private_key(),
            StandaloneHttp01(pebble.http_port, "127.0.0.1"),
        )
    cert = issued.load_certificate()
    assert ari_cert_id(cert) == _renewal_info_path_component(cert)
