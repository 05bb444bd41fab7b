"""The Python example of docs/acme.md runs, against Pebble instead of Let's Encrypt."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "acme.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_library_example_issues_against_pebble(pebble, capsys):
    blocks = python_blocks()
    assert len(blocks) == 1
    code = blocks[0]
    replacements = {
        "DIRECTORY": repr(pebble.directory_url),
        "CA_BUNDLE": repr(pebble.ca_bundle),
        "TRUST_ROOTS": repr(pebble.trust_roots),
        "HTTP_PORT": repr(pebble.http_port),
        "HTTP_ADDRESS": repr("127.0.0.1"),
    }
    for name, value in replacements.items():
        code, count = re.subn(rf"^{name} = .*$", f"{name} = {value}", code, flags=re.M)
        assert count == 1, name
    namespace: dict[str, object] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    serial, _not_after = capsys.readouterr().out.split()
    assert int(serial, 16) == namespace["issued"].serial
