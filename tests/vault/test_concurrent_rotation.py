"""Concurrent rotation on a real OpenBao (issue 15 item 1).

- four `keylife rotate --concurrency 16` processes over the same due rings rotate each ring
  exactly once, and `keylife audit verify` passes;
- one run on 16 threads makes at most 8 HTTP calls per rotated ring (counted by the fault
  proxy), so the batching cannot silently regress;
- the audit chain stays one line when threads commit at once (no gap, no fork), and a crash
  between ring commits and their grouped audit append loses no record.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import keylife
from keylife.audit import AuditEntry, verify_chain
from keylife.rotation.runner import Runner
from keylife.vault import VaultKeyStore
from keylife.vault.index import shard_of
from tests.rings import fresh_ring
from tests.vault.conftest import DevServer
from tests.vault.helpers import check_rings, keylife_cmd, seed_due_rings, start_rotate
from tests.vault.proxy import FaultProxy

pytestmark = pytest.mark.vault


@pytest.fixture
def proxy(bao_dev: DevServer) -> Iterator[FaultProxy]:
    p = FaultProxy(bao_dev.addr)
    try:
        yield p
    finally:
        p.close()


def _created_v2(store: VaultKeyStore) -> Counter[str]:
    return Counter(
        r.ring or "" for r in store.read_audit() if r.action == "create" and r.version == 2
    )


@pytest.mark.parametrize("wait", [False, True], ids=["exit-4", "wait"])
def test_four_processes_rotate_each_ring_exactly_once(
    vault_store: VaultKeyStore, tmp_path: Path, wait: bool
) -> None:
    names = seed_due_rings(vault_store, 60, prefix="four")
    extra = ("--concurrency", "16", *(("--wait", "120") if wait else ()))
    procs = [start_rotate(vault_store.url, tmp_path, *extra, deadline=30) for _ in range(4)]
    outputs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes in ([0, 0, 0, 0], [0, 4, 4, 4], [0, 0, 4, 4], [0, 0, 0, 4]), [
        err.decode()[-2000:] for _o, err in outputs
    ]
    if wait:
        assert codes == [0, 0, 0, 0]
    reports = [json.loads(out) for out, _err in outputs]
    rotated = Counter(
        ring["ring"]
        for report in reports
        for ring in report.get("rings", [])
        if any(s["kind"] == "rotate" and s["outcome"] == "succeeded" for s in ring["steps"])
    )
    assert sorted(rotated) == sorted(names) and set(rotated.values()) == {1}
    assert check_rings(vault_store, names) == {2: len(names)}
    assert _created_v2(vault_store) == Counter(dict.fromkeys(names, 1))
    verify = subprocess.run(
        keylife_cmd("--store", vault_store.url, "audit", "verify"),
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr.decode()[-2000:]
    assert b"chain intact" in verify.stdout


def _seed_in_shards(store: VaultKeyStore, n: int, shards: set[str]) -> list[str]:
    """``n`` due rings whose names fall into ``shards`` (so the per-run index reads are few)."""
    now = dt.datetime.now(dt.UTC)
    names: list[str] = []
    i = 0
    while len(names) < n:
        name = f"cnt-{i:05d}"
        i += 1
        if shard_of(name) not in shards:
            continue
        ring, material = fresh_ring(
            name,
            "ec-p256",
            "signing",
            created=now - dt.timedelta(days=30),
            deactivation=now + dt.timedelta(hours=1),
            actor="seed",
        )
        store.commit(ring, expected_revision=0, materials={1: material})
        names.append(name)
    return names


def _per_run(method: str, path: str) -> bool:
    """Calls made once per run, whatever the number of rings: listings, index shard reads,
    the lease, token and Transit key lookups, the audit head read of recovery."""
    if method == "LIST" or "/leases/" in path or "lookup-self" in path or "/keys/" in path:
        return True
    return method == "GET" and ("/data/ix/" in path or path.endswith("/data/audit-head"))


def test_at_most_eight_calls_per_rotated_ring(
    vault_store: VaultKeyStore,
    proxy: FaultProxy,
    mounts: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keylife.vault import public

    names = _seed_in_shards(vault_store, 80, {"00", "01", "02", "03"})
    monkeypatch.setattr(public, "LIST_AFTER", 4)  # list early: most of 80 rings go unread
    with keylife.open(VaultKeyStore.from_url(proxy.store_url(*mounts)), actor="c") as m:
        before, started = len(proxy.requests), time.monotonic()
        report = Runner(m, concurrency=16).run()
        took, calls = time.monotonic() - started, proxy.requests[before:]
    assert report.ok and report.count("succeeded") == len(names), report.failed
    # publishing an asymmetric ring's public halves (check-and-set public/<ring>) is its own
    # step after the commit, for verify-only tokens: one write a ring, the document read first
    # only until the store has listed the documents' versions (keylife.vault.public)
    published = [c for c in calls if "/data/public/" in c[1]]
    reads = [c for c in published if c[0] == "GET"]
    assert len(published) - len(reads) == len(names), published
    # the reads: the first 4 publishes, and the commits begun before the listing returned (up
    # to 16 in flight when it went out, and those the threads began while it was answered;
    # 26-27 of 32 allowed with the listing after 16, measured alone, which was too close)
    assert len(reads) <= public.LIST_AFTER + 2 * 16, len(reads)
    per_ring = [c for c in calls if not _per_run(*c) and "/data/public/" not in c[1]]
    fixed = Counter(f"{m} {p.split('?')[0]}" for m, p in calls if _per_run(m, p))
    # the lease is re-read at most twice a second (fencing), the token looked up once
    lease_reads = sum(n for k, n in fixed.items() if k.startswith("GET") and "/leases/" in k)
    assert lease_reads <= 2 * took + 4, (lease_reads, took)
    assert fixed["GET /v1/auth/token/lookup-self"] <= 2, fixed
    assert sum(n for k, n in fixed.items() if "/data/ix/" in k) <= 3 * 4, fixed  # 4 shards
    # 5.85-6.03 measured (no index token per commit, no hw/<ring> read: the marks come
    # verified with the shards; the rest depends on how many Transit calls and audit-head
    # writes the threads share, which varies with timing); one more call a ring fails this
    assert len(per_ring) / len(names) <= 6.5, (
        len(per_ring) / len(names),
        sorted(
            Counter(f"{m} {'/'.join(p.split('?')[0].split('/')[:5])}" for m, p in per_ring).items()
        ),
    )
    # the high-water mark comes with the index shard (recorded with the ring's revision)
    assert not [p for m, p in per_ring if m == "GET" and "/data/hw/" in p]
    assert check_rings(vault_store, names) == {2: len(names)}
    records = vault_store.read_audit()
    assert verify_chain(records, head=vault_store.audit_head()).ok
    assert _created_v2(vault_store) == Counter(dict.fromkeys(names, 1))


def test_index_mark_is_used_only_for_its_own_revision() -> None:
    """The shard's copy of a high-water mark vouches for the revision it was recorded with,
    and only while no write on that revision or later is pending."""
    from keylife.vault import index as ix

    shard = ix.empty()
    assert ix.put_entry(shard, "a", 3, {"x": 1}, "t", (3, 7))
    assert ix.mark_for(shard, "a", 3) == (3, 7)
    assert ix.mark_for(shard, "a", 4) is None  # a newer revision (a rollback is one too)
    assert ix.mark_for(shard, "b", 3) is None
    assert ix.decode(ix.encode(shard)) == shard  # survives the trip through KV
    shard["pending"].setdefault("a", []).append(
        {"tx": "tx", "base": 3}
    )  # a write on revision 3 in flight or cut short
    assert ix.mark_for(shard, "a", 3) is None
    assert not ix.put_entry(shard, "a", 2, {"x": 0}, "t", (1, 1)) or shard["hw"]["a"][2] == 3
    # a reader's repair cannot tell which write left the copy: it drops it with the entry
    assert ix.correct(shard, "a", 3, {"x": "read"}, "t2")
    assert "a" not in shard.get("hw", {}) and ix.mark_for(shard, "a", 3) is None
    assert not ix.correct(shard, "a", 3, {"x": "read"}, "t2")  # the same read: no change


def test_threads_appending_at_once_keep_one_chain(vault_store: VaultKeyStore) -> None:
    """Batches appended by 16 threads at once land in one chain, each exactly once, with
    groups of several batches per head check-and-set."""
    from concurrent.futures import ThreadPoolExecutor

    now = dt.datetime.now(dt.UTC)
    log = vault_store.audit

    def one(i: int) -> None:
        entries = [AuditEntry(now, "t", "probe", f"r{i}", j) for j in range(3)]
        log.append_batch(f"tx{i:04d}", entries)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(120)))
    records = vault_store.read_audit()
    assert verify_chain(records, head=vault_store.audit_head()).ok
    assert len(records) == 360
    assert Counter(r.ring for r in records) == {f"r{i}": 3 for i in range(120)}
    head = vault_store.kv.metadata("audit-head", what="t")
    assert head is not None and head.current_version < 120  # grouped, not one per batch


def test_crash_between_ring_commits_and_their_audit_append_loses_nothing(
    vault_store: VaultKeyStore,
    proxy: FaultProxy,
    mounts: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rings committed by threads whose grouped audit append never lands (the head refuses
    every write, as if the process died first): the next run appends every one of their
    batches, once, in one chain."""
    from tests.vault.proxy import Fault

    names = seed_due_rings(vault_store, 24, prefix="gap")
    # a short deadline, so the refused head stops the run soon; 3 s, not 1, so that planning
    # on a loaded machine (two test workers beside OpenBao) is not cut off first
    monkeypatch.setenv("KEYLIFE_VAULT_DEADLINE", "3")
    proxy.add(Fault("status", path="/data/audit-head", method="POST", status=503))
    with keylife.open(VaultKeyStore.from_url(proxy.store_url(*mounts)), actor="c") as m:
        first = Runner(m, concurrency=8).run()
    assert first.aborted and "Vault unavailable" in first.aborted
    committed = [r.name for r in vault_store.load_rings() if len(r.versions) == 2]
    assert committed  # the ring writes landed; their audit batches did not
    assert not _created_v2(vault_store)
    monkeypatch.setenv("KEYLIFE_VAULT_DEADLINE", "10")
    with keylife.open(VaultKeyStore.from_url(vault_store.url), actor="c") as m:
        second = Runner(m, concurrency=8).run()
    assert second.ok, second.failed
    assert check_rings(vault_store, names) == {2: len(names)}
    assert _created_v2(vault_store) == Counter(dict.fromkeys(names, 1))
    assert verify_chain(vault_store.read_audit(), head=vault_store.audit_head()).ok


