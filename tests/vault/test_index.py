"""The ring index (index shards in KV v2): load_rings() reads shards, and a stale shard never
hides a committed change — a crash between the ring write and the shard write included."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from keylife.lifecycle import Ring
from keylife.policy import default_policy
from keylife.rotation import plan_rotation
from keylife.vault import VaultKeyStore
from keylife.vault import index as ix
from tests.rings import fresh_ring
from tests.vault.conftest import DevServer

pytestmark = pytest.mark.vault

NOW = dt.datetime.now(dt.UTC)


class Crash(BaseException):
    """Stands for the process dying at this point."""


def _ring(name: str, deactivation: dt.timedelta) -> tuple[Ring, Any]:
    return fresh_ring(
        name,
        "ec-p256",
        "signing",
        created=NOW - dt.timedelta(days=30),
        deactivation=NOW + deactivation,
    )


def _count_calls(store: VaultKeyStore) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    orig = store.client.request

    def request(method: str, path: str, **kw: Any) -> Any:
        calls.append((method, path))
        return orig(method, path, **kw)

    store.client.request = request  # type: ignore[method-assign]
    return calls


def _shard(env: DevServer, mount: str, name: str) -> tuple[dict[str, Any], int]:
    status, body = env.api("GET", f"{mount}/data/ix/{ix.shard_of(name)}")
    assert status == 200, body
    return ix.decode(body["data"]["data"]), body["data"]["metadata"]["version"]


def test_load_rings_reads_shards_not_rings(vault_store: VaultKeyStore) -> None:
    for i in range(40):
        ring, material = _ring(f"r-{i:02d}", dt.timedelta(days=300))
        vault_store.commit(ring, expected_revision=0, materials={1: material})
    with VaultKeyStore.from_url(vault_store.url) as fresh:
        calls = _count_calls(fresh)
        rings = fresh.load_rings()
        paths = [p for _m, p in calls]
        assert not [p for p in paths if "/data/rings/" in p]
        shard_reads = [p for p in paths if "/data/ix/" in p]
        assert len(shard_reads) == len({ix.shard_of(r.name) for r in rings}) <= 40
        assert len(calls) <= len(shard_reads) + 2  # LIST rings (+ token lookup)
        for ring in rings:  # the same as reading each ring document
            assert fresh.load_ring(ring.name) == ring
    assert [r.name for r in rings] == [f"r-{i:02d}" for i in range(40)]


def test_crash_between_ring_write_and_shard_write(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    mount = mounts[0]
    policy = default_policy()
    ring, material = _ring("web", dt.timedelta(days=300))
    saved = vault_store.commit(ring, expected_revision=0, materials={1: material})
    assert not plan_rotation(vault_store.load_rings(), policy, NOW)

    # another process moves the deactivation close (rotation now due) and dies between the
    # ring write (the commit point) and the shard write
    writer = VaultKeyStore.from_url(vault_store.url)
    seen: list[str] = []

    def crashing(shard_id: str, change: Any) -> None:
        seen.append(shard_id)
        raise Crash  # the only shard write of a commit: the entry after the commit point

    writer.index.update = crashing  # type: ignore[method-assign]
    due = saved.replace_version(
        replace(saved.versions[0], deactivation=NOW + dt.timedelta(hours=1))
    )
    with pytest.raises(Crash):
        writer.commit(due, expected_revision=saved.revision)
    writer.client.close()

    _status, body = vault_env.api("GET", f"{mount}/data/rings/web")
    assert body["data"]["metadata"]["version"] == 2  # the change is committed
    shard, _ = _shard(vault_env, mount, "web")
    assert shard["rings"]["web"]["rev"] == 1  # the shard is stale...
    assert seen == [ix.shard_of("web")] and "web" not in shard["pending"]  # no token either

    # ...but a fresh reader sees the change and the due step, and repairs the shard
    with VaultKeyStore.from_url(vault_store.url) as reader:
        calls = _count_calls(reader)
        (loaded,) = reader.load_rings()
        assert loaded.revision == 2
        assert loaded.versions[0].deactivation == NOW + dt.timedelta(hours=1)
        assert plan_rotation([loaded], policy, NOW).rings == ["web"]
        assert ("GET", f"{mount}/data/rings/web") in calls
    shard, _ = _shard(vault_env, mount, "web")
    assert shard["rings"]["web"]["rev"] == 2 and "web" not in shard["pending"]
    with VaultKeyStore.from_url(vault_store.url) as again:
        calls = _count_calls(again)
        assert again.load_rings()[0].revision == 2
        assert not [p for _m, p in calls if "/data/rings/" in p]  # served by the shard again


def test_stale_entry_without_token_is_corrected(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    """A stale entry without a token (a writer that bypasses the index, or an old shard put
    back) is not served: the entry is checked against the ring's KV version (issue 17 item 4)
    and corrected from the ring."""
    mount = mounts[0]
    ring, material = _ring("db", dt.timedelta(days=300))
    saved = vault_store.commit(ring, expected_revision=0, materials={1: material})
    shard_v1, _ = _shard(vault_env, mount, "db")
    vault_store.commit(
        saved.replace_version(replace(saved.versions[0], deactivation=NOW)),
        expected_revision=saved.revision,
    )
    status, _ = vault_env.api(  # put the old shard back
        "POST",
        f"{mount}/data/ix/{ix.shard_of('db')}",
        {"options": {"cas": _shard(vault_env, mount, "db")[1]}, "data": ix.encode(shard_v1)},
    )
    assert status == 200
    with VaultKeyStore.from_url(vault_store.url) as reader:
        calls = _count_calls(reader)
        assert reader.load_rings()[0].revision == 2
        assert [p for _m, p in calls if "/data/rings/" in p] == [f"{mount}/data/rings/db"]
    assert _shard(vault_env, mount, "db")[0]["rings"]["db"]["rev"] == 2


def test_crash_before_the_ring_write_leaves_the_index_serving(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    """A write cut short before its commit point changed nothing a reader relies on: the
    entry is still the ring's current KV version, so it is served without a direct read."""
    ring, material = _ring("api", dt.timedelta(days=300))
    saved = vault_store.commit(ring, expected_revision=0, materials={1: material})
    before, _ = _shard(vault_env, mounts[0], "api")
    writer = VaultKeyStore.from_url(vault_store.url)
    orig = writer.kv.write

    def crashing(path: str, data: Any, **kw: Any) -> tuple[int, str]:
        if path.startswith("rings/"):
            raise Crash
        return orig(path, data, **kw)

    writer.kv.write = crashing  # type: ignore[method-assign]
    with pytest.raises(Crash):
        writer.commit(saved, expected_revision=saved.revision)
    writer.client.close()
    assert _shard(vault_env, mounts[0], "api")[0] == before
    with VaultKeyStore.from_url(vault_store.url) as reader:
        calls = _count_calls(reader)
        assert reader.load_rings()[0].revision == 1
        assert not [p for _m, p in calls if "/data/rings/" in p]
    vault_store.commit(saved, expected_revision=saved.revision)
    assert _shard(vault_env, mounts[0], "api")[0]["rings"]["api"]["rev"] == 2


