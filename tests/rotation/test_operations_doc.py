"""The Python example in docs/operations.md runs."""

from __future__ import annotations

import re
from pathlib import Path

import keylife

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_operations_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    with keylife.init() as m:  # the default store, in the test's private XDG home
        m.create_ring("payments-signing", "ec-p256", "signing")
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})
