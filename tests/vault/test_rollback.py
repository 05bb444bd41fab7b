"""A rolled-back ring never reuses version numbers (issue 17 item 2).

With the operator token, an older KV version's content is written back (with a correct
check-and-set): the ring's document now issues fewer versions than were issued. The next
commit is refused, naming the ring and "rolled back", so no second v3 with another fingerprint
is ever issued; once the operator restores the newest document, rotation goes on at v4.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

import keylife
from keylife.errors import IntegrityError
from tests.vault.conftest import DevServer

pytestmark = pytest.mark.vault


def ring_versions(server: DevServer, mount: str, ring: str) -> dict[int, dict[str, Any]]:
    """Every KV version of ``rings/<ring>``: {KV version: data}."""
    status, meta = server.api("GET", f"{mount}/metadata/rings/{ring}")
    assert status == 200, meta
    out = {}
    for v in meta["data"]["versions"]:
        status, body = server.api("GET", f"{mount}/data/rings/{ring}?version={v}")
        assert status == 200, body
        out[int(v)] = body["data"]["data"]
    return out


def write_back(server: DevServer, mount: str, ring: str, data: dict[str, Any]) -> None:
    status, meta = server.api("GET", f"{mount}/metadata/rings/{ring}")
    current = meta["data"]["current_version"]
    status, body = server.api(
        "POST", f"{mount}/data/rings/{ring}", {"options": {"cas": current}, "data": data}
    )
    assert status == 200, body


def test_rolled_back_ring_is_refused_until_restored(
    vault_env: DevServer, mounts: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mount = mounts[0]
    url = vault_env.store_url(*mounts)
    monkeypatch.chdir(tmp_path)
    with keylife.init(url, actor="test") as m:
        m.create_ring("web", "ec-p256", "signing")
        m.rotate("web")
        m.rotate("web")
        fp3 = m.ring("web").primary().version.fingerprint
    versions = ring_versions(vault_env, mount, "web")
    newest = versions[max(versions)]
    assert json.loads(newest["ring"])["next_version"] == 4  # the ring travels as JSON text
    older = next(
        d for _, d in sorted(versions.items()) if json.loads(d["ring"])["next_version"] == 3
    )
    write_back(vault_env, mount, "web", older)  # v2 is the primary again

    with (
        keylife.open(url, actor="test") as m,
        pytest.raises(IntegrityError, match=r"ring web was rolled back.*v3 was already"),
    ):
        m.rotate("web")
    # listings and `keylife rotate` show it damaged, named, until it is resolved
    listed = CliRunner().invoke(cli, ["--json", "--store", url, "key", "list"])
    assert "web was rolled back" in listed.stdout, listed.stdout
    run = CliRunner().invoke(cli, ["--json", "--store", url, "rotate"])
    assert run.exit_code == 1 and "web was rolled back" in run.stdout, run.stdout
    # the CLI names it too, and issues nothing
    result = CliRunner().invoke(cli, ["--json", "--store", url, "key", "rotate", "web"])
    assert result.exit_code != 0
    assert "rolled back" in result.stdout and "web" in result.stdout
    after = ring_versions(vault_env, mount, "web")
    assert max(after) == max(versions) + 1  # only the attacker's write
    assert vault_env.api("GET", f"{mount}/data/hw/web")[1]["data"]["data"]["issued"] == 3

    # the operator restores the newest document (`bao kv rollback`): rotation goes on at v4
    write_back(vault_env, mount, "web", newest)
    listed = CliRunner().invoke(cli, ["--json", "--store", url, "key", "list"])
    assert "rolled back" not in listed.stdout, listed.stdout
    with keylife.open(url, actor="test") as m:
        assert m.ring("web").primary().version.fingerprint == fp3
        assert m.rotate("web").number == 4


def _ring_db_at_two_revisions(
    vault_env: DevServer, mounts: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """A new store with AES ring ``db`` created and rotated once; ``(KV mount, store URL)``."""
    url = vault_env.store_url(*mounts)
    monkeypatch.chdir(tmp_path)
    with keylife.init(url, actor="test") as m:
        m.create_ring("db", "aes-256")
        m.rotate("db")
    return mounts[0], url


def test_recreated_ring_is_refused(
    vault_env: DevServer, mounts: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ring deleted behind keylife's back and created again under its name would issue v1
    again: refused as well."""
    mount, url = _ring_db_at_two_revisions(vault_env, mounts, tmp_path, monkeypatch)
    status, _ = vault_env.api("DELETE", f"{mount}/metadata/rings/db")
    assert status == 204
    with keylife.open(url, actor="test") as m, pytest.raises(IntegrityError, match="rolled back"):
        m.create_ring("db", "aes-256")


def test_a_ring_recreated_at_the_same_kv_version_is_not_vouched_for(
    vault_env: DevServer, mounts: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit skips reading ``hw/<ring>`` only with a mark copied from an index entry the
    listing verified. A ring deleted behind keylife's back and written again up to the same KV
    version, with an older document, has another ``created_time``: no copy vouches for it, the
    mark is read, and the commit is refused."""
    from keylife.vault import VaultKeyStore

    mount, url = _ring_db_at_two_revisions(vault_env, mounts, tmp_path, monkeypatch)
    versions = ring_versions(vault_env, mount, "db")
    assert sorted(versions) == [1, 2]
    with VaultKeyStore.from_url(url) as store:  # the copy vouches for the current revision
        store.load_rings()
        assert store.index.vouched("db", 2) is not None
    assert vault_env.api("DELETE", f"{mount}/metadata/rings/db")[0] == 204
    for cas in range(2):  # KV version 2 again, holding the document of version 1
        status, body = vault_env.api(
            "POST", f"{mount}/data/rings/db", {"options": {"cas": cas}, "data": versions[1]}
        )
        assert status == 200, body
    with VaultKeyStore.from_url(url) as store:
        (ring,) = store.load_rings()
        assert ring.revision == 2 and store.index.vouched("db", 2) is None
        assert "rolled back" in (ring.damage or "")
        with pytest.raises(IntegrityError, match="rolled back"):
            store.commit(ring, expected_revision=2)