def test_rings_without_index_are_read_and_indexed(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    """A store written before the index existed (or whose shards were deleted)."""
    names = [f"old-{i:02d}" for i in range(12)]
    for name in names:
        ring, material = _ring(name, dt.timedelta(days=300))
        vault_store.commit(ring, expected_revision=0, materials={1: material})
    for shard_id in {ix.shard_of(n) for n in names}:
        assert vault_env.api("DELETE", f"{mounts[0]}/metadata/ix/{shard_id}")[0] == 204
    with VaultKeyStore.from_url(vault_store.url) as reader:
        calls = _count_calls(reader)
        assert [r.name for r in reader.load_rings()] == names
        assert len([p for _m, p in calls if "/data/rings/" in p]) == len(names)
    with VaultKeyStore.from_url(vault_store.url) as reader:
        calls = _count_calls(reader)
        assert [r.name for r in reader.load_rings()] == names
        assert not [p for _m, p in calls if "/data/rings/" in p]


def test_index_rules() -> None:
    """The pure merge rules: entries only move forward; a token at or above the entry's
    revision makes the entry untrusted; tokens below it are pruned."""
    shard = ix.empty()
    assert ix.trusted(shard, "a") is None
    shard["pending"].setdefault("a", []).append({"tx": "t1", "base": 0})
    assert ix.put_entry(shard, "a", 1, {"x": 1})
    assert ix.trusted(shard, "a") == (1, {"x": 1}) and "a" not in shard["pending"]
    assert not ix.put_entry(shard, "a", 1, {"x": "other"})  # never replaced by an equal rev
    shard["pending"].setdefault("a", []).append({"tx": "t2", "base": 1})
    assert ix.trusted(shard, "a") is None
    shard["pending"].setdefault("a", []).append(
        {"tx": "t3", "base": 1}
    )  # a racing writer on the same base
    assert ix.put_entry(shard, "a", 2, {"x": 2})
    assert ix.trusted(shard, "a") == (2, {"x": 2}) and "a" not in shard["pending"]
    assert not ix.put_entry(shard, "a", 1, {"x": 1})  # a late, older repair is ignored
    assert ix.decode(ix.encode(shard)) == shard
    assert ix.decode({"v": 1, "z": "not base64!"}) == ix.empty()
