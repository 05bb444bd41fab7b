"""The ring index cannot hide a ring (issue 17 item 4).

Entries are hints checked against each ring's KV version and that version's created_time; a
forged, stale or malformed entry costs one direct read of its ring and is corrected; `keylife
vault reindex` rebuilds the shards.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

from keylife.vault import VaultKeyStore
from keylife.vault import index as ix
from tests.vault.conftest import DevServer
from tests.vault.helpers import seed_due_rings

pytestmark = pytest.mark.vault


def calls_of(store: VaultKeyStore) -> list[str]:
    calls: list[str] = []
    orig = store.client.request

    def request(method: str, path: str, **kw: Any) -> Any:
        calls.append(path)
        return orig(method, path, **kw)

    store.client.request = request  # type: ignore[method-assign]
    return calls


def shard(env: DevServer, mount: str, name: str) -> tuple[dict[str, Any], int]:
    status, body = env.api("GET", f"{mount}/data/ix/{ix.shard_of(name)}")
    assert status == 200, body
    return ix.decode(body["data"]["data"]), body["data"]["metadata"]["version"]


def put_shard(env: DevServer, mount: str, name: str, new: dict[str, Any], version: int) -> None:
    status, body = env.api(
        "POST",
        f"{mount}/data/ix/{ix.shard_of(name)}",
        {"options": {"cas": version}, "data": ix.encode(new)},
    )
    assert status == 200, body


def ring_doc(env: DevServer, mount: str, name: str) -> tuple[dict[str, Any], int, str]:
    status, body = env.api("GET", f"{mount}/data/rings/{name}")
    assert status == 200, body
    meta = body["data"]["metadata"]
    return body["data"]["data"], meta["version"], meta["created_time"]


def rotate(url: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["--json", "--store", url, "rotate", *args])
    return result.exit_code, json.loads(result.stdout)


def test_forged_entry_dated_2099_does_not_hide_a_due_ring(
    vault_store: VaultKeyStore,
    vault_env: DevServer,
    mounts: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    mount = mounts[0]
    (name,) = seed_due_rings(vault_store, 1)
    doc, _rev, created = ring_doc(vault_env, mount, name)
    forged = json.loads(json.dumps(doc).replace(str(dt.datetime.now(dt.UTC).year), "2099"))
    current, version = shard(vault_env, mount, name)
    current["rings"][name] = {"rev": 10**9, "doc": forged, "t": created}
    current["pending"].pop(name, None)
    put_shard(vault_env, mount, name, current, version)

    code, report = rotate(vault_store.url, "--dry-run")
    assert code == 0, report
    assert [r["ring"] for r in report["rings"]] == [name]  # planned although the entry says 2099
    code, report = rotate(vault_store.url)
    assert code == 0 and report["rings"][0]["status"] == "succeeded", report
    # the entry is the ring's again, and served without a direct read
    entry = shard(vault_env, mount, name)[0]["rings"][name]
    assert entry["rev"] == ring_doc(vault_env, mount, name)[1]
    with VaultKeyStore.from_url(vault_store.url) as reader:
        calls = calls_of(reader)
        (ring,) = reader.load_rings()
        assert ring.next_version == 3
        assert not [p for p in calls if "/data/rings/" in p]


def test_ring_deleted_and_created_again_is_read_from_the_ring(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    mount = mounts[0]
    (name,) = seed_due_rings(vault_store, 1, prefix="again")
    with VaultKeyStore.from_url(vault_store.url) as reader:
        (before,) = reader.load_rings()
    doc, rev, _created = ring_doc(vault_env, mount, name)
    assert rev == 1
    # the same name, the same KV version number, another document
    assert vault_env.api("DELETE", f"{mount}/metadata/rings/{name}")[0] == 204
    doc["ring"] = json.dumps({**json.loads(doc["ring"]), "attributes": {"recreated": "yes"}})
    status, body = vault_env.api(
        "POST", f"{mount}/data/rings/{name}", {"options": {"cas": 0}, "data": doc}
    )
    assert status == 200 and body["data"]["version"] == 1
    with VaultKeyStore.from_url(vault_store.url) as reader:
        calls = calls_of(reader)
        (after,) = reader.load_rings()
        assert dict(after.attributes) == {"recreated": "yes"} != dict(before.attributes)
        assert [p for p in calls if "/data/rings/" in p] == [f"{mount}/data/rings/{name}"]


def test_malformed_entry_costs_one_direct_read(
    vault_store: VaultKeyStore,
    vault_env: DevServer,
    mounts: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    mount = mounts[0]
    names = seed_due_rings(vault_store, 6, prefix="mal")
    victim = names[2]
    _doc, rev, created = ring_doc(vault_env, mount, victim)
    current, version = shard(vault_env, mount, victim)
    current["rings"][victim] = {"rev": rev, "doc": {"ring": {"name": "hidden"}}, "t": created}
    put_shard(vault_env, mount, victim, current, version)
    with VaultKeyStore.from_url(vault_store.url) as reader:
        calls = calls_of(reader)
        rings = reader.load_rings()
        assert [r.name for r in rings] == names and not any(r.damage for r in rings)
        assert [p for p in calls if "/data/rings/" in p] == [f"{mount}/data/rings/{victim}"]
    result = CliRunner().invoke(cli, ["--json", "--store", vault_store.url, "key", "list"])
    assert result.exit_code == 0, result.stdout
    code, report = rotate(vault_store.url)
    assert code == 0, report
    assert sorted(r["ring"] for r in report["rings"] if r["status"] == "succeeded") == names


def test_reindex_rebuilds_the_shards(
    vault_store: VaultKeyStore,
    vault_env: DevServer,
    mounts: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    mount = mounts[0]
    names = seed_due_rings(vault_store, 10, prefix="re")
    # one shard deleted, one holding garbage and an entry of a ring that does not exist
    assert vault_env.api("DELETE", f"{mount}/metadata/ix/{ix.shard_of(names[0])}")[0] == 204
    bad, version = shard(vault_env, mount, names[1])
    bad["rings"]["ghost"] = {"rev": 7, "doc": {}, "t": ""}
    put_shard(vault_env, mount, names[1], bad, version)
    result = CliRunner().invoke(cli, ["--json", "--store", vault_store.url, "vault", "reindex"])
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["rings"] == 10
    assert "ghost" not in shard(vault_env, mount, names[1])[0]["rings"]
    with VaultKeyStore.from_url(vault_store.url) as reader:
        calls = calls_of(reader)
        assert [r.name for r in reader.load_rings()] == names
        assert not [p for p in calls if "/data/rings/" in p]


def test_old_operator_policy_without_the_listing_reads_rings_directly(
    vault_store: VaultKeyStore,
    vault_env: DevServer,
    mounts: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from keylife.vault.policy import operator_policy

    names = seed_due_rings(vault_store, 3, prefix="old")
    hcl = operator_policy(vault_store)
    start = hcl.index("# one listing")
    old = hcl[:start] + hcl[hcl.index("}", start) + 2 :]
    assert "detailed-metadata" not in old
    assert vault_env.api("POST", f"sys/policies/acl/old-{mounts[0]}", {"policy": old})[0] == 204
    body = vault_env.api("POST", "auth/token/create", {"policies": [f"old-{mounts[0]}"]})[1]
    monkeypatch.setenv("VAULT_TOKEN", body["auth"]["client_token"])
    with VaultKeyStore.from_url(vault_store.url) as reader:
        assert [r.name for r in reader.load_rings()] == names
    assert any("detailed-metadata" in r.getMessage() for r in caplog.records)
