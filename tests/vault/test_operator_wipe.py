"""Issue 13: the operator token (the policy `keylife vault setup` writes, held by the cron job)
cannot erase history. Deleting the metadata of `rings/NAME`, of every audit batch and of
`audit-head` (which left `keylife audit verify` saying "0 records, chain intact") is refused by
Vault, while the jobs the token exists for still work with it: init on a set-up store, key
create, rotate, destroy (erasing material), `keylife rotate`, audit verify, `vault gc --apply`,
and the soft delete of a ring document that `keylife key delete` uses."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

import keylife
from keylife.errors import VaultPermissionError
from keylife.vault import VaultKeyStore
from keylife.vault.gc import collect
from keylife.vault.policy import operator_policy_name
from tests.vault.conftest import DevServer

pytestmark = pytest.mark.vault


def run(url: str, *args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(cli, ["--store", url, *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def operator(
    vault_env: DevServer, mounts: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[DevServer, str]:
    """The store set up by an administrator (root), then VAULT_TOKEN = an operator token."""
    url = vault_env.store_url(*mounts)
    run(url, "vault", "setup")
    with VaultKeyStore.from_url(url) as store:
        policy = operator_policy_name(store)
    status, tok = vault_env.api("POST", "auth/token/create", {"policies": [policy], "ttl": "1h"})
    assert status == 200, tok
    monkeypatch.setenv("VAULT_TOKEN", tok["auth"]["client_token"])
    return vault_env, url


def test_operator_token_cannot_wipe_history(operator: tuple[DevServer, str]) -> None:
    server, url = operator
    kv = url.split("/", 3)[3].split("?")[0]
    run(url, "key", "create", "orders", "--purpose", "data-encryption")
    run(url, "key", "rotate", "orders")
    before = json.loads(run(url, "--json", "audit", "verify").output)
    assert before["records"] >= 2

    token = server.env.get("token") or ""
    with VaultKeyStore.from_url(url) as store:
        token = store.client.token or ""
        batches = store.kv.list("audit/", what="list audit batches")
        assert batches
        # the wipe of issue 13, through keylife's own KV layer and through the raw API
        with pytest.raises(VaultPermissionError):
            store.kv.destroy("rings/orders", what="wipe the ring")
        for batch in batches:
            with pytest.raises(VaultPermissionError):
                store.kv.destroy(f"audit/{batch}", what="wipe an audit batch")
        with pytest.raises(VaultPermissionError):
            store.kv.destroy("audit-head", what="wipe the audit head")

    def api(method: str, path: str, body: Any = None) -> int:
        return int(server.api(method, f"{kv}/{path}", body, token=token)[0])

    assert api("DELETE", "metadata/rings/orders") == 403
    assert api("DELETE", "metadata/audit-head") == 403
    assert api("DELETE", f"metadata/audit/{batches[0]}") == 403
    assert api("DELETE", "metadata/hw/orders") == 403
    assert api("DELETE", "metadata/marker") == 403
    # soft deletes and destroys of the log's versions: refused too
    assert api("DELETE", "data/audit-head") == 403
    assert api("DELETE", f"data/audit/{batches[0]}") == 403
    assert api("POST", "destroy/audit-head", {"versions": [1]}) == 403
    assert api("POST", "delete/rings/orders", {"versions": [1]}) == 403
    assert api("POST", "destroy/rings/orders", {"versions": [1]}) == 403
    # nothing was lost
    after = json.loads(run(url, "--json", "audit", "verify").output)
    assert after["records"] == before["records"]
    assert "orders" in run(url, "key", "list").output


def test_operator_token_still_does_its_jobs(operator: tuple[DevServer, str]) -> None:
    server, url = operator
    kv = url.split("/", 3)[3].split("?")[0]
    run(url, "init")  # the store is set up: nothing to do, and no admin rights needed
    run(url, "key", "create", "web", "--purpose", "data-encryption")
    run(url, "key", "create", "sig", "--purpose", "signing")
    run(url, "key", "rotate", "web")
    run(url, "key", "destroy", "web", "1", "--reason", "retired")
    run(url, "rotate")
    verified = json.loads(run(url, "--json", "audit", "verify").output)
    assert verified["records"] >= 5
    with VaultKeyStore.from_url(url) as store:
        # an unreferenced blob (a crash before the commit point), erased by gc with this token
        blob = f"m/web/9/{secrets.token_hex(8)}"
        store.kv.cas_write(blob, {"ct": "vault:v1:AAAA"}, cas=0, what="orphan", ours=lambda d: True)
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
        report = collect(store.kv, now=later, min_age=dt.timedelta(hours=1), apply=True)
        assert [o.path for o in report.orphans] == [blob] and report.removed == 1
        assert store.kv.metadata(blob, what="read back") is None
        token = store.client.token or ""
    # `keylife key delete` (a soft delete of the ring document's data path) with this token
    with VaultKeyStore.from_url(url) as store:
        clock = keylife.FixedClock(dt.datetime.now(dt.UTC))
        m = keylife.KeyManager(store, actor="cron", clock=clock)
        m.create_ring("gone", "aes-256", "data-encryption")
        m.deactivate("gone", 1)
        m.destroy("gone", 1)
        clock.advance(m.policy.destroy_wait)
        assert keylife.rotation.run(m, rings=["gone"]).ok
        m.delete_ring("gone", reason="decommissioned")
    assert "gone" not in run(url, "key", "list").output
    assert server.api("GET", f"{kv}/metadata/rings/gone", token=token)[0] == 200  # history kept


def test_init_without_admin_rights_on_a_store_not_set_up_says_what_to_do(
    vault_env: DevServer, mounts: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = vault_env.store_url(*mounts)
    status, tok = vault_env.api("POST", "auth/token/create", {"policies": ["default"]})
    assert status == 200, tok
    monkeypatch.setenv("VAULT_TOKEN", tok["auth"]["client_token"])
    result = run(url, "init", code=1)
    assert "needs an administrator's token once: run `keylife vault setup`" in result.output