def test_a_publish_without_a_read_falls_back_to_reading_when_it_is_not_safe(
    vault_store: VaultKeyStore,
    proxy: FaultProxy,
    mounts: tuple[str, str],
    bao_dev: DevServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the listing, a commit publishes with one check-and-set and no read; when another
    writer moved the document meanwhile, or a public half is unknown to this process, it reads
    the document first, and what is published is always the ring as committed."""
    from keylife import keygen
    from keylife.keygen import fingerprint, generate
    from keylife.lifecycle import new_version
    from keylife.vault import public

    monkeypatch.setattr(public, "LIST_AFTER", 2)
    now, day = dt.datetime.now(dt.UTC), dt.timedelta(days=1)
    kv = mounts[0]

    def publish_calls(store: VaultKeyStore, name: str, step: object) -> list[str]:
        before = len(proxy.requests)
        step()  # type: ignore[operator]
        return [m for m, p in proxy.requests[before:] if p.endswith(f"/data/public/{name}")]

    def create(store: VaultKeyStore, name: str) -> None:
        ring, material = fresh_ring(
            name, "ec-p256", "signing", created=now, deactivation=now + day, actor="t"
        )
        store.commit(ring, expected_revision=0, materials={1: material})

    def rotate(store: VaultKeyStore, name: str) -> None:
        ring = store.load_ring(name)
        assert ring is not None
        material = generate(ring.spec)
        nxt, v = new_version(
            ring,
            fingerprint=fingerprint(material),
            now=now,
            actor="t",
            activation=now,
            deactivation=now + day,
        )
        store.commit(nxt, expected_revision=ring.revision, materials={v.number: material})

    with VaultKeyStore.from_url(proxy.store_url(*mounts)) as store:
        assert publish_calls(store, "a", lambda: create(store, "a")) == ["GET", "POST"]
        assert publish_calls(store, "b", lambda: create(store, "b")) == ["GET", "POST"]
        assert publish_calls(store, "c", lambda: create(store, "c")) == ["POST"]  # listed
        # another writer moves c's document on: the check-and-set fails, then a read
        doc = bao_dev.api("GET", f"{kv}/data/public/c")[1]["data"]["data"]
        assert (
            bao_dev.api("POST", f"{kv}/data/public/c", {"options": {"cas": 1}, "data": doc})[0]
            == 200
        )
        calls = publish_calls(store, "c", lambda: rotate(store, "c"))
        assert calls[0] == calls[-1] == "POST" and "GET" in calls, calls  # lost, read, written
        assert publish_calls(store, "c", lambda: rotate(store, "c")) == ["POST"]  # known again
        # a public half this process never saw: read the document for it
        monkeypatch.setattr(keygen, "_SEEN", {})
        assert publish_calls(store, "a", lambda: rotate(store, "a")) == ["GET", "POST"]
        for name in ("a", "c"):
            ring, got = store.load_ring(name), store.load_public(name)
            assert ring is not None and got is not None
            assert got.revision == ring.revision
            assert sorted(got.keys) == [v.number for v in ring.versions]


def test_the_published_versions_are_listed_once_and_only_for_a_run_of_many_commits() -> None:
    """A listing of every published document costs about as much as reading a sixteenth of
    them: a store that commits a few rings of many never lists; one that commits many lists
    once."""
    from keylife.vault.public import PublishedVersions

    class Listing:
        calls = 0

        def list_versions(self, path: str, **_kw: object) -> dict[str, tuple[int, str]]:
            self.calls += 1
            assert path == "public/"
            return {"a": (3, "t")}

    kv = Listing()
    known = PublishedVersions()
    for _ in range(61):  # of 1,000 rings: a listing after 62
        known.note_publish(kv, 1000)  # type: ignore[arg-type]
    assert kv.calls == 0 and known.version("a", time.monotonic()) is None
    for _ in range(100):
        known.note_publish(kv, 1000)  # type: ignore[arg-type]
    assert kv.calls == 1
    after = time.monotonic()
    assert known.version("a", after) == 3 and known.version("new", after) == 0
