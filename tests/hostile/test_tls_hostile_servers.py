"""Issue 10, item 6: a hostile TLS server cannot hold `keylife tls check` long or make it big.

Each server is scripted on 127.0.0.1 (tests/tls/hostile_peers.py). `keylife tls check` runs as a
subprocess with a per-connection timeout longer than the endpoint deadline, so only the deadline
and the flight caps can end it in time. Each case ends with verdict `error`, within the
deadline (plus interpreter start-up), with the whole process under 200 MB of RSS, and with an
error naming what stopped it.

Measured on the code before the deadline and caps (commit b07f742, `--timeout 10`, which it
accepts; it has no `--deadline`): forever-certificates 10.3 s / 144 MB, huge-length-fields
10.6 s / 117 MB, TLS-framed garbage 10.5 s, slow-accept-everything and reset-mid-handshake still
running when killed at 40 s (every suite of four versions, one slow handshake each; a reset in
one connection did not stop the others). After: 0.3 s / 42 MB for the first three, 1.3 s for
the reset, 4.2 s for slow-accept-everything (the deadline).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import jsonschema
import pytest

from keylife.tls import json_schema
from tests.tls import hostile_peers as hp
from tests.tls.peers import HostileServer
from tests.tls.pki import make_pki

DEADLINE = 4.0
TIMEOUT = 10.0  # per connection: longer than the deadline on purpose
STARTUP_SLACK = 4.0  # interpreter start-up and imports on a busy 2-core machine
RSS_LIMIT_MB = 200.0

MakeBehaviour = Callable[[bytes], hp.Behaviour]

CASES: dict[str, tuple[MakeBehaviour, tuple[str, ...]]] = {
    "forever-certificates": (
        lambda der: hp.forever_certificates,
        ("more than 16 certificates (MAX_CERTIFICATES)",),
    ),
    "huge-length-fields": (
        lambda der: hp.huge_length,
        ("handshake message of 16777215 bytes exceeds the flight cap",),
    ),
    "tls-framed-garbage": (
        lambda der: hp.tls_framed_garbage,
        ("(MAX_FLIGHT_BYTES)", "not a TLS server"),
    ),
    "slow-accept-everything": (
        lambda der: hp.AcceptEverything(der, delay=0.3),
        (f"endpoint deadline of {DEADLINE:g} s reached",),
    ),
    "reset-mid-handshake": (
        lambda der: hp.AcceptEverything(der, delay=0.2, reset_on=12),
        ("connection reset mid-handshake",),
    ),
}


@pytest.fixture(scope="module")
def cert_der(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_pki(tmp_path_factory.mktemp("pki")).rsa_leaf.der


@pytest.fixture
def hostile(cert_der: bytes) -> Iterator[Callable[[str], int]]:
    servers: list[HostileServer] = []

    def start(name: str) -> int:
        server = HostileServer(CASES[name][0](cert_der))
        servers.append(server)
        server.__enter__()
        return server.port

    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_server_ends_in_error_within_deadline_and_memory(
    hostile: Callable[[str], int], name: str
) -> None:
    port = hostile(name)
    run = hp.run_keylife(
        "tls", "check", f"127.0.0.1:{port}",
        "--timeout", f"{TIMEOUT:g}", "--deadline", f"{DEADLINE:g}", "--json",
    )  # fmt: skip
    assert run.returncode == 3, run.stderr
    doc = json.loads(run.stdout)
    (result,) = doc["results"]
    assert doc["verdict"] == result["verdict"] == "error"
    assert any(s in result["error"] for s in CASES[name][1]), result["error"]
    assert "Traceback" not in run.stderr
    assert run.seconds < DEADLINE + STARTUP_SLACK, f"{name}: took {run.seconds:.1f} s"
    assert 0 < run.max_rss_mb < RSS_LIMIT_MB, f"{name}: {run.max_rss_mb:.0f} MB"


def test_deadline_report_keeps_what_was_seen(hostile: Callable[[str], int]) -> None:
    port = hostile("slow-accept-everything")
    run = hp.run_keylife(
        "tls", "check", f"127.0.0.1:{port}", "--timeout", "10", "--deadline", "2", "--json"
    )
    doc = json.loads(run.stdout)
    jsonschema.Draft202012Validator(json_schema()).validate(doc)
    (result,) = doc["results"]
    assert result["verdict"] == "error"
    assert "seen so far: " in result["error"]
    assert result["suites"], "suites accepted before the deadline are reported"
    assert [p["version"] for p in result["protocols"] if p["accepted"]]
    assert result["handshakes"] > 1
