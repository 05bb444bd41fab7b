"""Helpers shared by the Vault failure tests."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from keylife.keygen import fingerprint
from keylife.lifecycle import Ring, State
from keylife.vault import VaultKeyStore
from tests.rings import fresh_ring


def keylife_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from keylife_cli.main import main; main()", *args]


def seed_due_rings(store: VaultKeyStore, n: int, prefix: str = "svc") -> list[str]:
    """``n`` EC P-256 signing rings whose primary is inside the rotation lead time (due now),
    written concurrently straight through the store (without audit records: seeding only)."""
    now = dt.datetime.now(dt.UTC)

    def one(i: int) -> str:
        name = f"{prefix}-{i:04d}"
        ring, material = fresh_ring(
            name,
            "ec-p256",
            "signing",
            created=now - dt.timedelta(days=30),
            deactivation=now + dt.timedelta(hours=1),
            actor="seed",
        )
        store.commit(
            ring,
            expected_revision=0,
            materials={1: material},
        )
        return name

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def start_rotate(url: str, cwd: Path, *extra: str, deadline: float = 5) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items()}
    env["KEYLIFE_STORE"] = url
    env["KEYLIFE_VAULT_DEADLINE"] = str(deadline)
    return subprocess.Popen(
        keylife_cmd("--json", "rotate", *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )


def check_rings(store: VaultKeyStore, names: list[str]) -> Counter[int]:
    """Every ring sound: versions 1..k without gaps, material for each usable version, at most
    one primary. Returns how many rings have each version count."""
    now = dt.datetime.now(dt.UTC)
    rings = {r.name: r for r in store.load_rings()}
    assert sorted(rings) == sorted(names)
    counts: Counter[int] = Counter()

    def material_ok(ring: Ring) -> None:
        for v in ring.versions:
            if v.has_material:
                material = store.get_material(ring.name, v.number, v.spec)
                assert fingerprint(material) == v.fingerprint, (ring.name, v.number)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(material_ok, rings.values()))
    for ring in rings.values():
        numbers = [v.number for v in ring.versions]
        assert numbers == list(range(1, len(numbers) + 1)), (ring.name, numbers)
        assert ring.next_version == len(numbers) + 1
        primaries = [v for v in ring.versions if v.protects_at(now)]
        assert len(primaries) <= 1, ring.name
        active = [v for v in ring.versions if v.state is State.ACTIVE]
        assert len(active) <= 1, ring.name
        counts[len(numbers)] += 1
    return counts
