"""Ring primitives against raw ``cryptography`` doing the same work, in one run (issue 12).

Run: ``.venv/bin/python benchmarks/bench_primitives.py [--stream-mib 1024] [--no-vault]
[--write]``. Makes its own temporary store (and, when the ``bao`` binary is there, an OpenBao
dev server on loopback), never touches yours, and prints its report; ``--write`` replaces
``benchmarks/RESULTS-primitives.md`` with it (``--output PATH`` writes it elsewhere).

1. ``ring.encrypt`` + ``ring.decrypt`` of 1 KiB against ``AESGCM.encrypt`` + ``decrypt`` with an
   ``os.urandom`` nonce on a held AESGCM object (target <= 1.15x); also against the same raw
   calls plus the framing any caller needs (nonce stored in front of the ciphertext);
2. ``ring.sign`` of 1 KiB against ``ec.ECDSA(SHA-256)`` signing with a held P-256 key (<= 1.05x);
3. ``encrypt_stream`` (and ``decrypt_stream``) throughput against raw AES-GCM over the same
   64 KiB segments from the same source to the same sink (>= 80%), with the peak resident
   memory during a small and a large stream (flat memory);
4. ``ring.primary()`` from a warm cache (``keylife.open(..., refresh=300)``), <= 2 us, on the
   embedded store and on OpenBao.

Best of interleaved rounds, so both sides see the same load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # bench_core, and tests/ for the bao fixture

from bench_core import machine

from benchmarks.benchenv import require_venv

require_venv()

import keylife

KIB = 1024
#: Pairs of blocks (raw, ring) for the encrypt + decrypt ratio, and calls per block.
PAIRS, BLOCK = 301, 500
MIB = 1024 * 1024


def best_of(fns: dict[str, Callable[[], object]], number: int, rounds: int) -> dict[str, float]:
    """Seconds per call of each function, best of ``rounds`` interleaved rounds."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / number)
    return best


def paired_ratios(base: Callable[[], object], other: Callable[[], object]) -> list[float]:
    """``other``'s time over ``base``'s, per pair of adjacent blocks of :data:`BLOCK` calls."""
    ratios = []
    for i in range(PAIRS):
        times = {}
        for name, fn in (
            (("base", base), ("other", other)) if i % 2 else (("other", other), ("base", base))
        ):
            start = time.perf_counter()
            for _ in range(BLOCK):
                fn()
            times[name] = time.perf_counter() - start
        ratios.append(times["other"] / times["base"])
    return ratios


def bench_messages(m: keylife.KeyManager) -> dict[str, float]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data = os.urandom(KIB)
    ring = m.ring("orders")
    raw = AESGCM(os.urandom(32))
    ad = b"keylife/message/v1\x00\x00\x06orders\x01\x00\x00\x00\x01"  # same AD length as ring's
    urandom = os.urandom

    def raw_aead() -> None:
        nonce = urandom(12)
        raw.decrypt(nonce, raw.encrypt(nonce, data, ad), ad)

    head = b"\x01\x00\x00\x00\x01"

    def raw_framed() -> None:
        nonce = urandom(12)
        blob = head + nonce + raw.encrypt(nonce, data, ad)
        raw.decrypt(blob[5:17], blob[17:], ad)

    def ring_aead() -> None:
        ring.decrypt(ring.encrypt(data))

    # On a shared machine a run's best time can be lucky or unlucky, so the ratio is measured
    # in pairs: a short block of raw calls next to a block of ring calls (order alternating),
    # one ratio per pair; the report gives the median and the quartiles of those ratios.
    fns = {"raw": raw_aead, "framed": raw_framed, "ring": ring_aead}
    out = best_of(fns, 2000, 15)
    ratios = paired_ratios(raw_aead, ring_aead)
    framed = paired_ratios(raw_aead, raw_framed)
    out["ratio_median"] = statistics.median(ratios)
    out["ratio_q1"], _, out["ratio_q3"] = statistics.quantiles(ratios, n=4)
    out["framed_median"] = statistics.median(framed)
    out["pairs"] = len(ratios)
    signing = m.ring("signing")
    key = ec.generate_private_key(ec.SECP256R1())
    algorithm = ec.ECDSA(hashes.SHA256())
    signs = best_of(
        {"raw_sign": lambda: key.sign(data, algorithm), "ring_sign": lambda: signing.sign(data)},
        1000,
        31,
    )
    return {**out, **signs}


