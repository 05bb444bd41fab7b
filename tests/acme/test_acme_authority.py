"""AcmeAuthority: the manager's CertificateAuthority, against the scripted HTTPS CA; and the one
revocation-reason enum behind ACME codes and CLI choices."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from keylife_cli import cert as cli_cert

import keylife
from keylife.acme import SUBSCRIBER_REASONS, AcmeAuthority, issue_certificate, parse_reason
from keylife.acme.settings import account_ring_for
from keylife.certificates import ARI_RETRY_AFTER, ARI_WINDOW_START, CERTIFICATE_PEM
from keylife.errors import AcmeError
from keylife.lifecycle import RevocationReason
from tests.acme.stub import stub_settings


def test_authority_methods(acme_stub, tmp_path: Path):
    authority = AcmeAuthority()
    with keylife.init(tmp_path / "k.db", master_key_file=tmp_path / "mk") as manager:
        first = issue_certificate(manager, "web", stub_settings(acme_stub, "auth.example.com"))
        # renew: a new key and certificate as a new version, with ARI replaces
        renewed = authority.renew(manager, "web", manager.now())
        assert renewed.number == first.version + 1
        assert CERTIFICATE_PEM in renewed.attributes
        assert "replaces" in (acme_stub.payloads("/order")[-1] or {})
        # refresh_renewal_info: the stub's window is stored on the version
        acme_stub.behaviour["ari"] = {"start": "2026-09-01T00:00:00Z", "end": "2026-09-02T00:00Z"}
        authority.refresh_renewal_info(manager, "web", renewed.number, manager.now())
        version = manager.load("web").get(renewed.number)
        assert version is not None
        assert version.attributes[ARI_WINDOW_START].startswith("2026-09-01")
        assert dt.datetime.fromisoformat(version.attributes[ARI_RETRY_AFTER]) > manager.now()
        # revoke: the CA gets the RFC 5280 code of the reason
        authority.revoke(manager, "web", first.version, "keyCompromise")
        assert acme_stub.payloads("/revoke")[-1]["reason"] == 1  # type: ignore[index]
        # rollover_account: keyChange for the account ring the certificate ring uses
        account = account_ring_for(acme_stub.directory_url)
        number = authority.rollover_account(manager, account)
        ring = manager.load(account)
        assert [v.state.value for v in ring.versions] == ["deactivated", "active"]
        assert ring.versions[-1].number == number
        assert acme_stub.payloads("/keychange")
        with pytest.raises(AcmeError, match="no certificate ring uses it"):
            authority.rollover_account(manager, "unused-account")


def test_one_reason_enum():
    assert {r.value for r in SUBSCRIBER_REASONS} == set(cli_cert.REVOKE_REASONS)
    assert RevocationReason.CA_COMPROMISE not in SUBSCRIBER_REASONS
    for reason in SUBSCRIBER_REASONS:
        assert parse_reason(reason.value) is reason
        assert parse_reason(reason.rfc5280_code) is reason
    with pytest.raises(AcmeError, match="ca-compromise"):
        parse_reason("ca-compromise")
