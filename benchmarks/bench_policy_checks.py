"""What the policy's limits cost (issue 11 acceptance: at most 5 % added).

In one run, on the embedded store, each measured with the checks on and with them replaced by
no-ops (monkeypatched here, in the benchmark only):

1. creating 1,000 rings (`create_ring`, AES-256 data-encryption: the cheapest key to make,
   so the checks weigh most);
2. rotating those 1,000 rings when due (`keylife.rotation.run`, as `keylife rotate` does);
3. a warm `ring.primary()` (the same KeyRing asked again and again, behind the cache of
   `keylife.open(..., refresh=300)` as a long-running service has it; best of 7).

The checks: the type and strength against the policy (`RingWriter.check_spec`), the dates
against the cryptoperiod (`keylife.limits.check_dates`), outside material against its
declared type (`keylife.creation.check_material`) and the health check of every primary at
the start of a run (`keylife.rotation.runner.check_ring`). The two variants alternate, each
in a fresh store, and the medians are compared.

Run: `.venv/bin/python benchmarks/bench_policy_checks.py [--rings N] [--runs N] [--write]`
(prints the table; `--write` replaces benchmarks/RESULTS-policy.md with it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo

from benchmarks.benchenv import require_venv

require_venv()

import keylife
import keylife.creation
import keylife.limits
import keylife.rotation.runner
from keylife.rotation import run
from keylife.writer import RingWriter

HERE = Path(__file__).resolve().parent
T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


CHECKS: list[tuple[Any, str, Any]] = [
    (RingWriter, "check_spec", None),
    (keylife.limits, "check_dates", None),
    (keylife.creation, "check_material", None),
    (keylife.rotation.runner, "check_ring", ""),
]

#: seconds spent inside the checks (wall, CPU) while instrumented
INSIDE = [0.0, 0.0]


@contextlib.contextmanager
def patched(mode: str) -> Iterator[None]:
    """``off``: every check replaced by a no-op; ``timed``: each check wrapped to add the time
    spent inside it to :data:`INSIDE`; ``on``: unchanged."""
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in CHECKS]

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed_check(*args: Any, **kwargs: Any) -> Any:
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                INSIDE[0] += time.perf_counter() - w
                INSIDE[1] += time.process_time() - c

        return timed_check

    try:
        for (obj, name, result), (_o, _n, original) in zip(CHECKS, saved, strict=True):
            if mode == "off":
                setattr(obj, name, lambda *_a, _r=result, **_k: _r)
            elif mode == "timed":
                setattr(obj, name, wrap(original))
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """``(wall, CPU)`` seconds of ``fn()`` (CPU time is this process's own: steadier on a
    loaded machine)."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def one_trial(root: Path, rings: int, calls: int) -> dict[str, float]:
    """Create ``rings`` rings, rotate them when due, and ask a warm primary ``calls`` times."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    clock = keylife.FixedClock(T0)
    with keylife.init(str(root / "k.db"), master_key_file=root / "mk") as opened:
        m = opened.at(clock)
        names = [f"ring-{i:05d}" for i in range(rings)]

        def create() -> None:
            for name in names:
                m.create_ring(name, "aes-256", "data-encryption")

        INSIDE[:] = [0.0, 0.0]
        created = timed(create)
        inside_create = tuple(INSIDE)
        due = m.at(keylife.FixedClock(T0 + dt.timedelta(days=365)))
        report: list[Any] = []
        INSIDE[:] = [0.0, 0.0]
        rotated = timed(lambda: report.append(run(due)))
        inside_rotate = tuple(INSIDE)
        assert not report[0].failed and report[0].count("succeeded") == rings, report[0]
    # warm: behind the cache a long-running service opens (`refresh=`), on the wall clock
    with keylife.open(str(root / "k.db"), master_key_file=root / "mk", refresh=300) as cached:
        cached.create_ring("warm", "aes-256", "data-encryption")
        ring = cached.ring("warm")
        ring.primary()  # loaded and unsealed once

        def primaries() -> None:
            for _ in range(calls):
                ring.primary()

        INSIDE[:] = [0.0, 0.0]
        warm = min(timed(primaries)[0] for _ in range(7)) / calls
        inside_warm = INSIDE[0] / 7 / calls
    return {
        "create": created[0],
        "create_cpu": created[1],
        "create_inside": inside_create[0],
        "create_inside_cpu": inside_create[1],
        "rotate": rotated[0],
        "rotate_cpu": rotated[1],
        "rotate_inside": inside_rotate[0],
        "rotate_inside_cpu": inside_rotate[1],
        "primary": warm,
        "primary_cpu": warm,
        "primary_inside": inside_warm,
        "primary_inside_cpu": inside_warm,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Cost of the policy checks (issue 11)")
    parser.add_argument("--rings", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="trials of each variant")
    parser.add_argument("--calls", type=int, default=20_000, help="warm primary() calls")
    parser.add_argument("--write", action="store_true", help="replace benchmarks/RESULTS-policy.md")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kl-bench-policy-"))
    results: dict[str, list[dict[str, float]]] = {"on": [], "off": [], "timed": []}
    try:
        for i in range(args.runs):  # alternate, so a load spike hits the variants alike
            order = ("on", "off", "timed") if i % 2 == 0 else ("off", "on", "timed")
            for mode in order:
                with patched(mode):
                    results[mode].append(one_trial(root / "t", args.rings, args.calls))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def med(mode: str, key: str) -> float:
        """The median over the trials; for the warm primary (nanoseconds, where a load spike
        swamps everything) the best, as benchmarks/bench_primitives.py does."""
        values = [r[key] for r in results[mode]]
        return min(values) if key.startswith("primary") else statistics.median(values)

    n = f"{args.rings:,}"
    rows = [
        ("create", f"create {n} rings (`create_ring`, aes-256)", "s", 1.0),
        ("rotate", f"rotate {n} due rings (`rotation.run`)", "s", 1.0),
        ("primary", "warm `ring.primary()`, per call", "µs", 1e6),
    ]
    lines = [
        "# Cost of the policy checks (issue 11)",
        "",
        f"Measured {dt.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, by "
        "`.venv/bin/python benchmarks/bench_policy_checks.py --write` "
        f"({args.runs} trials of each variant, alternating; medians, the best for the warm "
        "primary); 1-minute load average at "
        f"the end: {os.getloadavg()[0]:.2f}.",
        "",
        "The checks: `RingWriter.check_spec` (type and strength), `keylife.limits.check_dates` "
        "(cryptoperiod), `keylife.creation.check_material` and the runner's health check "
        "(`check_ring`). *on*: as shipped; *off*: replaced by no-ops; *inside*: the time spent "
        "inside them, measured by wrapping them (the direct measure, independent of the "
        "machine's load). Wall and this process's CPU time; on a shared machine the on/off "
        "difference is dominated by noise, the share inside the checks is not.",
        "",
        "| benchmark | on (wall / CPU) | off (wall / CPU) | inside the checks (wall / CPU) "
        "| share of the time (wall / CPU) | target |",
        "|---|---|---|---|---|---|",
    ]
    for key, label, unit, scale in rows:
        d = 3 if unit == "µs" else 2
        on_w, on_c = med("on", key) * scale, med("on", key + "_cpu") * scale
        off_w, off_c = med("off", key) * scale, med("off", key + "_cpu") * scale
        in_w = med("timed", key + "_inside") * scale
        in_c = med("timed", key + "_inside_cpu") * scale
        share_w = in_w / (med("timed", key) * scale) * 100 if in_w else 0.0
        share_c = in_c / (med("timed", key + "_cpu") * scale) * 100 if in_c else 0.0
        lines.append(
            f"| {label} | {on_w:.{d}f} / {on_c:.{d}f} {unit} | {off_w:.{d}f} / {off_c:.{d}f} "
            f"{unit} | {in_w:.{d + 1}f} / {in_c:.{d + 1}f} {unit} | {share_w:.1f} % / "
            f"{share_c:.1f} % | ≤ 5 % |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        (HERE / "RESULTS-policy.md").write_text(text)


if __name__ == "__main__":
    main()