class Source:
    """``size`` bytes of zeros, served from one preallocated segment; samples RSS."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.chunk = bytes(64 * KIB)
        self.peak = rss()
        self.reads = 0

    def read(self, n: int = -1) -> bytes:
        take = self.left if n < 0 else min(n, self.left)
        self.left -= take
        self.reads += 1
        if self.reads % 64 == 0:
            self.peak = max(self.peak, rss())
        return self.chunk[:take] if take <= len(self.chunk) else bytes(take)


class Sink:
    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_stream(m: keylife.KeyManager, size: int) -> dict[str, float]:
    import io

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ring = m.ring("orders")
    raw = AESGCM(os.urandom(32))
    prefix = os.urandom(7)

    def raw_stream(src: Source, dst: Sink) -> None:
        counter = 0
        chunk = src.read(64 * KIB)
        while True:
            following = src.read(64 * KIB) if len(chunk) == 64 * KIB else b""
            last = not following
            nonce = prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")
            dst.write(raw.encrypt(nonce, chunk, None))
            if last:
                return
            chunk, counter = following, counter + 1

    results: dict[str, float] = {}
    best_raw = best_ring = float("inf")
    peak_small = peak_large = 0
    for _ in range(5):
        src, dst = Source(size), Sink()
        t = time.perf_counter()
        raw_stream(src, dst)
        best_raw = min(best_raw, time.perf_counter() - t)
        src, dst = Source(size), Sink()
        t = time.perf_counter()
        ring.encrypt_stream(src, dst)  # type: ignore[arg-type]
        best_ring = min(best_ring, time.perf_counter() - t)
        peak_large = max(peak_large, src.peak)
        small = Source(16 * MIB)
        ring.encrypt_stream(small, Sink())  # type: ignore[arg-type]
        peak_small = max(peak_small, small.peak)
    results["raw_mib_s"] = size / MIB / best_raw
    results["ring_mib_s"] = size / MIB / best_ring
    results["peak_small_mib"] = peak_small / MIB
    results["peak_large_mib"] = peak_large / MIB
    # decrypt: a 64 MiB stream held in memory (decrypting needs real ciphertext)
    blob = io.BytesIO()
    ring.encrypt_stream(Source(64 * MIB), blob)  # type: ignore[arg-type]
    data = blob.getvalue()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        ring.decrypt_stream(io.BytesIO(data), Sink())  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - t)
    results["decrypt_mib_s"] = 64 / best
    return results


def bench_primary(m: keylife.KeyManager) -> float:
    ring = m.ring("orders")
    ring.primary()
    return best_of({"primary": ring.primary}, 50000, 9)["primary"]


def vault_primary() -> float | None:
    from tests.vault.conftest import bao_binary, start_dev, stop

    try:
        bao_binary()
    except BaseException:  # pytest.skip when the binary is missing
        return None
    with tempfile.TemporaryDirectory(prefix="keylife-bench-bao-") as tmp:
        server = start_dev(Path(tmp))
        try:
            os.environ["VAULT_ADDR"], os.environ["VAULT_TOKEN"] = server.addr, server.token
            url = server.store_url("kl-bench", "tr-bench")
            with keylife.init(url) as m:
                m.create_ring("orders", "aes-256", "data-encryption")
            with keylife.open(url, refresh=300) as m:
                return bench_primary(m)
        finally:
            stop(server.proc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stream-mib", type=int, default=1024)
    parser.add_argument("--no-vault", action="store_true")
    parser.add_argument(
        "--write", action="store_true", help="replace benchmarks/RESULTS-primitives.md"
    )
    parser.add_argument("--output", type=Path, help="write the report to this file")
    args = parser.parse_args()
    if args.write and args.output is None:
        args.output = HERE / "RESULTS-primitives.md"
    started = dt.datetime.now(dt.UTC)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="keylife-bench-") as tmp:
        for key in [k for k in os.environ if k.startswith("KEYLIFE_")]:
            del os.environ[key]
        db, mk = f"{tmp}/k.db", f"{tmp}/mk"
        with keylife.init(db, master_key_file=mk) as m:
            m.create_ring("orders", "aes-256", "data-encryption")
            m.create_ring("signing", "ec-p256", "signing")
        with keylife.open(db, master_key_file=mk, refresh=300) as m:
            msg = bench_messages(m)
            primary = bench_primary(m)
            stream = bench_stream(m, args.stream_mib * MIB)
    vault = None if args.no_vault else vault_primary()
    write(args, started, load_start, msg, primary, stream, vault)


def write(
    args: argparse.Namespace,
    started: dt.datetime,
    load_start: tuple[float, float, float],
    msg: dict[str, float],
    primary: float,
    stream: dict[str, float],
    vault: float | None,
) -> None:
    def verdict(good: bool) -> str:
        return "meets target" if good else "MISSES target"

    us = 1e6
    aead_ratio = msg["ratio_median"]
    framed_ratio = msg["ring"] / msg["framed"]
    best_cell = f"{msg['ring'] / msg['raw']:.2f}x / {framed_ratio:.2f}x"
    aead_cell = f"**{aead_ratio:.2f}x** ({verdict(aead_ratio <= 1.15)})"
    spread = f"{msg['ratio_q1']:.2f}x - {msg['ratio_q3']:.2f}x"
    sign_ratio = msg["ring_sign"] / msg["raw_sign"]
    share = stream["ring_mib_s"] / stream["raw_mib_s"]
    load_end = os.getloadavg()
    busy = (
        " (a shared machine: other jobs were running)"
        if max(load_start[0], load_end[0]) > 1.5
        else ""
    )
    vault_row = (
        f"| OpenBao dev server (loopback) | {vault * us:.2f} us | {verdict(vault * us <= 2)} |"
        if vault is not None
        else "| OpenBao | not measured (no bao binary) | |"
    )
    text = f"""# Ring primitives benchmark results

