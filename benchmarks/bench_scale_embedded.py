"""100,000 rings in one embedded store (issue 15 item 2).

Measures, on a store of 100,000 AES-256 rings (one active version each, created over the past
300 days, so nothing is due for at least 50 days):

1. the first `keylife rotate` (plans every ring, checks every key, records the quiet ones);
2. the nothing-due pass after it (target: under 2 s), as the command and as a library call;
3. `keylife key list`: time to its first ring line (target: within 0.3 s) and to the end,
   with `--json`, with `--limit 10` and `--prefix`;
4. the peak RSS of each command (its own, by wait4).

Building the store: `keylife key create` 100,000 times would take minutes (one transaction, one
audit record each), so the rings are real ring documents (`tests.rings.fresh_ring`: generated
material, its fingerprint, version 1 through the lifecycle), their material sealed under the
store's master key exactly as a commit seals it, written with batched INSERTs in one
transaction. They have no audit records (`audit verify` is not measured here).

Run: `.venv/bin/python benchmarks/bench_scale_embedded.py [--write] [--rings N]` (prints the
table; `--write` replaces benchmarks/RESULTS-scale.md with it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
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
from keylife.lifecycle import ring_to_dict
from keylife.rotation import run
from keylife.sealing import Sealer, associated_data
from keylife.store.sqlite import MasterKeyFile, SqliteStore
from tests.rings import fresh_ring

HERE = Path(__file__).resolve().parent
EXE = str(Path(sys.executable).with_name("keylife"))
BATCH = 5000


def build(root: Path, count: int) -> dict[str, str]:
    """The store (see the module docstring); returns the environment that opens it."""
    db, key_file = root / "k.db", MasterKeyFile(root / "mk")
    store = SqliteStore.init(db, key_file)
    master = Sealer(key_file.load(), store.store_id)  # bound to the store's id, as a commit
    store.close()
    now = dt.datetime.now(dt.UTC)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    rings, blobs = [], []
    for i in range(count):
        created = now - dt.timedelta(days=300) * (i % 997) / 997
        name = f"ring-{i:06d}"
        ring, material = fresh_ring(
            name, created=created, deactivation=created + dt.timedelta(days=365), actor="bench"
        )
        rings.append((name, 1, json.dumps(ring_to_dict(ring), separators=(",", ":"))))
        blobs.append((name, 1, master.seal(material.reveal(), associated_data(name, 1))))
        if len(rings) >= BATCH:
            conn.executemany("INSERT INTO rings VALUES (?, ?, ?)", rings)
            conn.executemany("INSERT INTO material VALUES (?, ?, ?)", blobs)
            rings, blobs = [], []
    conn.executemany("INSERT INTO rings VALUES (?, ?, ?)", rings)
    conn.executemany("INSERT INTO material VALUES (?, ?, ?)", blobs)
    conn.execute("COMMIT")
    conn.close()
    return {**os.environ, "KEYLIFE_STORE": str(db), "KEYLIFE_MASTER_KEY_FILE": str(key_file.path)}


def command(env: dict[str, str], *args: str) -> dict[str, float]:
    """Run `keylife ARGS`: seconds to the first line after the header, to the end, and its
    own peak RSS in MiB."""
    start = time.perf_counter()
    proc = subprocess.Popen([EXE, *args], env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    first = None
    for line in proc.stdout:
        if first is None and not line.startswith((b"RING ", b"{", b'  "rings"')):
            first = time.perf_counter() - start
    _, status, usage = os.wait4(proc.pid, 0)
    total = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"keylife {' '.join(args)} exited {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"first": first or total, "total": total, "rss": usage.ru_maxrss / 1024, "cpu": cpu}


def library_pass(env: dict[str, str]) -> float:
    with keylife.open(env["KEYLIFE_STORE"], master_key_file=env["KEYLIFE_MASTER_KEY_FILE"]) as m:
        start = time.perf_counter()
        report = run(m)
        took = time.perf_counter() - start
    assert report.nothing_due and not report.failed, report.failed[:3]
    return took


def library_first_ring(env: dict[str, str]) -> float:
    """Seconds from opening the store to the first ring read (no interpreter start-up)."""
    from keylife.store.schedule import iter_rings

    start = time.perf_counter()
    with keylife.open(env["KEYLIFE_STORE"], master_key_file=env["KEYLIFE_MASTER_KEY_FILE"]) as m:
        next(iter(iter_rings(m.store)))
        return time.perf_counter() - start


def measure(count: int) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="kl-bench-scale-"))
    try:
        start = time.perf_counter()
        env = build(root, count)
        built = time.perf_counter() - start
        size = (root / "k.db").stat().st_size / 2**20
        out: dict[str, object] = {"build": built, "size": size}
        out["first_rotate"] = command(env, "rotate")
        out["idle_cli"] = [command(env, "rotate") for _ in range(3)]
        out["idle_lib"] = [library_pass(env) for _ in range(3)]
        out["list"] = [command(env, "key", "list") for _ in range(3)]
        out["first_lib"] = [library_first_ring(env) for _ in range(3)]
        out["list_json"] = command(env, "--json", "key", "list")
        out["list_limit"] = command(env, "key", "list", "--limit", "10")
        out["list_prefix"] = command(env, "key", "list", "--prefix", f"ring-{count // 2:06d}")
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def table(count: int, r: dict[str, object], load: tuple[float, float]) -> str:
    def med(key: str, field: str) -> float:
        runs = r[key]
        assert isinstance(runs, list)
        return statistics.median(x[field] if isinstance(x, dict) else x for x in runs)

    def one(key: str) -> dict[str, float]:
        value = r[key]
        assert isinstance(value, dict)
        return value

    idle_rss = max(x["rss"] for x in r["idle_cli"])  # type: ignore[attr-defined]
    list_rss = max(x["rss"] for x in r["list"])  # type: ignore[attr-defined]
    first = one("first_rotate")
    rows = [
        ("build the store (batched inserts, not measured against a target)",
         f"{r['build']:.1f} s ({r['size']:.0f} MiB)", "-"),
        ("first `keylife rotate` (plans and checks every ring, records them)",
         f"{first['total']:.2f} s (CPU {first['cpu']:.2f} s), peak RSS {first['rss']:.0f} MiB",
         "-"),
        ("nothing-due `keylife rotate` (median of 3)",
         f"{med('idle_cli', 'total'):.3f} s (CPU {med('idle_cli', 'cpu'):.3f} s), "
         f"peak RSS {idle_rss:.0f} MiB", "< 2 s"),
        ("nothing-due pass, library `run()` (median of 3)", f"{med('idle_lib', ''):.3f} s",
         "< 2 s"),
        ("`keylife key list`: first ring line (median of 3)", f"{med('list', 'first'):.3f} s",
         "< 0.3 s"),
        ("first ring read, library: open the store, first of `iter_rings` (median of 3)",
         f"{med('first_lib', ''):.4f} s", "-"),
        (f"`keylife key list`: all {count:,} rings (median of 3)",
         f"{med('list', 'total'):.2f} s (CPU {med('list', 'cpu'):.2f} s), "
         f"peak RSS {list_rss:.0f} MiB", "-"),
        ("`keylife --json key list`: first ring / all",
         f"{one('list_json')['first']:.3f} s / {one('list_json')['total']:.2f} s, "
         f"peak RSS {one('list_json')['rss']:.0f} MiB", "-"),
        ("`keylife key list --limit 10`", f"{one('list_limit')['total']:.3f} s", "-"),
        ("`keylife key list --prefix ring-0500…` (one ring)",
         f"{one('list_prefix')['total']:.3f} s", "-"),
    ]  # fmt: skip
    lines = [
        "# 100,000 rings in one embedded store",
        "",
        f"Measured {dt.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores "
        f"(shared), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, by "
        "`.venv/bin/python benchmarks/bench_scale_embedded.py --write`, with "
        f"{count:,} AES-256 rings; 1-minute load average {load[0]:.2f} at the start and "
        f"{load[1]:.2f} at the end. Times are wall-clock and include starting the command "
        "(Python, imports, opening the store); first-line times are to the first ring line, "
        "after the header.",
        "",
        "| benchmark | result | target |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
        "The nothing-due pass loads no ring: each ring's quiet record (revision, planner "
        "digest, until its next event; keylife.rotation.schedule) tells it nothing is due. "
        "The first run plans and checks every ring, a page of 512 at a time, so its memory does "
        "not grow with the store. A ring is planned again, and its keys checked, when its next "
        "event or its re-check time comes (12 to 24 hours after its last check, spread by "
        "name), so a run every hour re-plans roughly one ring in twelve to twenty-four.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="100,000 rings in one embedded store")
    parser.add_argument("--write", action="store_true", help="replace benchmarks/RESULTS-scale.md")
    parser.add_argument("--rings", type=int, default=100_000, help="rings in the store")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    result = measure(args.rings)
    text = table(args.rings, result, (load_start, os.getloadavg()[0]))
    print(text)
    if args.write:
        (HERE / "RESULTS-scale.md").write_text(text)


if __name__ == "__main__":
    main()
