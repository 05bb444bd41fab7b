"""Concurrent rotation on OpenBao (issue 15 item 1; results: benchmarks/RESULTS-concurrency.md).

1. ``--rings N`` (default 10,000) due EC P-256 rings on a dev OpenBao (in memory, loopback):
   ``keylife.rotation.run(manager, concurrency=C)`` (what ``keylife rotate --concurrency C``
   runs) against a sequential hvac script making the same calls keylife makes per ring (no
   keylife code, one hvac client, bodies of the same shape, the key generated the same way);
   both in one run of this script, on fresh mounts of one server. Target: keylife <= 0.15x the
   script's wall time (stretch 0.1x). ``--also-concurrency 32 64`` measures further levels in
   the same run, each on its own freshly seeded mount.
2. ``--raft-rings M`` (default 2,000) due rings on a 3-node Raft cluster (the test fixtures'
   cluster), ``keylife rotate --concurrency C`` as a process, its leader SIGKILLed once a
   quarter of the rings are rotated: every ring rotated exactly once, the audit chain verifies.

    .venv/bin/python benchmarks/bench_concurrency.py                       # both, full size
    .venv/bin/python benchmarks/bench_concurrency.py --rings 2000 --raft-rings 0
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for tests.*

import keylife
from keylife.audit import verify_chain
from keylife.keygen import fingerprint, generate, load_private_key
from keylife.material import KeyMaterial
from keylife.published import spki as public_spki
from keylife.rotation import run
from keylife.specs import parse_spec
from keylife.vault import VaultKeyStore, open_store
from keylife.vault.index import shard_of
from keylife.vault.storeid import bound_context
from tests.rings import fresh_ring

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_vault, next to this file
from bench_vault import TOKEN, Counting, setup_mounts, start_bao


def seed(store: VaultKeyStore, n: int, now: dt.datetime, threads: int = 16) -> None:
    def one(i: int) -> None:
        ring, material = fresh_ring(
            f"svc-{i:05d}",
            "ec-p256",
            "signing",
            created=now - dt.timedelta(days=30),
            deactivation=now + dt.timedelta(hours=1),
            actor="seed",
        )
        store.commit(ring, expected_revision=0, materials={1: material})

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(n)))


def keylife_rotate(url: str, now: dt.datetime, concurrency: int) -> dict[str, Any]:
    store = VaultKeyStore.from_url(url)
    counting = Counting(store.client)
    manager = keylife.KeyManager(store, actor="bench", clock=keylife.FixedClock(now))
    cpu, t0 = time.process_time(), time.perf_counter()
    report = run(manager, concurrency=concurrency)
    took, cpu = time.perf_counter() - t0, time.process_time() - cpu
    manager.close()
    assert not report.failed and not report.aborted, (report.failed[:3], report.aborted)
    rotated = report.count("succeeded")
    with keylife.open(VaultKeyStore.from_url(url)) as m:
        assert m.verify_audit().ok
        creates = Counter(r.ring for r in m.audit_records() if r.action == "create")
        assert set(creates.values()) == {1} and len(creates) == rotated  # each ring once
    return {
        "wall_s": round(took, 2),
        "client_cpu_s": round(cpu, 2),
        "rotated": rotated,
        "calls": counting.total(),
        "calls_per_ring": round(counting.total() / rotated, 2),
        "calls_by_kind": dict(counting.calls.most_common()),
    }


def hvac_script(addr: str, mount: str, transit: str) -> dict[str, Any]:
    """The calls keylife makes, one after the other with plain hvac: plan (listing + every
    shard), take the lease, per ring open the primary (material GET + Transit decrypt), plan
    again, then per ring: Transit encrypt, material write (cas=0), ring write (cas),
    high-water mark write (cas), the public halves (cas at the version one listing gave), audit
    head (cas) and audit batch (cas=0);
    at the end one entry write per shard and the lease release. A sequential script has
    nothing to batch with, so its Transit calls and head writes are one per ring."""
    import hvac

    client = hvac.Client(url=addr, token=TOKEN, timeout=30)
    kv = client.secrets.kv.v2
    spec = parse_spec("ec-p256")
    calls = Counter[str]()

    def read(path: str) -> dict[str, Any]:
        calls["GET"] += 1
        got = kv.read_secret_version(path, mount_point=mount, raise_on_deleted_version=True)
        return dict(got["data"])

    def write(path: str, data: dict[str, Any], cas: int) -> int:
        calls["POST"] += 1
        got = kv.create_or_update_secret(path, data, cas=cas, mount_point=mount)
        return int(got["data"]["version"])

    t0 = time.perf_counter()

    def plan() -> tuple[list[str], dict[str, tuple[dict[str, Any], int]]]:
        calls["LIST"] += 1
        listing = client.adapter.request("LIST", f"/v1/{mount}/detailed-metadata/rings/")
        names = sorted(listing["data"]["key_info"])
        shards = {}
        for sid in sorted({shard_of(n) for n in names}):
            got = read(f"ix/{sid}")
            text = zlib.decompress(base64.b64decode(got["data"]["z"]))
            shards[sid] = (json.loads(text), int(got["metadata"]["version"]))
        return names, shards

    names, shards = plan()
    write("leases/keylife-rotate", {"holder": "script", "expires": "x"}, 0)
    docs = {}
    spki_v1: dict[str, bytes] = {}
    for name in names:  # the health check: every primary opens
        got = read(f"rings/{name}")
        docs[name] = (got["data"], int(got["metadata"]["version"]))
        ct = read(f"m/{name}/1/{got['data']['mat']['1']}")["data"]["ct"]
        calls["transit"] += 1
        plain = client.secrets.transit.decrypt_data(
            "keylife",
            ct,
            context=base64.b64encode(bound_context(name, 1, got["data"].get("sid"))).decode(),
            mount_point=transit,
        )["data"]["plaintext"]
        opened = KeyMaterial(base64.b64decode(plain), spec)  # checked against its fingerprint
        spki_v1[name] = public_spki(load_private_key(opened).public_key())
    names, shards = plan()
    # the published documents' versions, listed once (keylife.vault.public), so no
    # document is read before its check-and-set
    calls["LIST"] += 1
    listed = client.adapter.request("LIST", f"/v1/{mount}/detailed-metadata/public/")
    public_version = {k: int(v["current_version"]) for k, v in listed["data"]["key_info"].items()}
    head_version, count, last_fence = 0, 0, time.monotonic()
    for name in names:
        data, version = docs[name]
        material = generate(spec)
        fingerprint(material)
        calls["transit"] += 1
        new_ct = client.secrets.transit.encrypt_data(
            "keylife",
            base64.b64encode(material.reveal()).decode(),
            context=base64.b64encode(bound_context(name, 2, data.get("sid"))).decode(),
            mount_point=transit,
        )["data"]["ciphertext"]
        blob = uuid.uuid4().hex[:16]
        write(f"m/{name}/2/{blob}", {"ct": new_ct}, 0)
        if time.monotonic() - last_fence > 0.5:
            read("leases/keylife-rotate")
            last_fence = time.monotonic()
        doc = {**data, "mat": {**data["mat"], "2": blob}}
        doc["tx"] = {"id": uuid.uuid4().hex, "entries": [{"a": "x" * 150}] * 3}
        write(f"rings/{name}", doc, version)
        write(f"hw/{name}", {"v": 1, "issued": 2}, 1)
        # the public halves, published for verifiers (keylife.vault.public): CAS at the
        # listed version, the halves from the opened v1 and the new v2
        spki = base64.b64encode(public_spki(load_private_key(material).public_key())).decode()
        keys = [
            {"version": 1, "spki": base64.b64encode(spki_v1[name]).decode(), "state": "active"},
            {"version": 2, "spki": spki, "state": "active"},
        ]
        head = {"v": 1, "ring": name, "spec": "ec-p256", "purpose": "signing"}
        write(f"public/{name}", {**head, "rev": version + 1, "keys": keys}, public_version[name])
        records = [{"r": "x" * 330}] * 3
        count += 3
        head = {"count": count, "hash": "h" * 64, "last": {"records": records}}
        head_version = write("audit-head", head, head_version)
        write(f"audit/{uuid.uuid4().hex}", {"records": records}, 0)
        docs[name] = (doc, version + 1)
    for sid, (shard, sv) in sorted(shards.items()):  # the entries, one write per shard
        for name in shard["rings"]:
            shard["rings"][name] = {"rev": docs[name][1], "doc": docs[name][0]}
        z = base64.b64encode(zlib.compress(json.dumps(shard).encode(), 6)).decode()
        write(f"ix/{sid}", {"v": 1, "z": z}, sv)
    write("leases/keylife-rotate", {"holder": "", "expires": ""}, 1)
    took = time.perf_counter() - t0
    client.adapter.close()
    total = sum(calls.values())
    return {
        "wall_s": round(took, 2),
        "calls": total,
        "calls_per_ring": round(total / len(names), 2),
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far: OpenBao's side of a run."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dev_part(n: int, concurrency: int, also: list[int]) -> dict[str, Any]:
    """``also``: further concurrency levels, each on its own freshly seeded mount, measured
    after the first and before the script (``row["also"]``)."""
    row: dict[str, Any] = {"rings": n, "concurrency": concurrency}
    with tempfile.TemporaryDirectory() as tmp:
        proc, addr = start_bao(Path(tmp))
        try:
            now = dt.datetime.now(dt.UTC)
            url_k, _m, _t = setup_mounts(addr, "conc")
            url_s, mount_s, transit_s = setup_mounts(addr, "script")
            url_also = [setup_mounts(addr, f"conc{c}")[0] for c in also]
            t0 = time.perf_counter()
            for url in (url_k, url_s, *url_also):
                with VaultKeyStore.from_url(url) as store:
                    seed(store, n, now)
            row["seed_all_s"] = round(time.perf_counter() - t0, 1)
            print(f"seeded {2 + len(also)} x {n} rings in {row['seed_all_s']} s", flush=True)
            row["load_before"] = [round(x, 2) for x in os.getloadavg()]

            def measured(url: str, c: int) -> dict[str, Any]:
                server = cpu_seconds(proc.pid)
                got = keylife_rotate(url, now, c)
                got["server_cpu_s"] = round(cpu_seconds(proc.pid) - server, 2)
                print(f"keylife --concurrency {c}: {got['wall_s']} s", flush=True)
                return got

            row["keylife"] = measured(url_k, concurrency)
            row["also"] = {str(c): measured(url, c) for c, url in zip(also, url_also, strict=True)}
            row["load_between"] = [round(x, 2) for x in os.getloadavg()]
            server, client = cpu_seconds(proc.pid), time.process_time()
            row["script"] = hvac_script(addr, mount_s, transit_s)
            row["script"]["client_cpu_s"] = round(time.process_time() - client, 2)
            row["script"]["server_cpu_s"] = round(cpu_seconds(proc.pid) - server, 2)
            print(f"hvac script: {row['script']['wall_s']} s", flush=True)
            row["load_after"] = [round(x, 2) for x in os.getloadavg()]
            row["ratio"] = round(row["keylife"]["wall_s"] / row["script"]["wall_s"], 3)
            # the least wall time keylife could take here: OpenBao's own CPU for its calls,
            # spread over every core of this machine (the client shares them), as a ratio
            cores = os.cpu_count() or 1
            floor = row["keylife"]["server_cpu_s"] / cores / row["script"]["wall_s"]
            row["server_floor_ratio"] = round(floor, 3)
            print(f"ratio {row['ratio']}, OpenBao's CPU alone on {cores} cores: {floor:.3f}")
            for got in row["also"].values():
                got["ratio"] = round(got["wall_s"] / row["script"]["wall_s"], 3)
        finally:
            proc.terminate()
            proc.wait(30)
    return row


def raft_part(n: int, concurrency: int) -> dict[str, Any]:
    from tests.vault.conftest import RaftCluster
    from tests.vault.helpers import check_rings, start_rotate
    from tests.vault.test_outage import audit_count

    row: dict[str, Any] = {"rings": n, "concurrency": concurrency}
    with tempfile.TemporaryDirectory() as tmp:
        cluster = RaftCluster(Path(tmp) / "raft3", 3)
        try:
            cluster.form()
            os.environ["VAULT_TOKEN"] = cluster.token
            hosts = ",".join(node.addr.split("://")[1] for node in cluster.nodes)
            url = f"vault://{hosts}/keylife"
            t0 = time.perf_counter()
            with open_store(url, create=True) as store:
                seed(store, n, dt.datetime.now(dt.UTC))
            row["seed_s"] = round(time.perf_counter() - t0, 1)
            names = [f"svc-{i:05d}" for i in range(n)]
            leader = cluster.leader()
            survivors = [node for node in cluster.nodes if node is not leader]
            row["load_before"] = [round(x, 2) for x in os.getloadavg()]
            started = time.perf_counter()
            proc = start_rotate(url, Path(tmp), "--concurrency", str(concurrency), deadline=30)
            while audit_count(leader.addr, cluster.token) < 3 * n // 4:
                assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
                time.sleep(0.05)
            row["killed_after_s"] = round(time.perf_counter() - started, 2)
            cluster.kill(leader)
            killed = time.perf_counter()
            new_leader = cluster.wait_active(survivors)
            row["failover_s"] = round(time.perf_counter() - killed, 2)
            out, _err = proc.communicate(timeout=1800)
            row["wall_s"] = round(time.perf_counter() - started, 2)
            row["exit_code"] = proc.returncode
            report = json.loads(out)
            row["failed"] = report["failed"]
            row["load_after"] = [round(x, 2) for x in os.getloadavg()]
            with VaultKeyStore.from_url(f"vault://{new_leader.addr.split('://')[1]}/keylife") as s:
                counts = check_rings(s, names)
                records = s.read_audit()
                row["audit_verifies"] = verify_chain(records, head=s.audit_head()).ok
            creates = Counter(r.ring for r in records if r.action == "create" and r.version == 2)
            row["versions_per_ring"] = {str(k): v for k, v in counts.items()}
            row["rotated_exactly_once"] = creates == Counter(dict.fromkeys(names, 1))
            print(json.dumps(row), flush=True)
        finally:
            cluster.stop_all()
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rings", type=int, default=10_000)
    ap.add_argument("--raft-rings", type=int, default=2_000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument(
        "--also-concurrency",
        type=int,
        nargs="*",
        default=[],
        help="further levels for the dev part, each on its own mount",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    os.environ["VAULT_TOKEN"] = TOKEN
    out: dict[str, Any] = {
        "host": f"{platform.node()} {os.cpu_count()} CPU, Python {platform.python_version()}",
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if args.rings:
        out["dev"] = dev_part(args.rings, args.concurrency, args.also_concurrency)
    if args.raft_rings:
        out["raft"] = raft_part(args.raft_rings, args.concurrency)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
