"""The Python examples in docs/tls.md run, in order, against certificates made here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.tls.conftest import Pki

DOC = Path(__file__).resolve().parents[2] / "docs" / "tls.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_docs_have_examples() -> None:
    assert len(_blocks()) >= 3


def test_docs_examples_run(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ca.pem").write_bytes(pki.root.pem())
    (tmp_path / "cert.pem").write_bytes(pki.leaf.pem())
    (tmp_path / "key.pem").write_bytes(pki.leaf.key_path.read_bytes())
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_tls"}
    blocks = _blocks()
    assert blocks, "docs/tls.md lost its python examples"
    for number, block in enumerate(blocks, 1):
        code = compile(block, f"docs/tls.md python block {number}", "exec")
        exec(code, namespace)
