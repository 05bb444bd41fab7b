"""Run every benchmark in this folder and print their results.

Usage: `.venv/bin/python benchmarks/run_all.py [--write] [core rotate vault acme tls ...]`
(each name is a `bench_NAME.py` here: `scale_embedded` is the 100,000-ring embedded store).

Without `--write` nothing in the checkout changes: each benchmark prints its report. With
`--write`, the benchmarks that keep a results file (`benchmarks/RESULTS-*.md`) replace it with
the new numbers; the others still only print.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark; print the results.")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS-*.md")
    parser.add_argument("names", nargs="*", help="only these (core, rotate, vault, acme, tls)")
    args = parser.parse_args()
    if importlib.util.find_spec("keylife") is None:
        print(
            f"run_all: {sys.executable} cannot import keylife; run .venv/bin/python "
            "benchmarks/run_all.py from the checkout (./scripts/test makes .venv)",
            file=sys.stderr,
        )
        return 2
    wanted = set(args.names)
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        name = script.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        command = [sys.executable, str(script)]
        if args.write and '"--write"' in script.read_text():
            command.append("--write")
        print(f"== {script.name}", flush=True)
        if subprocess.run(command, check=False).returncode:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
