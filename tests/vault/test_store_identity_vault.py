"""Issue 13 item 3 on OpenBao: blobs bind the store's id, so a blob copied from another store
sharing the Transit key never unseals; ``keylife store rekey`` migrates an old-format store,
after which a foreign old-format blob (or ring document) is refused."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

import keylife
from keylife.errors import IntegrityError
from keylife.writer import RingWriter
from tests.vault.conftest import DevServer

pytestmark = pytest.mark.vault

HOUR = dt.timedelta(hours=1)


def _data(server: DevServer, mount: str, path: str) -> tuple[int, dict[str, Any]]:
    status, body = server.api("GET", f"{mount}/data/{path}")
    assert status == 200, body
    return body["data"]["metadata"]["version"], body["data"]["data"]


def _put(server: DevServer, mount: str, path: str, data: dict[str, Any]) -> None:
    status, meta = server.api("GET", f"{mount}/metadata/{path}")
    cas = meta["data"]["current_version"] if status == 200 else 0
    status, body = server.api(
        "POST", f"{mount}/data/{path}", {"options": {"cas": cas}, "data": data}
    )
    assert status == 200, body


def _blob_path(server: DevServer, mount: str, ring: str, version: int) -> str:
    _, doc = _data(server, mount, f"rings/{ring}")
    return f"m/{ring}/{version}/{doc['mat'][str(version)]}"


def _store(server: DevServer, transit: str, *, legacy: bool) -> tuple[str, str]:
    """A store on a fresh KV mount sharing ``transit`` (and its key) with the others; with
    ``legacy``, as made before store ids (its blobs in the old format)."""
    mount = f"kl-{uuid.uuid4().hex[:10]}"
    url = server.store_url(mount, transit)
    keylife.init(url, actor="test").close()
    if legacy:
        status, _ = server.api("DELETE", f"{mount}/metadata/store-id")
        assert status == 204
    with keylife.open(url, actor="test") as m:
        assert (m.store.identity.id() is None) is legacy
        m.create_ring("data", "aes-256", "data-encryption")
        m.create_ring("pay", "ec-p256", "signing")
    return mount, url


def test_blob_swapped_between_stores_sharing_the_transit_key_is_refused(
    vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    transit = mounts[1]
    a, url_a = _store(vault_env, transit, legacy=False)
    b, _ = _store(vault_env, transit, legacy=False)
    assert (
        _data(vault_env, a, "rings/data")[1]["sid"] != _data(vault_env, b, "rings/data")[1]["sid"]
    )
    foreign = _data(vault_env, b, _blob_path(vault_env, b, "data", 1))[1]
    _put(vault_env, a, _blob_path(vault_env, a, "data", 1), foreign)
    with keylife.open(url_a) as m:
        with pytest.raises(
            IntegrityError, match=r"data v1.*sealed material failed its integrity check"
        ):
            m.ring("data").primary()
        assert m.ring("pay").primary().number == 1  # the rest still unseals


def test_rekey_migrates_an_old_format_store(vault_env: DevServer, mounts: tuple[str, str]) -> None:
    transit = mounts[1]
    a, url_a = _store(vault_env, transit, legacy=True)
    assert "sid" not in _data(vault_env, a, "rings/data")[1]
    with keylife.open(url_a) as m:  # old-format blobs read as before
        m.rotate("pay")
        assert m.ring("data").decrypt(m.ring("data").encrypt(b"hi")) == b"hi"
        before = m.ring("pay").primary().version.fingerprint
    # a rotation run holds the lock: the migration waits for it (exit 4, nothing changed)
    with keylife.open(url_a) as m:
        now = m.now()
        assert m.store.acquire_lease("keylife-rotate", "elsewhere:1:run", HOUR, now)
        held = CliRunner().invoke(cli, ["--store", url_a, "store", "rekey"])
        assert held.exit_code == 4 and "rotation run holds the lock" in held.stderr
        assert m.store.identity.doc(fresh=True) is None
        m.store.release_lease("keylife-rotate", "elsewhere:1:run")
    result = CliRunner().invoke(
        cli, ["--json", "--store", url_a, "store", "rekey"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["resealed"] == 3
    _, ident = _data(vault_env, a, "store-id")
    assert ident == {"id": out["store_id"], "bound": True}
    for ring in ("data", "pay"):
        assert _data(vault_env, a, f"rings/{ring}")[1]["sid"] == out["store_id"]
    with keylife.open(url_a) as m:  # everything readable, fingerprints checked
        assert m.ring("pay").primary().version.fingerprint == before
        for ring in m.rings():
            for v in ring.versions:
                if v.has_material:
                    RingWriter.material(m, v)
        assert m.verify_audit().ok
        assert [r.action for r in m.audit_records()][-1] == "rekey"
    # a foreign old-format blob: another old-format store on the same Transit key
    b, _ = _store(vault_env, transit, legacy=True)
    foreign = _data(vault_env, b, _blob_path(vault_env, b, "data", 1))[1]
    _put(vault_env, a, _blob_path(vault_env, a, "data", 1), foreign)
    with (
        keylife.open(url_a) as m,
        pytest.raises(IntegrityError, match=r"data v1.*sealed material failed its integrity check"),
    ):
        m.ring("data").primary()
    # ... and its whole old-format ring document with it: refused as old format
    _, doc_b = _data(vault_env, b, "rings/data")
    _put(vault_env, a, "rings/data", doc_b)
    _put(vault_env, a, _blob_path(vault_env, b, "data", 1), foreign)
    with keylife.open(url_a) as m, pytest.raises(IntegrityError, match="old format"):
        m.ring("data").primary()
