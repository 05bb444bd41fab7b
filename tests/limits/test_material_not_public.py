"""Issue 11 item 4: `manager.material()` is no longer public API. Usable versions come as
LoadedKeys from `ring.primary()` / `ring.version(n)`, a compromised one only through
`ring.recover(n, reason=...)`; keylife's own services use the internal writer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import keylife
from keylife.writer import RingWriter

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_manager_does_not_offer_raw_material(tmp_path: Path) -> None:
    with keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk") as m:
        m.create_ring("r", "aes-256", "data-encryption")
        v = m.load("r").get(1)
        assert v is not None
        assert not hasattr(m, "material")
        with pytest.raises(AttributeError, match=r"ring\(NAME\)\.recover\(N, reason=\.\.\.\)"):
            m.material(v)
        assert m.ring("r").primary().material == RingWriter.material(m, v)  # internal path
    assert "material" not in keylife.__all__


def test_docs_do_not_offer_it() -> None:
    offered = re.compile(r"\b(?:m|manager|km|keys)\.material\(")
    pages = [p for p in DOCS.rglob("*.md") if offered.search(p.read_text())]
    assert pages == []
