"""Rotation benchmarks on the embedded store.

1. Rotating 1,000 due EC P-256 rings (`keylife rotate` as a library call and as the command).
2. A nothing-due pass over 10,000 rings (target: under 1 s).

Run: `.venv/bin/python benchmarks/bench_rotate.py [--write]` (prints the table; `--write`
replaces benchmarks/RESULTS-rotate.md with it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for tests.rings


from benchmarks.benchenv import require_venv

require_venv()

import keylife
from keylife.audit import AuditEntry
from keylife.rotation import plan_rotation, run
from keylife.store.sqlite import MasterKeyFile, SqliteStore
from tests.rings import fresh_ring

HERE = Path(__file__).resolve().parent


def populate(store: SqliteStore, count: int, spec_name: str, created: dt.datetime) -> None:
    """Rings written in bulk (one commit each, as create_ring does, minus the policy check)."""
    purpose = "signing" if spec_name.startswith("ec") else "data-encryption"
    for i in range(count):
        ring, material = fresh_ring(
            f"ring-{i:05d}",
            spec_name,
            purpose,
            created=created,
            deactivation=created + dt.timedelta(days=730),
            actor="bench",
        )
        store.commit(
            ring,
            expected_revision=0,
            materials={1: material},
            audit=[AuditEntry(created, "bench", "create", ring.name, 1)],
        )


def open_store(root: Path) -> SqliteStore:
    return SqliteStore.init(root / "k.db", MasterKeyFile(root / "mk"))


def bench_rotate_1000(root: Path) -> dict[str, float]:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=800)
    store = open_store(root / "lib")
    populate(store, 1000, "ec-p256", past)
    template = root / "template"
    store.close()
    shutil.copytree(root / "lib", template)
    store = SqliteStore(root / "lib" / "k.db", MasterKeyFile(root / "lib" / "mk"))
    m = keylife.KeyManager(store, actor="bench")
    t = time.perf_counter()
    report = run(m)
    lib = time.perf_counter() - t
    assert not report.failed and report.count("succeeded") == 1000
    store.close()
    env = {
        **os.environ,
        "KEYLIFE_STORE": str(template / "k.db"),
        "KEYLIFE_MASTER_KEY_FILE": str(template / "mk"),
    }
    exe = Path(sys.executable).with_name("keylife")
    t = time.perf_counter()
    subprocess.run([str(exe), "rotate"], env=env, check=True, stdout=subprocess.DEVNULL)
    cli = time.perf_counter() - t
    return {"library": lib, "cli": cli}


def bench_nothing_due(root: Path, count: int) -> dict[str, float]:
    now = dt.datetime.now(dt.UTC)
    store = open_store(root / f"idle-{count}")
    populate(store, count, "aes-256", now)
    m = keylife.KeyManager(store, actor="bench")
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        report = run(m)
        runs.append(time.perf_counter() - t)
        assert report.nothing_due
    t = time.perf_counter()
    rings = store.load_rings()
    load = time.perf_counter() - t
    t = time.perf_counter()
    plan_rotation(rings, m.policy, now)
    plan = time.perf_counter() - t
    store.close()
    path = root / f"idle-{count}"
    env = {
        **os.environ,
        "KEYLIFE_STORE": str(path / "k.db"),
        "KEYLIFE_MASTER_KEY_FILE": str(path / "mk"),
    }
    exe = Path(sys.executable).with_name("keylife")
    cli = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([str(exe), "rotate"], env=env, check=True, stdout=subprocess.DEVNULL)
        cli.append(time.perf_counter() - t)
    return {
        "library_median": statistics.median(runs),
        "load_rings": load,
        "plan": plan,
        "cli_median": statistics.median(cli),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Rotation benchmarks (embedded store)")
    parser.add_argument("--write", action="store_true", help="replace benchmarks/RESULTS-rotate.md")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kl-bench-rotate-"))
    try:
        rot = bench_rotate_1000(root)
        idle = {n: bench_nothing_due(root, n) for n in (1000, 10000)}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines = [
        "# Rotation benchmarks (embedded store)",
        "",
        f"Measured {dt.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, by "
        "`.venv/bin/python benchmarks/bench_rotate.py --write`; "
        f"1-minute load average at the end: {os.getloadavg()[0]:.2f}.",
        "",
        "| benchmark | result | target |",
        "|---|---|---|",
        f"| rotate 1,000 due EC P-256 rings, library `run()` | {rot['library']:.2f} s "
        f"({1000 / rot['library']:.0f} rings/s) | - |",
        f"| rotate 1,000 due EC P-256 rings, `keylife rotate` | {rot['cli']:.2f} s | - |",
    ]
    for n, r in idle.items():
        lines.append(
            f"| nothing-due pass, {n:,} rings, library (median of 5) | "
            f"{r['library_median']:.3f} s (load {r['load_rings']:.3f} s, plan {r['plan']:.3f} s)"
            f" | {'< 1 s' if n == 10000 else '-'} |"
        )
        lines.append(
            f"| nothing-due pass, {n:,} rings, `keylife rotate` (median of 3) | "
            f"{r['cli_median']:.3f} s | {'< 1 s' if n == 10000 else '-'} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        (HERE / "RESULTS-rotate.md").write_text(text)


if __name__ == "__main__":
    main()
