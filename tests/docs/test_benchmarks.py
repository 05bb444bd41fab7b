"""Benchmarks print their results and leave the tracked RESULTS files alone unless asked
(`--write`); outside the virtualenv they say how to run them instead of a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.docs.runner import REPO

BENCH = REPO / "benchmarks"
SMALL = ["--rings", "3", "--runs", "1", "--keygen", "3"]
SMALL_POLICY = ["--rings", "3", "--runs", "1", "--calls", "100"]


def run_small(script: str, args: list[str], cwd: Path, timeout: int = 120) -> str:
    """Run benchmark ``script`` small in ``cwd``: it succeeds and leaves every tracked
    RESULTS file as it was; its standard output."""
    before = {p.name: p.read_bytes() for p in BENCH.glob("RESULTS-*.md")}
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {p.name: p.read_bytes() for p in BENCH.glob("RESULTS-*.md")} == before
    return proc.stdout


def test_bench_core_prints_and_writes_nothing(tmp_path: Path) -> None:
    out = run_small("bench_core.py", SMALL, tmp_path)
    assert "# " in out and "keylife key list" in out
    assert not list(tmp_path.iterdir())


def test_bench_core_output_goes_where_asked(tmp_path: Path) -> None:
    out = tmp_path / "core.md"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_core.py"), *SMALL, "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "keylife key list" in out.read_text()


def test_benchmarks_outside_the_venv_say_how_to_run_them(tmp_path: Path) -> None:
    for script in ("bench_core.py", "bench_rotate.py", "run_all.py"):
        proc = subprocess.run(
            ["/usr/bin/python3", "-I", str(BENCH / script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode != 0
        assert ".venv/bin/python benchmarks/" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr


def test_every_benchmark_writes_results_only_with_write() -> None:
    for script in BENCH.glob("bench_*.py"):
        text = script.read_text()
        if '/ "RESULTS-' in text:  # a path to a tracked results file
            assert '"--write"' in text, f"{script.name} writes a RESULTS file without --write"


def test_bench_policy_checks_prints_and_writes_nothing(tmp_path: Path) -> None:
    out = run_small("bench_policy_checks.py", SMALL_POLICY, tmp_path)
    assert "| create 3 rings" in out and "warm `ring.primary()`" in out
    assert not list(tmp_path.iterdir())


def test_bench_scale_embedded_runs_small_and_writes_nothing(tmp_path: Path) -> None:
    """The 100,000-ring benchmark builds its store with direct inserts: a small run keeps it
    in step with the store format (blobs bound to the store's id)."""
    out = run_small("bench_scale_embedded.py", ["--rings", "50"], tmp_path, timeout=300)
    assert "nothing-due `keylife rotate`" in out


def test_every_benchmark_imports_and_explains_itself(tmp_path: Path) -> None:
    # A benchmark that no longer imports (a helper moved between modules) fails here, not on
    # the day someone needs its numbers.
    scripts = [*sorted(BENCH.glob("bench_*.py")), BENCH / "run_all.py"]
    for script in scripts:
        out = run_small(script.name, ["--help"], tmp_path)
        assert "usage:" in out, script.name
