"""`keylife report` on 10,000 rings (target: under 3 s for each format, as the command).

The store holds 10,000 rings of mixed purposes created over the past two years, so the
upcoming-events window (90 days) holds rotations and deactivations for part of them, with one
audit record per ring carrying the ring's digest, so the report's log-against-rings check
compares all 10,000.

Run: `.venv/bin/python benchmarks/bench_report.py [--write]` (prints the table; `--write`
replaces benchmarks/RESULTS-report.md with it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
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
from keylife.auditstate import ring_digest
from keylife.report import collect_report, render_html, render_json, render_markdown
from keylife.store.sqlite import MasterKeyFile, SqliteStore
from tests.rings import fresh_ring

HERE = Path(__file__).resolve().parent
RINGS = 10_000
KINDS = (
    ("aes-256", "data-encryption", 365),
    ("ec-p256", "signing", 730),
    ("hmac-sha256", "authentication", 365),
    ("x25519", "key-agreement", 365),
)


def populate(root: Path, now: dt.datetime) -> None:
    store = SqliteStore.init(root / "k.db", MasterKeyFile(root / "mk"))
    for i in range(RINGS):
        spec, purpose, days = KINDS[i % len(KINDS)]
        created = now - dt.timedelta(days=(i * 7) % (days - 1), hours=i % 24)
        ring, material = fresh_ring(
            f"ring-{i:05d}",
            spec,
            purpose,
            created=created,
            deactivation=created + dt.timedelta(days=days),
            actor="bench",
        )
        store.commit(
            ring,
            expected_revision=0,
            materials={1: material},
            # as a writer records it: identity and the ring's digest (checked by the report)
            audit=[
                AuditEntry(
                    created,
                    "bench",
                    "create",
                    ring.name,
                    1,
                    identity="os:bench uid=1000",
                    ring_digest=ring_digest(ring),
                )
            ],
        )
    store.close()


def library(root: Path) -> dict[str, float]:
    t = time.perf_counter()
    m = keylife.open(str(root / "k.db"), master_key_file=root / "mk")
    with m:
        report = collect_report(m, as_of=dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
    out = {"collect": time.perf_counter() - t, "events": float(len(report.events))}
    for name, render in (("html", render_html), ("md", render_markdown), ("json", render_json)):
        t = time.perf_counter()
        text = render(report)
        out[name] = time.perf_counter() - t
        out[f"{name}_bytes"] = float(len(text))
    return out


def command(root: Path, fmt: str) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of the command."""
    env = {
        **os.environ,
        "KEYLIFE_STORE": str(root / "k.db"),
        "KEYLIFE_MASTER_KEY_FILE": str(root / "mk"),
    }
    exe = Path(sys.executable).with_name("keylife")
    times, cpu = [], []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(
            [
                str(exe),
                "report",
                "--format",
                fmt,
                "--as-of",
                "2031-01-01",
                "--out",
                str(root / f"r.{fmt}"),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times), statistics.median(cpu)


LOAD_START = os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description="keylife report on 10,000 rings")
    parser.add_argument("--write", action="store_true", help="replace benchmarks/RESULTS-report.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        populate(root, dt.datetime.now(dt.UTC))
        lib = library(root)
        cli = {fmt: command(root, fmt) for fmt in ("html", "md", "json")}
    rows = [
        f"| `keylife report --format {fmt}` on {RINGS:,} rings (median of 3) | "
        f"{cli[fmt][0]:.2f} s wall, {cli[fmt][1]:.2f} s CPU ({lib[f'{fmt}_bytes'] / 1e6:.1f} MB)"
        " | < 3 s |"
        for fmt in ("html", "md", "json")
    ]
    text = "\n".join(
        [
            "# Report benchmark (embedded store)",
            "",
            f"Measured {dt.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} "
            f"cores, Python {platform.python_version()}, by "
            "`.venv/bin/python benchmarks/bench_report.py --write`; "
            f"1-minute load average at the start: {LOAD_START:.2f}, at the end: "
            f"{os.getloadavg()[0]:.2f} (the machine is shared: wall times grow with the load, "
            "CPU time is the command's own work).",
            "",
            "| benchmark | result | target |",
            "|---|---|---|",
            *rows,
            f"| library: read rings + audit, verify chain, build model | {lib['collect']:.2f} s "
            f"({int(lib['events'])} upcoming events) | - |",
            f"| library: render html / md / json | {lib['html']:.2f} s / {lib['md']:.2f} s / "
            f"{lib['json']:.2f} s | - |",
            "",
        ]
    )
    print(text)
    if args.write:
        (HERE / "RESULTS-report.md").write_text(text)


if __name__ == "__main__":
    main()
