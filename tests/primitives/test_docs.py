"""docs/migrating.md's python blocks run top to bottom against a temporary store, and the
format table of docs/formats.md matches the code."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from keylife import envelope

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(name: str, lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall((DOCS / name).read_text()) if kind == lang]


def test_migrating_examples_run(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYLIFE_STORE", str(sandbox / "k.db"))
    monkeypatch.setenv("KEYLIFE_MASTER_KEY_FILE", str(sandbox / "mk"))
    monkeypatch.chdir(sandbox)
    code = blocks("migrating.md", "python")
    assert len(code) >= 2
    namespace: dict[str, object] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, body in enumerate(code, start=1):
            exec(compile(body, f"migrating.md python block {i}", "exec"), namespace)
    assert "tokens:v1" in out.getvalue()


def test_format_bytes_match_the_code() -> None:
    text = (DOCS / "formats.md").read_text()
    for value, label in (
        (envelope.MESSAGE, "message"),
        (envelope.STREAM, "stream"),
        (envelope.WRAP_AEAD, "wrapped key (AEAD)"),
        (envelope.WRAP_RSA, "wrapped key (RSA)"),
        (envelope.SIGNATURE, "signature"),
        (envelope.MAC, "MAC"),
    ):
        assert f"`0x{value:02x}` {label}" in text, label
    for label in envelope.LABELS.values():
        assert f'"{label.decode()}"' in text
    for doc in ("api.md", "migrating.md", "formats.md"):
        body = (DOCS / doc).read_text()
        assert "nonce = b" not in body and '\\x00" * 12' not in body  # no hand-made nonces
