"""`keylife tls check`: exit codes, one JSON document on stdout, schema validity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from keylife_cli.tls import tls

from keylife.tls import json_schema
from tests.tls.conftest import Endpoint

StartPeer = Callable[[str], Endpoint]


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(tls, ["check", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _validate(doc: object) -> None:
    jsonschema.Draft202012Validator(
        json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(doc)


def test_pass_exits_0_and_json_validates(start_peer: StartPeer) -> None:
    ep = start_peer("strong")
    code, out, _ = _run(ep.target, "--sni", ep.sni, "--ca-file", str(ep.ca_file), "--json")
    assert code == 0
    doc = json.loads(out)  # exactly one document: json.loads rejects trailing data
    _validate(doc)
    assert doc["verdict"] == "pass"
    assert doc["results"][0]["verdict"] == "pass"


def test_fail_exits_1_with_rule_in_json(start_peer: StartPeer) -> None:
    ep, weak = start_peer("strong"), start_peer("wrong-host")
    args = ["--sni", "localhost", "--ca-file", str(ep.ca_file), "--json"]
    code, out, _ = _run(ep.target, weak.target, *args)
    assert code == 1
    doc = json.loads(out)
    _validate(doc)
    assert [r["verdict"] for r in doc["results"]] == ["pass", "fail"]
    assert "tls.cert.hostname.v1" in {f["rule_id"] for f in doc["results"][1]["findings"]}


def test_error_exits_3_and_beats_fail(start_peer: StartPeer) -> None:
    weak, silent = start_peer("expired"), start_peer("never-answers")
    code, out, err = _run(
        weak.target, silent.target, "--ca-file", str(weak.ca_file), "--timeout", "0.5", "--json"
    )
    assert code == 3
    doc = json.loads(out)
    _validate(doc)
    assert doc["verdict"] == "error"
    assert [r["verdict"] for r in doc["results"]] == ["fail", "error"]
    assert "within 0.5 s" in doc["results"][1]["error"]
    assert "Traceback" not in out + err


def test_every_weak_peer_validates_against_the_schema(start_peer: StartPeer) -> None:
    names = ["ssl3-rc4-3des", "anonymous-only", "dhe1024", "sha1", "garbage", "tls13-only"]
    eps = [start_peer(n) for n in names]
    code, out, _ = _run(*(e.target for e in eps), "--ca-file", str(eps[0].ca_file), "--json")
    assert code == 3
    doc = json.loads(out)
    _validate(doc)
    assert [r["verdict"] for r in doc["results"]] == [
        "fail",
        "fail",
        "fail",
        "fail",
        "error",
        "pass",
    ]


def test_schema_rejects_a_malformed_document() -> None:
    with pytest.raises(jsonschema.ValidationError):
        _validate({"schema_version": "1.0", "tool": "keylife", "policy": "x", "verdict": "ok"})


def test_text_output_names_rules(start_peer: StartPeer) -> None:
    ep = start_peer("tls10-11")
    code, out, _ = _run(ep.target, "--sni", "localhost", "--ca-file", str(ep.ca_file))
    assert code == 1
    assert "FAIL" in out and "tls.protocol.min-version.v1" in out
    assert "TLS 1.0, TLS 1.1" in out


def test_policy_file_and_unknown_policy(start_peer: StartPeer, tmp_path: Path) -> None:
    ep = start_peer("wrong-host")
    policy = tmp_path / "policy.toml"
    policy.write_text('[tls]\nextends = "default"\n[tls.rules]\n"tls.cert.hostname.v1" = "warn"\n')
    code, out, _ = _run(ep.target, "--ca-file", str(ep.ca_file), "--policy", str(policy))
    assert code == 0, out
    assert "WARN" in out
    code, _, err = _run(ep.target, "--policy", "no-such-policy")
    assert code == 2
    assert "no-such-policy" in err


def test_bad_target_is_a_usage_error() -> None:
    code, _, err = _run("localhost:notaport")
    assert code == 2
    assert "HOST[:PORT]" in err


@pytest.mark.parametrize("root_json", [False, True])
def test_keylife_main_cli_runs_tls_check(start_peer: StartPeer, root_json: bool) -> None:
    ep = start_peer("strong")
    env = dict(os.environ)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from keylife_cli.main import main; main()",
            *(["--json"] if root_json else []),
            "tls",
            "check",
            ep.target,
            "--sni",
            "localhost",
            "--ca-file",
            str(ep.ca_file),
            *([] if root_json else ["--json"]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    _validate(json.loads(proc.stdout))


def test_cli_module_does_not_import_heavy_modules() -> None:
    code = (
        "import sys, keylife_cli.tls; "
        "bad = [m for m in ('cryptography', 'OpenSSL', 'keylife.tls') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_untrusted_chain_names_ca_file_as_the_fix(start_peer: StartPeer) -> None:
    """Issue 14: 'candidates exhausted: chain construction exceeds max depth' gave no hint."""
    ep = start_peer("strong")  # issued by the test PKI's private root
    code, out, _ = _run(ep.target, "--sni", ep.sni)
    assert code == 1
    (line,) = [x for x in out.splitlines() if "tls.cert.trusted.v1" in x]
    assert "pass its root certificate with --ca-file" in line
