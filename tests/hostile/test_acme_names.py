"""Issue 10 item 9: ring names, domains and the target ring are checked before any order.

Before, `cert issue '../evil'` was refused only after the CA had issued, and `cert issue` onto a
signing ring made a TLS key its primary. Here every refusal happens with no request at all to
the (scripted) CA.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import keylife
from keylife.acme import issue_certificate, parse_identifier
from keylife.errors import AcmeError, KeylifeError
from tests.acme.stub import StubAcme, cli_args, run_cli, stub_settings


@pytest.fixture
def acme_stub(tmp_path: Path) -> Iterator[StubAcme]:
    stub = StubAcme(tmp_path)
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def open_store(home: Path) -> keylife.KeyManager:
    return keylife.init(
        home / "data" / "keylife.db", master_key_file=home / "config" / "master.key"
    )


@pytest.mark.parametrize("ring", ["../evil", "a/b", ".x", "x" * 129, "a b", "évil", "a;id"])
def test_bad_ring_name_refused_before_any_request(acme_stub, home, ring):
    result = run_cli(home, "cert", "issue", ring, "--domain", "a.example.com", *cli_args(acme_stub))
    assert result.returncode == 1, result.stderr
    assert "ring name" in result.stderr and "Traceback" not in result.stderr
    assert acme_stub.requests == []


@pytest.mark.parametrize(
    "domain",
    [
        "a;b.example.com",
        "$(id).example.com",
        "`id`.example.com",
        "a b.example.com",
        "a\nb.example.com",
        "../x.example.com",
        "a.*.example.com",
        "*.*.example.com",
        "x*.example.com",
        "-a.example.com",
        "a_b.example.com",
        "x" * 64 + ".example.com",
        ".".join(["a" * 60] * 5),
        "*.com",
    ],
)
def test_bad_domain_refused_before_any_request(acme_stub, home, domain):
    result = run_cli(home, "cert", "issue", "web", "--domain", domain, *cli_args(acme_stub))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.startswith("keylife: error:")
    assert acme_stub.requests == []


def test_internationalised_name_is_ordered_as_a_label(acme_stub, home):
    with open_store(home) as manager:
        result = issue_certificate(manager, "idn", stub_settings(acme_stub, "bücher.example"))
    assert acme_stub.payloads("/order")[-1] == {
        "identifiers": [{"type": "dns", "value": "xn--bcher-kva.example"}]
    }
    assert result.certificate.identifiers == ("xn--bcher-kva.example",)
    assert parse_identifier("*.Bücher.Example.").value == "*.xn--bcher-kva.example"


@pytest.mark.parametrize(("purpose", "spec"), [("signing", "ec-p256"), ("tls-server", "ec-p256")])
def test_issue_onto_a_non_certificate_ring_refused(acme_stub, home, purpose, spec):
    with open_store(home) as manager:
        manager.create_ring("sig", spec, purpose)
        before = manager.load("sig")
        with pytest.raises(AcmeError, match=f"ring sig has purpose {purpose}"):
            issue_certificate(manager, "sig", stub_settings(acme_stub, "a.example.com"))
        assert manager.load("sig") == before
    assert acme_stub.requests == []
    result = run_cli(
        home, "cert", "issue", "sig", "--domain", "a.example.com", *cli_args(acme_stub)
    )
    assert result.returncode == 1 and f"purpose {purpose}" in result.stderr
    assert acme_stub.requests == []


def test_bad_account_ring_refused_before_any_request(acme_stub, home):
    with pytest.raises(KeylifeError, match="account ring"):
        stub_settings(acme_stub, "a.example.com", account_ring="../acct")
    result = run_cli(
        home,
        "cert",
        "issue",
        "web",
        "--domain",
        "a.example.com",
        *cli_args(acme_stub),
        "--account-ring",
        "../acct",
    )
    assert result.returncode == 1 and "account ring" in result.stderr
    assert acme_stub.requests == []
