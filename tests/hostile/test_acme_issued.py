"""Issue 10 item 5: certificates are checked before anything is stored or deployed.

A scripted HTTPS CA issues a certificate for other names, for another key, from an untrusted
self-signed issuer, or valid until 2126: each is refused with a CertificateCheckError naming
the problem; no ring, no version, no file, no hook. Plain-HTTP directories are refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

import keylife
from keylife.acme import AcmeClient, CertSettings, generate_private_key, issue_certificate
from keylife.errors import AcmeError, CertificateCheckError, NotFoundError
from tests.acme.stub import StubAcme, make_root, run_cli, stub_settings

UTC = dt.UTC


@pytest.fixture
def acme_stub(tmp_path: Path) -> Iterator[StubAcme]:
    stub = StubAcme(tmp_path)
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[keylife.KeyManager]:
    with keylife.init(tmp_path / "data" / "k.db", master_key_file=tmp_path / "mk" / "key") as m:
        yield m


def settings(stub: StubAcme, tmp_path: Path, **kwargs: object) -> CertSettings:
    return stub_settings(
        stub,
        "good.example.com",
        deploy_to=str(tmp_path / "live"),
        deploy_hook=f"touch {tmp_path / 'hook-ran'}",
        **kwargs,
    )


BAD = {
    "names": {"cert_names": ["evil.example.net"]},
    "key": {"cert_key": generate_private_key().public_key()},
    "chain": {"cert_issuer": make_root("self-signed evil root")},
    "validity": {"not_after": dt.datetime(2126, 1, 1, tzinfo=UTC)},
}


@pytest.mark.parametrize("problem", sorted(BAD))
def test_bad_certificate_is_refused_and_nothing_kept(acme_stub, manager, tmp_path, problem):
    acme_stub.behaviour.update(BAD[problem])
    with pytest.raises(CertificateCheckError) as info:
        issue_certificate(manager, "web", settings(acme_stub, tmp_path))
    assert info.value.problem == problem
    assert "not stored" in str(info.value)
    with pytest.raises(NotFoundError):
        manager.load("web")
    assert not (tmp_path / "live").exists()
    assert not (tmp_path / "hook-ran").exists()


@pytest.mark.parametrize("problem", sorted(BAD))
def test_bad_renewal_leaves_the_ring_as_it_was(acme_stub, manager, tmp_path, problem):
    first = issue_certificate(manager, "web", settings(acme_stub, tmp_path))
    (tmp_path / "hook-ran").unlink()
    before = manager.load("web")
    acme_stub.behaviour.update(BAD[problem])
    with pytest.raises(CertificateCheckError):
        issue_certificate(manager, "web")
    after = manager.load("web")
    assert [v.number for v in after.versions] == [first.version]
    assert after.versions == before.versions
    assert not (tmp_path / "hook-ran").exists()


def test_untrusted_by_default(acme_stub, manager, tmp_path):
    """Without trust_roots the system trust store decides: the stub's root is not in it."""
    with pytest.raises(CertificateCheckError, match="system trust store") as info:
        issue_certificate(manager, "web", settings(acme_stub, tmp_path, trust_roots=None))
    assert info.value.problem == "chain"


@pytest.mark.parametrize(("days", "used"), [(200, 90), (30, 30)])
def test_deactivation_is_the_earlier_of_not_after_and_the_cryptoperiod(
    acme_stub, manager, tmp_path, days, used
):
    acme_stub.behaviour["not_after"] = dt.datetime.now(UTC) + dt.timedelta(days=days)
    result = issue_certificate(manager, "web", settings(acme_stub, tmp_path))
    version = manager.load("web").get(result.version)
    assert version is not None and version.activation is not None
    cert = x509.load_pem_x509_certificate(version.attributes["certificate_pem"].encode())
    assert version.activation == cert.not_valid_before_utc
    expected = min(cert.not_valid_after_utc, version.activation + dt.timedelta(days=90))
    assert version.deactivation == expected
    assert abs((expected - version.activation) - dt.timedelta(days=used)) < dt.timedelta(hours=1)


@pytest.mark.parametrize("url", ["http://127.0.0.1:14000/dir", "HTTP://localhost/dir", "ftp://x"])
def test_plain_http_directory_refused(url, tmp_path):
    with pytest.raises(AcmeError, match="https://"):
        AcmeClient(url, generate_private_key())
    with pytest.raises(AcmeError, match="https://"):
        CertSettings(directory=url, domains=("a.example.com",))


def test_plain_http_urls_from_the_ca_refused(acme_stub, manager, tmp_path):
    directory = acme_stub.directory()
    directory["newOrder"] = directory["newOrder"].replace("https://", "http://")

    def answer(handler: object) -> bool:
        handler.send(200, directory)  # type: ignore[attr-defined]
        return True

    acme_stub.override["/dir"] = answer
    with pytest.raises(AcmeError, match="newOrder must be an https:// URL"):
        issue_certificate(manager, "web", settings(acme_stub, tmp_path))


def test_cli_refuses_http_directory(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    result = run_cli(
        home,
        "cert",
        "issue",
        "web",
        "--domain",
        "a.example.com",
        "--directory",
        "http://127.0.0.1:9/dir",
        "--agree-tos",
    )
    assert result.returncode == 1
    assert "https://" in result.stderr and "Traceback" not in result.stderr


def test_settings_roundtrip_keeps_trust_roots(acme_stub, tmp_path):
    s = settings(acme_stub, tmp_path)
    again = CertSettings.from_json(s.to_json())
    assert again == dataclasses.replace(s) and again.trust_roots == acme_stub.roots_file
