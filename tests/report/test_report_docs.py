"""docs/report.md: its console session and its Python example run against a fresh store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "report.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(doc: Path, lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall(doc.read_text()) if kind == lang]


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    env.pop("KEYLIFE_STORE", None)
    for key in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("KEYLIFE_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    subprocess.run(["keylife", "init"], env=env, check=True, capture_output=True, timeout=60)
    return env


def run_session(doc: Path, env: dict[str, str], cwd: Path) -> None:
    """Run the ```console block of ``doc``: each ``$`` line's exit code (``# exit N``) and
    its expected output lines (``...`` separates parts that must appear in order)."""
    (session,) = blocks(doc, "console")
    steps: list[tuple[str, int, list[str]]] = []
    for line in session.splitlines():
        if line.startswith("$ "):
            command, _, code = line[2:].partition("# exit ")
            steps.append((command.strip(), int(code or 0), []))
        elif line.strip():
            steps[-1][2].append(line)
    for command, code, expected in steps:
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == code, (command, output)
        for want in expected:
            at = 0
            for part in want.split("..."):
                found = output.find(part.strip(), at)
                assert found >= 0, (command, part, output)
                at = found + len(part.strip())


def run_python(doc: Path) -> None:
    (code,) = blocks(doc, "python")
    exec(compile(code, str(doc), "exec"), {})


def test_console_session_runs(sandbox: dict[str, str], tmp_path: Path) -> None:
    run_session(DOC, sandbox, tmp_path)
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_python_example_runs(sandbox: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    subprocess.run(
        ["keylife", "key", "create", "old", "--type", "rsa-2048", "--purpose", "signing"],
        env=sandbox,
        check=True,
        capture_output=True,
        timeout=60,
    )
    run_python(DOC)
    assert "1 rings, 1 below the 2031 minimum" in capsys.readouterr().out
