"""Fuzz the targets-file parser: any line gives None or a Target (a bad one carries ``error``),
any file gives a list of targets or a TlsError, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keylife.errors import TlsError
from keylife.tls import Target, parse_target_line, read_targets, unique_targets

FUZZ = settings(max_examples=200, deadline=500, suppress_health_check=[HealthCheck.too_slow])

PIECES = st.sampled_from(
    ["127.0.0.1", "[::1]", "::1", "example.com", ":", "443", "99999", "0", " ", "\t", "#",
     "localhost", "-bad-", "a" * 64, "xn--", "é", "[", "]", ".", "..", "\x00", "\r"]
)  # fmt: skip
LINES = st.one_of(st.text(max_size=300), st.lists(PIECES, max_size=8).map("".join))


def _valid(target: Target | None) -> None:
    if target is None:
        return
    if target.error is None:
        assert 0 < target.port < 65536 and target.host
    else:
        assert target.port == 0 and target.error.startswith("f line 1: ")


@FUZZ
@given(LINES)
def test_any_line_is_none_or_a_target(line: str) -> None:
    _valid(parse_target_line(line, "f line 1"))


@FUZZ
@given(st.lists(st.one_of(LINES.map(str.encode), st.binary(max_size=80)), max_size=20))
def test_any_file_is_targets_or_a_tls_error(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "targets"
        data = b"\n".join(lines)
        path.write_bytes(data)
        try:
            targets = read_targets(path)
        except TlsError:
            return
    assert len(unique_targets(targets)) <= len(targets) <= data.count(b"\n") + 1
    for t in targets:
        assert t.error is not None or 0 < t.port < 65536
