"""The docs runner fails where a reader would: undefined names, wrong exit codes, missing
output, servers left running; and it gives a page nothing but PATH and HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.runner import PageRun, session

FENCE = "```"


def run(tmp_path: Path, text: str) -> None:
    tmp_path.mkdir(exist_ok=True)
    page = tmp_path / "page.md"
    page.write_text(text)
    runner = PageRun(page, tmp_path / "run")
    runner.stop_grace = 1.0
    runner.run()


def test_python_blocks_share_one_interpreter_and_nothing_else(tmp_path: Path) -> None:
    run(
        tmp_path,
        f"{FENCE}python\nimport os\nx = 1\n{FENCE}\n\n"
        f"{FENCE}python\nassert x == 1\n"
        "assert set(os.environ) <= {'PATH', 'HOME', 'LC_CTYPE'}, sorted(os.environ)\n"
        "assert sorted(k for k in globals() if not k.startswith('__')) == ['os', 'x']\n"
        f"{FENCE}\n",
    )


def test_an_undefined_name_fails(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="NameError: name 'policy_file'"):
        run(tmp_path, f"{FENCE}python\nprint(policy_file)\n{FENCE}\n")


def test_console_exit_codes_and_output_are_checked(tmp_path: Path) -> None:
    run(tmp_path, f"{FENCE}console\n$ export A=1\n$ echo $A-ok\n1-ok\n$ false  # exit 1\n{FENCE}\n")
    with pytest.raises(AssertionError, match="exited 1, not 0"):
        run(tmp_path / "b", f"{FENCE}console\n$ false\n{FENCE}\n")
    with pytest.raises(AssertionError, match="lacks 'bye'"):
        run(tmp_path / "c", f"{FENCE}console\n$ echo hi\nbye\n{FENCE}\n")


def test_env_is_only_path_and_home(tmp_path: Path) -> None:
    run(
        tmp_path,
        f'{FENCE}sh\ntest -z "${{KEYLIFE_STORE:-}}" && test -z "${{VAULT_ADDR:-}}"\n{FENCE}\n',
    )


def test_a_server_left_running_fails_and_is_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "run" / "work" / "sleep.pid"
    with pytest.raises(AssertionError, match="still running"):
        run(tmp_path, f"{FENCE}sh\nsleep 300 > /dev/null 2>&1 &\necho $! > sleep.pid\n{FENCE}\n")
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_unknown_and_untagged_fences_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="use ```text"):
        run(tmp_path, f"{FENCE}\nkeylife rotate\n{FENCE}\n")


def test_session_parsing() -> None:
    steps = session("$ a \\\n  b  # exit 3\nout\n$ c\n")
    assert [(s.command, s.code, s.expected) for s in steps] == [
        ("a \\\n  b", 3, ["out"]),
        ("c", 0, []),
    ]
