"""docs/audit.md: its console session and its Python example run against a fresh store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.test_report_docs import run_python, run_session, sandbox  # noqa: F401

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


def test_console_session_runs(sandbox: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    run_session(DOC, sandbox, tmp_path)
    assert (tmp_path / "anchors.jsonl").read_text().count("\n") == 1


def test_python_example_runs(
    sandbox: dict[str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_python(DOC)
    assert capsys.readouterr().out.startswith("True ")
