"""A writer killed with SIGKILL mid-batch leaves a store that opens, verifies and holds every
version the writer saw committed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import keylife
from keylife.keygen import fingerprint
from keylife.writer import RingWriter

WRITER = r"""
import random, sys
import keylife

db, key_file, prefix = sys.argv[1:4]
rng = random.Random(prefix)
m = keylife.open(db, master_key_file=key_file, actor="writer")
names = []
i = 0
while True:
    i += 1
    if names and rng.random() < 0.5:
        name = rng.choice(names)
        v = m.rotate(name)
        print("rotated", name, v.number, v.fingerprint, flush=True)
    else:
        name = f"{prefix}-{i}"
        kind = rng.choice([("aes-256", "data-encryption"), ("ec-p256", "signing"),
                           ("hmac-sha256", "authentication")])
        v = m.create_ring(name, kind[0], kind[1])
        names.append(name)
        print("created", name, v.number, v.fingerprint, flush=True)
"""


def _lines(path: Path) -> list[str]:
    text = path.read_text()
    # The last line may be torn by the kill: only complete lines count as reported.
    return text.split("\n")[:-1]


def _check_store(env, reported: dict[tuple[str, int], str]) -> None:
    with env.open() as m:
        report = m.verify_audit()
        assert report.ok, report.problem
        now = m.now()
        rings = {r.name: r for r in m.rings()}
        for (name, number), fp in reported.items():
            ring = rings[name]
            version = ring.get(number)
            assert version is not None, f"{name} v{number} was reported committed but is lost"
            assert version.fingerprint == fp
            material = RingWriter.material(m, version)
            assert fingerprint(material) == fp
        for ring in rings.values():
            assert sum(v.protects_at(now) for v in ring.versions) <= 1, ring.name
            numbers = [v.number for v in ring.versions]
            assert numbers == list(range(1, len(numbers) + 1))
            assert ring.next_version == len(numbers) + 1
            assert not keylife.lifecycle.check_invariants(ring)
            # Every version that should hold material does, and it opens.
            for v in ring.versions:
                if v.has_material:
                    assert fingerprint(RingWriter.material(m, v)) == v.fingerprint
        # Audit records for committed creations exist.
        created = {(r.ring, r.version) for r in m.audit_records() if r.action == "create"}
        assert set(reported) <= created
    verify = env.sh("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_sigkill_mid_batch_loses_nothing_committed(store, tmp_path: Path) -> None:
    reported: dict[tuple[str, int], str] = {}
    # Kill at different moments: after a few commits, after many, and with varying delays.
    for round_, (after_lines, delay) in enumerate(((3, 0.0), (15, 0.013), (40, 0.031), (8, 0.05))):
        out = tmp_path / f"writer-{round_}.out"
        with out.open("w") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-c", WRITER, str(store.db), str(store.key_file), f"w{round_}"],
                env=store.environ,
                stdout=fh,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + 60
            while len(_lines(out)) < after_lines:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "writer made no progress"
                time.sleep(0.005)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            assert proc.stderr is not None
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        for line in _lines(out):
            _verb, name, number, fp = line.split()
            reported[(name, int(number))] = fp
        _check_store(store, reported)
    assert len(reported) >= 60