Run with one command from the repository root (it makes and removes its own temporary store
and OpenBao dev server):

```console
.venv/bin/python benchmarks/bench_primitives.py --stream-mib {args.stream_mib} --write
```

- Date: {started:%Y-%m-%d %H:%M} UTC
- Machine: {machine()}
- Load average at start / end: {", ".join(f"{x:.1f}" for x in load_start)} /
  {", ".join(f"{x:.1f}" for x in load_end)}{busy}
- Manager: `keylife.open(..., refresh=300)`, i.e. the warm cache a service uses; best of
  interleaved rounds, so the raw and the keylife side see the same load; the encrypt + decrypt
  ratio is also taken per pair of adjacent blocks ({PAIRS} pairs of {BLOCK} calls), median and
  quartiles.

## encrypt + decrypt of 1 KiB (AES-256-GCM)

| | per encrypt + decrypt |
|---|---|
| raw `AESGCM.encrypt` + `decrypt`, `os.urandom(12)` nonce, held object | {msg["raw"] * us:.2f} us |
| raw, plus the 5-byte header and nonce in front, sliced off again | {msg["framed"] * us:.2f} us |
| `ring.encrypt` + `ring.decrypt` (message counters included) | {msg["ring"] * us:.2f} us |
| ratio to raw, median of {msg["pairs"]:.0f} paired blocks (target <= 1.15x) | {aead_cell} |
| spread of that ratio: first - third quartile | {spread} |
| the wire format alone: framed raw to raw, median | {msg["framed_median"]:.2f}x |
| ratio of the best times: ring to raw / ring to framed raw | {best_cell} |

Where the difference goes (the hot path profiled): the header, associated data and AESGCM
objects are built once per version and kept, so per message the ring does only what cannot be
skipped. The wire format itself (5-byte header and nonce written in front of the
ciphertext, sliced off again) costs the "framed" row: {msg["framed_median"]:.2f}x raw on its
own. The rest is two Python method calls, two clock reads and window comparisons (may this
version still protect / process now, and how long a cached entry is trusted, which bounds how late a
rotation or compromise made elsewhere is seen), one dict lookup on the blob's header, and the
message counter (one `next()` on an `itertools.count`, some 20 ns). None of that can go without
weakening a check, and the nonce stays one kernel call per message (`getrandom(2)` through
`os.getrandom`, which skips `os.urandom`'s wrapper: some 40 ns less): a user-space pool of
random bytes would make the ring cheaper than the raw baseline, but replays nonces when a
process image is cloned (VM or Firecracker snapshots), which keylife does not risk. So at 1 KiB
the target sits below what this format allows in Python: the framing plus a fixed ~0.3 us of
call overhead, which a 1 KiB AES-GCM operation (about 1 us) does not hide; it shrinks relative
to larger messages. Framing without copies does not help either (2026-12-02, cryptography
50.0.2, best of 15 rounds): `encrypt_into` a preallocated `bytearray` cost 1.49x raw,
`decrypt_into` 1.30x, `memoryview` slices instead of bytes slices 1.22x, against 1.145x for
the plain bytes framing above: at 1 KiB, allocating and wrapping cost more than the copies.

## sign 1 KiB (ECDSA P-256, SHA-256)

| | per signature |
|---|---|
| raw `key.sign(data, ECDSA(SHA256()))`, held key | {msg["raw_sign"] * us:.1f} us |
| `ring.sign(data)` | {msg["ring_sign"] * us:.1f} us |
| ratio (target <= 1.05x) | **{sign_ratio:.3f}x** ({verdict(sign_ratio <= 1.05)}) |

Per call the ring adds a clock read, a dict lookup and the 5-byte header to the ECDSA call;
a difference of a few percent either way is within the noise of a shared machine (the best of
interleaved rounds still moves by about 10% between runs under load): rerun on a quiet one
for the verdict.

## encrypt_stream, {args.stream_mib} MiB (AES-256-GCM, 64 KiB segments)

| | throughput |
|---|---|
| raw AES-GCM, same 64 KiB segments, same source and sink | {stream["raw_mib_s"]:.0f} MiB/s |
| `ring.encrypt_stream` | {stream["ring_mib_s"]:.0f} MiB/s |
| share of raw (target >= 80%) | **{share:.0%}** ({verdict(share >= 0.8)}) |
| `ring.decrypt_stream` (64 MiB) | {stream["decrypt_mib_s"]:.0f} MiB/s |
| peak resident memory during a 16 MiB stream | {stream["peak_small_mib"]:.1f} MiB |
| peak resident memory during a {args.stream_mib} MiB stream | {stream["peak_large_mib"]:.1f} MiB |

## ring.primary() from a warm cache

| store | per call | target 2 us |
|---|---|---|
| embedded SQLite | {primary * us:.2f} us | {verdict(primary * us <= 2)} |
{vault_row}
"""
    if args.output is None:
        print(text)
    else:
        args.output.write_text(text)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
