"""Issue 10 item 3: malformed CA answers are refused as AcmeError naming URL and field.

A scripted HTTPS ACME server answers one request with something malformed; before, these gave
KeyError/AttributeError tracebacks (and stopped `keylife rotate` for every other ring).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from keylife.acme import AcmeClient, StandaloneHttp01, generate_private_key
from keylife.errors import AcmeError, AcmeResponseError
from tests.acme.stub import StubAcme, cli_args, run_cli


@pytest.fixture
def acme_stub(tmp_path: Path) -> Iterator[StubAcme]:
    stub = StubAcme(tmp_path)
    try:
        yield stub
    finally:
        stub.stop()


def answer(body: Any, code: int = 200, **headers: str) -> Callable[[Any], bool]:
    def respond(handler: Any) -> bool:
        handler.send(code, body, headers)
        return True

    return respond


def with_authz(stub: StubAcme, authz: Any) -> None:
    """Orders at the stub are pending with one authorization, whose answer is ``authz``."""
    order = {
        "status": "pending",
        "identifiers": [{"type": "dns", "value": "x.example.com"}],
        "authorizations": [stub.url + "/authz/1"],
        "finalize": stub.url + "/finalize",
    }
    stub.override["/order"] = answer(order, 201, Location=stub.url + "/order/1")
    stub.override["/authz/1"] = answer(authz)


def issue(stub: StubAcme) -> None:
    with AcmeClient(
        stub.directory_url,
        generate_private_key(),
        ca_bundle=stub.ca_bundle,
        trust_roots=stub.roots_file,
        timeout=20,
    ) as client:
        client.register(agree_tos=True)
        client.issue(["x.example.com"], generate_private_key(), StandaloneHttp01(0, "127.0.0.1"))


def chall(**fields: Any) -> dict[str, Any]:
    base = {"type": "http-01", "status": "pending", "token": "tok_1", "url": "https://a/c/1"}
    return {**base, **fields}


AUTHZ = {"status": "pending", "identifier": {"type": "dns", "value": "x.example.com"}}
CASES = {
    "authz without identifier": ({"status": "pending", "challenges": []}, "identifier"),
    "challenges as a string": ({**AUTHZ, "challenges": "http-01"}, "challenges"),
    "authz as a list": ([AUTHZ], "body"),
    "challenge without token": ({**AUTHZ, "challenges": [chall(token=None)]}, "token"),
    "challenge as a number": ({**AUTHZ, "challenges": [7]}, "challenges[0]"),
    "identifier value a dict": ({**AUTHZ, "identifier": {"type": "dns", "value": {}}}, "value"),
    "unknown status": ({**AUTHZ, "status": ["pending"], "challenges": []}, "status"),
    "plain-http challenge URL": ({**AUTHZ, "challenges": [chall(url="http://x")]}, "url"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_authorization(acme_stub, case):
    body, field = CASES[case]
    with_authz(acme_stub, body)
    with pytest.raises(AcmeResponseError) as info:
        issue(acme_stub)
    assert info.value.url == acme_stub.url + "/authz/1"
    assert field in (info.value.field or "")
    assert info.value.url in str(info.value)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/acct", [{"status": "valid"}], "body"),
        ("/acct", {"status": 1}, "status"),
        ("/order", "ready", "body"),
        ("/order", {"status": "ready", "authorizations": "x", "finalize": "https://a"}, None),
        ("/order", {"status": "ready", "authorizations": []}, "finalize"),
        ("/finalize", {"status": "valid", "finalize": "https://a/f", "certificate": 5}, None),
    ],
)
def test_malformed_account_and_order(acme_stub, path, body, field):
    location = {"Location": acme_stub.url + path + "/1"}
    acme_stub.override[path] = answer(body, 201 if path != "/finalize" else 200, **location)
    with pytest.raises(AcmeResponseError) as info:
        issue(acme_stub)
    if field is not None:
        assert info.value.field == field


@pytest.mark.parametrize(
    "body",
    [[], "dir", {"newNonce": 5}, {"newNonce": "https://a", "newAccount": "https://a"}, None],
)
def test_malformed_directory(acme_stub, body):
    acme_stub.override["/dir"] = answer(body)
    with pytest.raises(AcmeResponseError, match="/dir"):
        issue(acme_stub)


@pytest.mark.parametrize(
    "body", [{"type": 5}, ["x"], b"\xff\xfe", b"[" * 100_000, {"type": "x", "subproblems": 3}]
)
def test_malformed_problem_documents(acme_stub, body):
    acme_stub.override["/order"] = answer(body, 400)
    with pytest.raises(AcmeError) as info:
        issue(acme_stub)
    assert "/order" in str(info.value)


def test_cli_issue_reports_one_line(acme_stub, tmp_path):
    with_authz(acme_stub, {"status": "pending", "challenges": "http-01"})
    home = tmp_path / "home"
    home.mkdir()
    result = run_cli(
        home, "cert", "issue", "web", "--domain", "x.example.com", *cli_args(acme_stub)
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("keylife: error:") and "challenges" in lines[0]
    assert "/authz/1" in lines[0]
