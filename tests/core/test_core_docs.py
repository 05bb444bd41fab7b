"""The docs cannot rot: run the ```python and ```console blocks of the core docs, and check the
reference tables against the code."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
OWNED = ["index.md", "concepts.md", "policy.md", "cli.md", "api.md", "security.md"]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(name: str, lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall((DOCS / name).read_text()) if kind == lang]


def _with(lang: str) -> list[str]:
    """The owned pages that have examples in ``lang`` (the others have nothing to run)."""
    return [name for name in OWNED if blocks(name, lang)]


def test_examples_exist() -> None:
    assert "api.md" in _with("python") and "cli.md" in _with("console")


@pytest.mark.parametrize("name", _with("python"))
def test_python_blocks_run(env, name, tmp_path, monkeypatch) -> None:
    code = blocks(name, "python")
    env.run("init")
    policy_file = tmp_path / "policy.toml"
    toml = blocks(name, "toml")
    if toml:
        policy_file.write_text(toml[0])
    namespace: dict[str, object] = {"policy_file": policy_file}
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, body in enumerate(code, start=1):
            exec(compile(body, f"{name} python block {i}", "exec"), namespace)
    assert out.getvalue() or name != "api.md"


def _session(block: str) -> list[tuple[str, int, list[str]]]:
    steps: list[tuple[str, int, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            command = line[2:]
            code = 0
            m = re.search(r"\s+#\s*exit (\d+)$", command)
            if m:
                code = int(m.group(1))
                command = command[: m.start()]
            steps.append((command, code, []))
        elif steps and line.strip():
            steps[-1][2].append(line)
    return steps


@pytest.mark.parametrize("name", _with("console"))
def test_console_blocks_run(env, name, tmp_path) -> None:
    sessions = blocks(name, "console")
    assert env.sh("init").returncode == 0
    path = f"{Path(sys.executable).parent}:{env.environ.get('PATH', '')}"
    for block in sessions:
        for command, code, expected in _session(block):
            proc = subprocess.run(
                ["bash", "-c", command],
                cwd=tmp_path,
                env={**env.environ, "PATH": path},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            output = proc.stdout + proc.stderr
            assert proc.returncode == code, (
                f"{name}: `{command}` exited {proc.returncode}\n{output}"
            )
            for line in expected:
                for part in line.split("..."):
                    assert part.strip() in output, f"{name}: `{command}` lacks {part!r}\n{output}"


def test_policy_tables_match_the_code() -> None:
    from keylife.policy import DEFAULT_RULES, PURPOSE_KINDS, format_duration
    from keylife.specs import SPECS

    text = (DOCS / "policy.md").read_text()
    for purpose, r in DEFAULT_RULES.items():
        destroy = format_duration(r.destroy_after) if r.destroy_after else "-"
        row = (
            f"| `{purpose.value}` | `{r.default_type}` | {format_duration(r.cryptoperiod)} | "
            f"{format_duration(r.lead_time)} | {format_duration(r.grace_period)} | {destroy} |"
        )
        assert row in text, row
    for name, spec in SPECS.items():
        purposes = ", ".join(p.value for p, kinds in PURPOSE_KINDS.items() if spec.kind in kinds)
        row = f"| `{name}` | {spec.strength} | {purposes} |"
        assert row in text, row


def test_cli_reference_matches_the_code() -> None:
    from keylife_cli import context
    from keylife_cli.key import key
    from keylife_cli.main import _COMMANDS

    text = (DOCS / "cli.md").read_text()
    for code in (
        context.EXIT_OK,
        context.EXIT_FAILED,
        context.EXIT_USAGE,
        context.EXIT_UNAVAILABLE,
        context.EXIT_LOCKED,
    ):
        assert f"\n| {code} |" in text
    for name in _COMMANDS:
        assert f"`keylife {name}" in text, name
    for verb in key.commands:
        assert re.search(rf"`keylife key [a-z|\\]*\b{verb}\b", text), verb
    for var in (
        "KEYLIFE_STORE",
        "KEYLIFE_MASTER_KEY_FILE",
        "KEYLIFE_MASTER_KEY",
        "KEYLIFE_POLICY",
        "KEYLIFE_BACKUP_PASSPHRASE",
        "KEYLIFE_CONFIG",
        "XDG_DATA_HOME",
        "XDG_CONFIG_HOME",
    ):
        assert var in text, var


def test_index_links_resolve() -> None:
    text = (DOCS / "index.md").read_text()
    links = re.findall(r"\]\(([^)]+\.md)\)", text)
    mine = [link for link in links if link in OWNED]
    assert set(mine) == set(OWNED) - {"index.md"}
    for link in ("operations.md", "tls.md", "acme.md", "vault.md"):
        assert link in links  # written by the other engineers
