"""`keylife tls check --targets`: targets files, connection limit, streaming, roll-up, SIGINT."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from keylife_cli.tls import tls

from keylife.errors import ProbeError
from keylife.tls import ConnectionGate, Target, check_fleet, json_lines_schema, json_schema
from tests.tls.conftest import PYTHON_PEERS, Endpoint
from tests.tls.fleet_peers import OpenCounter, SlowTlsServer
from tests.tls.pki import Pki

StartPeer = Callable[[str], Endpoint]
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(tls, ["check", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _lines(out: str) -> list[dict[str, object]]:
    validator = jsonschema.Draft202012Validator(json_lines_schema(), format_checker=FORMATS)
    docs = [json.loads(line) for line in out.splitlines()]
    for doc in docs:
        validator.validate(doc)
    return docs


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def slow_peers(pki: Pki) -> Iterator[Callable[[int, float], tuple[list[int], OpenCounter]]]:
    """slow_peers(n, delay): n strong servers that wait ``delay`` s per connection."""
    with ExitStack() as stack:

        def start(n: int, delay: float) -> tuple[list[int], OpenCounter]:
            counter = OpenCounter()
            ports = []
            for _ in range(n):
                server = SlowTlsServer(PYTHON_PEERS["strong"](pki), delay, counter)
                stack.enter_context(server)
                ports.append(server.port)
            return ports, counter

        yield start


def test_comments_blank_lines_and_bad_lines(start_peer: StartPeer, tmp_path: Path) -> None:
    ep = start_peer("strong")
    targets = tmp_path / "targets.txt"
    targets.write_text(
        "# the payments fleet\n"
        "\n"
        f"   {ep.target} localhost   # inline comment\n"
        "\t\n"
        "   # indented comment\n"
        "bad_host!:443\n"
        f"127.0.0.1:99999\n"
        f"{ep.target} localhost extra-field\n"
    )
    code, out, _ = _run("--targets", str(targets), "--ca-file", str(ep.ca_file), "--jsonl")
    docs = _lines(out)
    assert code == 3
    by_verdict = {d["verdict"]: d for d in docs}
    assert (
        by_verdict["pass"]["port"] == ep.port and by_verdict["pass"]["server_name"] == "localhost"
    )
    errors = sorted(str(d["error"]) for d in docs if d["verdict"] == "error")
    assert len(docs) == 4 and len(errors) == 3
    assert errors[0].startswith(f"{targets} line 6: host 'bad_host!' is not a valid host name")
    assert errors[1].startswith(f"{targets} line 7: not a HOST[:PORT] target")
    assert errors[2].startswith(f"{targets} line 8: expected HOST[:PORT] [SNI], found 3 fields")


def test_duplicate_targets_are_checked_once(start_peer: StartPeer, tmp_path: Path) -> None:
    ep = start_peer("strong")
    targets = tmp_path / "targets.txt"
    targets.write_text(f"{ep.target}\n{ep.target}   # again\n{ep.target}\n127.0.0.1:{ep.port}\n")
    args = ["--targets", str(targets), "--sni", "localhost", "--ca-file", str(ep.ca_file)]
    code, out, _ = _run(ep.target, *args, "--jsonl")
    assert code == 0
    assert [d["target"] for d in _lines(out)] == [ep.target]
    # the same endpoint under another server name is another check
    targets.write_text(f"{ep.target}\n{ep.target} other.example\n")
    code, out, _ = _run(*args, "--jsonl")
    assert code == 1
    assert sorted(str(d["server_name"]) for d in _lines(out)) == ["localhost", "other.example"]


def test_unreachable_target_among_good_ones_exits_3(start_peer: StartPeer, tmp_path: Path) -> None:
    good = [start_peer("strong"), start_peer("tls13-only"), start_peer("strong-rsa")]
    closed = _closed_port()
    targets = tmp_path / "targets.txt"
    lines = [f"{good[0].target} localhost", f"127.0.0.1:{closed}"]
    lines += [f"{ep.target} localhost" for ep in good[1:]]
    targets.write_text("\n".join(lines) + "\n")
    code, out, _ = _run("--targets", str(targets), "--ca-file", str(good[0].ca_file), "--json")
    assert code == 3
    doc = json.loads(out)
    jsonschema.Draft202012Validator(json_schema(), format_checker=FORMATS).validate(doc)
    # --json keeps the file's order; every good endpoint was still checked
    assert [r["port"] for r in doc["results"]] == [good[0].port, closed] + [
        ep.port for ep in good[1:]
    ]
    assert [r["verdict"] for r in doc["results"]] == ["pass", "error", "pass", "pass"]
    assert "refused" in doc["results"][1]["error"]


def test_connections_bounds_simultaneous_connections_of_the_run(
    slow_peers: Callable[[int, float], tuple[list[int], OpenCounter]], pki: Pki, tmp_path: Path
) -> None:
    ports, counter = slow_peers(6, 0.1)
    targets = tmp_path / "targets.txt"
    targets.write_text("".join(f"127.0.0.1:{p} localhost\n" for p in ports))
    code, out, _ = _run(
        "--targets", str(targets), "--ca-file", str(pki.root.cert_path), "--jsonl",
        "--connections", "6", "--per-endpoint", "2",
    )  # fmt: skip
    docs = _lines(out)
    assert code == 0, docs
    assert len(docs) == 6 and counter.total >= 6 * 10
    # never more than --connections, and more than one endpoint's share at once
    assert 3 <= counter.peak <= 6, counter.peak


def test_summary_of_a_known_mix(start_peer: StartPeer, tmp_path: Path) -> None:
    eps = {name: start_peer(name) for name in ("strong", "tls13-only", "expired", "wrong-host")}
    closed = _closed_port()
    targets = tmp_path / "targets.txt"
    targets.write_text(
        "".join(f"{ep.target} localhost\n" for ep in eps.values())
        + f"127.0.0.1:{closed}\nnot a target line\n{eps['strong'].target} localhost\n"
    )
    ca = str(eps["strong"].ca_file)
    code, out, _ = _run("--targets", str(targets), "--ca-file", ca, "--jsonl", "--summary")
    assert code == 3
    docs = _lines(out)
    assert [d["kind"] for d in docs] == ["endpoint"] * 6 + ["summary"]
    summary = docs[-1]
    assert summary["verdict"] == "error" and summary["endpoints"] == 6
    assert summary["not_checked"] == 0 and summary["interrupted"] is False
    assert summary["verdicts"] == {"pass": 2, "fail": 2, "error": 2}
    assert summary["rules"] == {
        "tls.cert.expired.v1": 1,
        "tls.cert.trusted.v1": 1,
        "tls.cert.hostname.v1": 1,
    }
    assert summary["protocols"] == {"TLS 1.2": 3, "TLS 1.3": 4}
    suites = summary["suites"]
    assert isinstance(suites, dict)
    assert suites["TLS_AES_256_GCM_SHA384"] == 4
    assert suites["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"] == 3
    expiring = summary["expiring"]
    assert isinstance(expiring, dict)
    assert expiring["within_days"] == 30 and expiring["count"] == 1
    assert expiring["certificates"][0]["target"] == eps["expired"].target
    assert expiring["certificates"][0]["days_left"] < 0
    # a wider window takes in the 90-day leaves too; the same roll-up is in --json
    code, out, _ = _run("--targets", str(targets), "--ca-file", ca, "--json", "--summary",
                        "--expiring", "13w")  # fmt: skip
    doc = json.loads(out)
    jsonschema.Draft202012Validator(json_schema(), format_checker=FORMATS).validate(doc)
    assert (
        doc["summary"]["expiring"]["count"] == 4 and doc["summary"]["expiring"]["within_days"] == 91
    )
    code, out, _ = _run("--targets", str(targets), "--ca-file", ca, "--summary")
    assert "summary: 6 endpoint(s): 2 pass, 2 fail, 2 error" in out


def test_usage_errors(tmp_path: Path) -> None:
    assert _run()[0] == 2  # no targets at all
    assert _run("--targets", str(tmp_path / "missing.txt"))[0] == 2
    assert _run("127.0.0.1:1", "--json", "--jsonl")[0] == 2
    assert _run("127.0.0.1:1", "--expiring", "soon")[0] == 2
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    assert _run("--targets", str(tmp_path / "empty.txt"))[0] == 2


def test_sigint_leaves_complete_lines(
    slow_peers: Callable[[int, float], tuple[list[int], OpenCounter]], pki: Pki, tmp_path: Path
) -> None:
    n = 20
    ports, _ = slow_peers(n, 0.05)
    targets = tmp_path / "targets.txt"
    targets.write_text("".join(f"127.0.0.1:{p} localhost\n" for p in ports))
    proc = subprocess.Popen(
        [sys.executable, "-m", "keylife_cli", "tls", "check", "--targets", str(targets),
         "--ca-file", str(pki.root.cert_path), "--jsonl", "--summary", "--connections", "2"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    received = b""
    deadline = time.monotonic() + 120
    try:
        while received.count(b"\n") < n // 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                assert chunk, "keylife ended before it was interrupted"
                received += chunk
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    out = (received + rest).decode()
    assert proc.returncode == 130, err.decode()
    assert out.endswith("\n")
    docs = _lines(out)  # every line is whole JSON and follows the schema
    endpoints = [d for d in docs if d["kind"] == "endpoint"]
    assert 1 <= len(endpoints) <= n - 1
    assert all(d["verdict"] == "pass" for d in endpoints)
    assert docs[-1]["kind"] == "summary" and docs[-1]["interrupted"] is True
    assert docs[-1]["not_checked"] == n - len(endpoints)
    assert b"interrupted" in err


def test_gate_counts_and_times_out() -> None:
    gate = ConnectionGate(2)
    with gate.slot(1), gate.slot(1):
        assert gate.open == 2
        started = time.monotonic()
        with (
            pytest.raises(ProbeError, match=r"no connection slot free within 0\.2 s"),
            gate.slot(0.2),
        ):
            pass
        assert 0.15 < time.monotonic() - started < 2
    assert gate.open == 0 and gate.peak == 2


def test_cancel_abandons_endpoints_in_flight(start_peer: StartPeer) -> None:
    silent = [start_peer("never-answers") for _ in range(3)]
    targets = [Target("127.0.0.1", ep.port) for ep in silent]
    stop, cancel = threading.Event(), threading.Event()
    threading.Timer(0.5, lambda: (stop.set(), cancel.set())).start()
    started = time.monotonic()
    got = list(check_fleet(targets, connections=2, per_endpoint=1, stop=stop, cancel=cancel))
    assert got == []  # abandoned endpoints are not reported
    assert time.monotonic() - started < 3  # not the 5 s timeout, not the 30 s deadline


def test_stop_starts_no_new_endpoint(start_peer: StartPeer) -> None:
    ep = start_peer("strong")
    targets = [Target("127.0.0.1", ep.port, "localhost"), Target("127.0.0.1", ep.port, "a.b")]
    stop = threading.Event()
    got = []
    for index, report in check_fleet(targets, connections=1, ca_file=ep.ca_file, stop=stop):
        got.append((index, report.verdict))
        stop.set()
    assert got == [(0, "pass")]
