"""Issue 10, item 13 (TLS part): a bad host or `--sni` name is a one-line usage error (exit 2)
naming the rule it breaks, never a traceback. Before: a 64-character label crashed a probe
thread with `UnicodeError: encoding with 'idna' codec failed` and exited 0 with no report."""

from __future__ import annotations

import pytest

from tests.tls import hostile_peers as hp

LONG = "a" * 64

CASES = {
    "host label over 63": (["check", f"{LONG}.example.com:443"], "a label is 64 characters"),
    "sni label over 63": (["check", "127.0.0.1:1", "--sni", f"{LONG}.x"], "at most 63"),
    "host over 253": (["check", "a." * 127 + "com"], "at most 253"),
    "host with a space": (["check", "bad host:443"], "a-z, 0-9 or '-'"),
    "sni with a leading hyphen": (["check", "127.0.0.1:1", "--sni", "-x.example"], "'-x'"),
    "sni empty label": (["check", "127.0.0.1:1", "--sni", "a..b"], "empty label"),
    "sni is an IP": (["check", "127.0.0.1:1", "--sni", "10.0.0.1"], "RFC 6066"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_name_is_a_one_line_usage_error(name: str) -> None:
    args, rule = CASES[name]
    run = hp.run_keylife("tls", *args, hard_limit=60)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    assert rule in run.stderr
    assert "host name is at most 253 characters" in run.stderr or "RFC 6066" in run.stderr
    error_lines = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, run.stderr
    assert run.stdout == ""
