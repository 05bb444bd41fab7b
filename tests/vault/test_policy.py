"""`keylife vault setup` / `keylife vault policy RING` on a real server: least privilege."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

import keylife
from keylife.errors import StoreError, VaultPermissionError
from keylife.vault import VaultKeyStore
from keylife.vault.index import shard_of
from keylife.vault.transit import context
from tests.vault.conftest import DevServer

pytestmark = pytest.mark.vault

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def run(url: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--store", url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_setup_creates_cas_mount_and_nonexportable_key(
    vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    url = vault_env.store_url(*mounts)
    out = json.loads(run(url, "--json", "vault", "setup", "--ring", "web"))
    kv, transit = mounts
    assert f"keylife-{kv}-ring-web" in out["policies"]
    status, cfg = vault_env.api("GET", f"{kv}/config")
    assert status == 200 and cfg["data"]["cas_required"] is True
    status, key = vault_env.api("GET", f"{transit}/keys/keylife")
    assert status == 200
    assert key["data"]["exportable"] is False
    assert key["data"]["allow_plaintext_backup"] is False
    assert key["data"]["derived"] is True
    # even root cannot export or back it up
    assert vault_env.api("GET", f"{transit}/export/encryption-key/keylife")[0] == 400
    assert vault_env.api("GET", f"{transit}/backup/keylife")[0] in (400, 500)
    # idempotent
    run(url, "vault", "setup")
    # a write without cas is refused by the mount
    status, body = vault_env.api("POST", f"{kv}/data/rings/x", {"data": {"a": 1}})
    assert status == 400 and "check-and-set" in json.dumps(body)


def test_service_token_reads_its_ring_only(
    vault_env: DevServer, mounts: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kv, transit = mounts
    url = vault_env.store_url(*mounts)
    run(url, "vault", "setup")
    clock = keylife.FixedClock(T0)
    with keylife.open(VaultKeyStore.from_url(url), actor="op", clock=clock) as m:
        m.create_ring("web", "aes-256", "data-encryption")
        m.create_ring("db", "aes-256", "data-encryption")
        clock.advance(dt.timedelta(days=1))
        m.rotate("web")
        web_v1 = m.ring("web").version(1).material.reveal()
        web_v2 = m.ring("web").primary().material.reveal()

    hcl = run(url, "vault", "policy", "web")
    assert f'path "{kv}/data/rings/web"' in hcl and "rings/db" not in hcl and "/m/db/" not in hcl
    assert vault_env.api("POST", "sys/policies/acl/svc-web", {"policy": hcl})[0] == 204
    status, tok = vault_env.api("POST", "auth/token/create", {"policies": ["svc-web"], "ttl": "1h"})
    assert status == 200
    service_token = tok["auth"]["client_token"]

    monkeypatch.setenv("VAULT_TOKEN", service_token)
    svc = keylife.open(
        VaultKeyStore.from_url(url), clock=keylife.FixedClock(T0 + dt.timedelta(days=1))
    )
    try:
        ring = svc.ring("web")
        assert ring.primary().number == 2
        assert ring.primary().material.reveal() == web_v2
        assert ring.version(1).material.reveal() == web_v1  # deactivated, in grace
        # other rings: 403
        with pytest.raises(VaultPermissionError, match="403"):
            svc.store.load_ring("db")
        with pytest.raises(VaultPermissionError, match="403"):
            svc.store.get_material("db", 1, keylife.parse_spec("aes-256"))
        # listing, writes, audit, leases: 403
        with pytest.raises(VaultPermissionError):
            svc.store.list_ring_names()
        with pytest.raises(VaultPermissionError):
            svc.rotate("web")
        with pytest.raises(StoreError):
            svc.store.acquire_lease("rotate", "svc", dt.timedelta(minutes=1), T0)
        with pytest.raises(VaultPermissionError):
            svc.store.read_audit()
    finally:
        svc.close()

    def api(method: str, path: str, body: Any = None) -> int:
        return int(vault_env.api(method, path, body, token=service_token)[0])

    # the raw API with the service token
    assert api("GET", f"{kv}/data/rings/web") == 200
    assert api("GET", f"{kv}/data/rings/db") == 403
    assert api("POST", f"{kv}/data/rings/web", {"options": {"cas": 0}, "data": {}}) == 403
    assert api("DELETE", f"{kv}/metadata/rings/web") == 403
    assert api("LIST", f"{kv}/metadata/m/db") == 403
    # the index shards hold other rings' documents: not readable, not even web's own shard
    for shard in (shard_of("web"), shard_of("db")):
        assert vault_env.api("GET", f"{kv}/data/ix/{shard}")[0] == 200  # they exist
        assert api("GET", f"{kv}/data/ix/{shard}") == 403
    assert api("LIST", f"{kv}/metadata/ix") == 403
    assert api("GET", f"{transit}/export/encryption-key/keylife") == 403
    assert api("GET", f"{transit}/backup/keylife") == 403
    assert api("GET", f"{transit}/keys/keylife") == 403
    assert api("POST", f"{transit}/keys/keylife/rotate") == 403
    assert (
        api("POST", f"{transit}/encrypt/keylife", {"plaintext": "AA==", "context": "AA=="}) == 403
    )
    assert api("GET", "sys/mounts") == 403
    # decrypt only with this ring's context: a ciphertext of ring db (obtained elsewhere)
    # cannot be opened by naming db's context
    status, body = vault_env.api("GET", f"{kv}/data/rings/db")
    blob = body["data"]["data"]["mat"]["1"]
    ct = vault_env.api("GET", f"{kv}/data/m/db/1/{blob}")[1]["data"]["data"]["ct"]
    db_ctx = base64.b64encode(context("db", 1)).decode()
    assert api("POST", f"{transit}/decrypt/keylife", {"ciphertext": ct, "context": db_ctx}) == 403
    web_ctx = base64.b64encode(context("web", 1)).decode()
    # allowed by the policy, refused by the cryptography (wrong derived key)
    assert api("POST", f"{transit}/decrypt/keylife", {"ciphertext": ct, "context": web_ctx}) == 400
