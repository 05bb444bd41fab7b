"""Issue 10 items 12 and 13: what reaches the terminal, and one-line errors for bad options.

Values from outside (actor, reason, ring names) cannot forge lines or send terminal escapes in
human output; ``--json`` keeps them exact. Dates that overflow and absurd HMAC sizes are
refused in one line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from keylife_cli.render import clean

from .files_support import Sandbox, one_line_error, sandbox

FORGED_ACTOR = "x\n     9  2026-03-01T00:00:00+00:00  root         destroy     s1 v1      success"
TERMINAL_REASON = "\x1b]0;pwned title\x07\x1b[2J\x9b31m \u202egnp.exe"


@pytest.fixture
def kl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    box = sandbox(tmp_path, monkeypatch)
    with box.init(actor="alice") as m:
        m.create_ring("s1", "ec-p256", "signing")
    return box


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F]


def test_a_forged_actor_and_terminal_escapes_stay_on_their_line(kl: Sandbox) -> None:
    assert kl.run("--actor", FORGED_ACTOR, "key", "rotate", "s1").exit_code == 0
    result = kl.run("key", "suspend", "s1", "2", "--reason", TERMINAL_REASON)
    assert result.exit_code == 0, result.stderr
    records = json.loads(kl.run("--json", "audit", "show").stdout)["records"]
    shown = kl.run("audit", "show")
    assert shown.exit_code == 0
    lines = shown.stdout.splitlines()
    assert len(lines) == len(records), shown.stdout  # no forged extra line
    assert not _raw_controls(shown.stdout), repr(shown.stdout)
    assert "\u202e" not in shown.stdout
    assert "x\\n     9" in shown.stdout and "\\e]0;pwned title\\x07\\e[2J" in shown.stdout
    # JSON keeps the exact values.
    assert FORGED_ACTOR in [r["actor"] for r in records]
    assert TERMINAL_REASON in [r["reason"] for r in records]
    history = kl.run("key", "history", "s1")
    assert not _raw_controls(history.stdout) and "\\e[2J" in history.stdout


def test_ring_names_and_purposes_from_the_store_are_escaped(kl: Sandbox) -> None:
    (doc,) = kl.sql("SELECT doc FROM rings WHERE name='s1'")[0]
    evil = "s1\x1b[2J\nforged 1 2 3"
    d = json.loads(doc)
    d["name"] = evil
    for v in d["versions"]:
        v["events"][0]["actor"] = "eve\r\x1b[1A"
    kl.sql("UPDATE rings SET name=?, doc=? WHERE name='s1'", (evil, json.dumps(d)))
    listing = kl.run("key", "list")
    assert listing.exit_code == 0
    assert not _raw_controls(listing.stdout) and len(listing.stdout.splitlines()) == 2
    assert "s1\\e[2J\\nforged" in listing.stdout
    as_json = json.loads(kl.run("--json", "key", "list").stdout)
    assert as_json["rings"][0]["name"] == evil


def test_clean_escapes_every_control_and_bidi_character() -> None:
    for code in [*range(0, 32), *range(0x7F, 0xA0), 0x202A, 0x202E, 0x2066, 0x2069, 0x2028]:
        assert chr(code) not in clean(f"a{chr(code)}b"), hex(code)
    assert clean("plain ring-1.name_é 日本") == "plain ring-1.name_é 日本"
    assert clean("a\nb\x1b") == "a\\nb\\e"


@pytest.mark.parametrize(
    "args",
    [
        ("key", "create", "late", "--purpose", "signing", "--activate-at", "9999-12-31T23:00Z"),
        ("key", "create", "early", "--purpose", "signing", "--activate-at", "0001-01-01"),
        ("key", "compromise", "s1", "--occurred-at", "0001-01-01T00:00+14:00"),
        ("rotate", "--as-of", "9999-12-31T23:30Z", "--dry-run"),
        (
            "key",
            "create",
            "x",
            "--purpose",
            "signing",
            "--deactivate-at",
            "\u0662\u0660\u0663\u0661-01-01",
        ),
    ],
)
def test_dates_out_of_range_are_usage_errors(kl: Sandbox, args: tuple[str, ...]) -> None:
    line = one_line_error(kl.run(*args), 2)
    assert "out of range" in line or "not an ISO 8601" in line, line


@pytest.mark.parametrize("size", ["80000000000000000000", "8000000000", "1032", "0", "-8"])
def test_hmac_sizes_outside_the_range_are_refused_at_once(kl: Sandbox, size: str) -> None:
    started = time.monotonic()
    result = kl.run(
        "key", "create", "mac", "--purpose", "authentication", "--type", "hmac-sha256",
        "--size", size,
    )  # fmt: skip
    line = one_line_error(result, 1)
    assert "a multiple of 8 bits from 8 to 1024" in line
    assert time.monotonic() - started < 2


def test_hmac_size_at_the_cap_works(kl: Sandbox) -> None:
    result = kl.run(
        "--json", "key", "create", "mac", "--purpose", "authentication",
        "--type", "hmac-sha512", "--size", "1024",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["spec"] == "hmac-sha512:1024"
