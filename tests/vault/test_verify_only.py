"""`keylife vault policy RING --verify-only` on a real OpenBao: a token holding only that policy
reads RING's public keys (the document every commit publishes at ``public/RING``) and nothing
else; a JWS made by ``ring.sign_jws`` verifies with PyJWT against the JWKS it reads."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import jwt
import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

import keylife
from keylife.errors import KeyUsageError, NotFoundError, VaultPermissionError
from keylife.vault import VaultKeyStore
from keylife.vault.public import public_path
from tests.vault.conftest import DevServer

pytestmark = pytest.mark.vault

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def run(url: str, *args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(cli, ["--store", url, *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def verify_with_pyjwt(token: str, jwks: dict[str, Any]) -> Any:
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    return jwt.decode(token, key=key, algorithms=[header["alg"]])


def token_with(server: DevServer, name: str, hcl: str) -> str:
    assert server.api("POST", f"sys/policies/acl/{name}", {"policy": hcl})[0] == 204
    status, tok = server.api("POST", "auth/token/create", {"policies": [name], "ttl": "1h"})
    assert status == 200, tok
    return str(tok["auth"]["client_token"])


def test_verify_only_token_reads_public_keys_and_nothing_else(
    vault_env: DevServer, mounts: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kv, _transit = mounts
    url = vault_env.store_url(*mounts)
    run(url, "vault", "setup")
    clock = keylife.FixedClock(T0)
    with keylife.open(VaultKeyStore.from_url(url), actor="op", clock=clock) as m:
        m.create_ring("sig", "ec-p256", "signing")
        m.create_ring("other", "ed25519", "signing")
        m.create_ring("secret", "aes-256", "data-encryption")
        old_token = m.ring("sig").sign_jws({"sub": "v1"})
        clock.advance(10 * DAY)
        m.rotate("sig")
        new_token = m.ring("sig").sign_jws({"sub": "v2"})
        operator_jwks = m.ring("sig").jwks()
        operator_pem = m.ring("sig").public_key(1, "pem")

    hcl = run(url, "vault", "policy", "sig", "--verify-only").output
    assert f'path "{kv}/data/public/sig"' in hcl
    assert "rings/" not in hcl and "/m/" not in hcl and "decrypt" not in hcl
    verifier = token_with(vault_env, "verify-sig", hcl)
    monkeypatch.setenv("VAULT_TOKEN", verifier)

    reader = keylife.open(VaultKeyStore.from_url(url), clock=keylife.FixedClock(T0 + 10 * DAY))
    try:
        ring = reader.ring("sig")
        jwks = ring.jwks()
        assert jwks == operator_jwks
        assert [k["kid"] for k in jwks["keys"]] == ["sig:v1", "sig:v2"]
        assert verify_with_pyjwt(old_token, jwks) == {"sub": "v1"}
        assert verify_with_pyjwt(new_token, jwks) == {"sub": "v2"}
        assert ring.public_key(1, "pem") == operator_pem
        assert list(ring.public_keys()) == ["sig:v1", "sig:v2"]
        # everything secret or foreign: refused, as keylife errors
        store = reader.store
        with pytest.raises(VaultPermissionError):
            store.load_ring("sig")
        with pytest.raises(VaultPermissionError):
            ring.primary()
        with pytest.raises(VaultPermissionError):
            ring.sign_jws({"forged": True})
        with pytest.raises(VaultPermissionError):
            store.get_material("sig", 1, keylife.parse_spec("ec-p256"))
        with pytest.raises(VaultPermissionError):
            reader.ring("other")
        with pytest.raises(VaultPermissionError):
            store.load_public("other")
        with pytest.raises(VaultPermissionError):
            reader.rotate("sig")
        with pytest.raises(VaultPermissionError):
            store.kv.cas_write(
                public_path("sig"), {"keys": []}, cas=1, what="forge", ours=lambda d: False
            )
        with pytest.raises(VaultPermissionError):
            store.list_ring_names()
    finally:
        reader.close()

    # the CLI with the same token: every format of `key public`
    out = run(url, "--json", "key", "public", "sig", "--format", "jwks").output
    assert json.loads(out) == operator_jwks
    assert run(url, "key", "public", "sig", "--version", "1").output.encode() == operator_pem
    assert run(url, "key", "public", "sig", "--format", "ssh").output.startswith("ecdsa-sha2")
    refused = run(url, "key", "public", "other", code=1)
    assert "keylife: error:" in refused.output and "Traceback" not in refused.output

    # past v1's processing window (the signing grace period), the JWKS drops it
    late = keylife.open(VaultKeyStore.from_url(url), clock=keylife.FixedClock(T0 + 800 * DAY))
    try:
        assert [k["kid"] for k in late.ring("sig").jwks()["keys"]] == ["sig:v2"]
        with pytest.raises(keylife.MaterialUnavailableError):
            late.ring("sig").public_key(1)
    finally:
        late.close()


def test_published_document_follows_the_ring(vault_env: DevServer, mounts: tuple[str, str]) -> None:
    """Compromised and destroyed versions leave the document; symmetric rings have none."""
    kv, _ = mounts
    url = vault_env.store_url(*mounts)
    run(url, "vault", "setup")
    clock = keylife.FixedClock(T0)
    with keylife.open(VaultKeyStore.from_url(url), actor="op", clock=clock) as m:
        m.create_ring("sig", "ed25519", "signing")
        m.create_ring("secret", "hmac-sha256", "authentication")
        clock.advance(DAY)
        m.rotate("sig")
        m.compromise("sig", version=1, occurred_at=T0)
        store = m.store
        assert isinstance(store, VaultKeyStore)
        published = store.load_public("sig")
        assert published is not None
        assert 1 not in published.keys and 2 in published.keys
        assert published.revision == store.load_ring("sig").revision  # type: ignore[union-attr]
        assert store.load_public("secret") is None
    status, body = vault_env.api("GET", f"{kv}/data/public/sig")
    assert status == 200
    text = json.dumps(body)
    assert "PRIVATE" not in text and '"d"' not in text
    assert [k["kid"] for k in body["data"]["data"]["keys"]] == [
        f"sig:v{n}" for n in sorted(published.keys)
    ]


def test_verify_only_refused_for_symmetric_rings(
    vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    url = vault_env.store_url(*mounts)
    run(url, "vault", "setup")
    with keylife.open(VaultKeyStore.from_url(url), actor="op") as m:
        m.create_ring("secret", "aes-256", "data-encryption")
    result = run(url, "vault", "policy", "secret", "--verify-only", code=1)
    assert "holds secret keys" in result.output and "vault policy secret" in result.output
    assert "Traceback" not in result.output
    from keylife.vault.policy import verify_only_policy

    with VaultKeyStore.from_url(url) as store:
        with pytest.raises(KeyUsageError, match="nothing a verify-only token could read"):
            verify_only_policy(store, "secret")
        with pytest.raises(NotFoundError):
            verify_only_policy(store, "missing")


def test_verify_only_transit_ring_reads_the_public_key_export_only(
    vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    _, transit = mounts
    url = vault_env.store_url(*mounts)
    run(url, "vault", "setup")
    run(url, "vault", "transit", "create", "tsig", "--type", "ecdsa-p256", "--purpose", "signing")
    run(url, "vault", "transit", "create", "tenc")
    hcl = run(url, "vault", "policy", "tsig", "--verify-only").output
    assert f'path "{transit}/export/public-key/kl-tsig"' in hcl
    verifier = token_with(vault_env, "verify-tsig", hcl)

    def api(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return vault_env.api(method, path, body, token=verifier)  # type: ignore[no-any-return]

    status, body = api("GET", f"{transit}/export/public-key/kl-tsig")
    assert status == 200
    pem = body["data"]["keys"]["1"]
    assert pem.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in json.dumps(body)
    assert api("GET", f"{transit}/export/public-key/kl-tsig/1")[0] == 200
    assert api("GET", f"{transit}/export/signing-key/kl-tsig")[0] == 403
    assert api("GET", f"{transit}/keys/kl-tsig")[0] == 403
    assert api("POST", f"{transit}/sign/kl-tsig", {"input": "AA=="})[0] == 403
    assert api("GET", f"{transit}/export/public-key/kl-tenc")[0] == 403
    refused = run(url, "vault", "policy", "tenc", "--verify-only", code=1)
    assert "holds secret keys" in refused.output


def test_publishing_heals_and_never_blocks_a_commit(
    vault_env: DevServer,
    mounts: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A ring with no published document (written before publishing existed) or a forged one
    is published correctly by its next commit (keys derived from the material where the old
    document does not match the fingerprints); a token that may not write ``public/`` still
    commits, with a warning."""
    kv, _ = mounts
    url = vault_env.store_url(*mounts)
    run(url, "vault", "setup")
    clock = keylife.FixedClock(T0)
    with keylife.open(VaultKeyStore.from_url(url), actor="op", clock=clock) as m:
        m.create_ring("sig", "ec-p256", "signing")
        m.create_ring("other", "ec-p256", "signing")
        v1_pem = m.ring("sig").public_key(1)
        forged = vault_env.api("GET", f"{kv}/data/public/other")[1]["data"]["data"]
        assert vault_env.api("DELETE", f"{kv}/metadata/public/sig")[0] == 204
        forged["ring"], forged["rev"] = "sig", 0
        status, _ = vault_env.api(
            "POST", f"{kv}/data/public/sig", {"options": {"cas": 0}, "data": forged}
        )
        assert status == 200
        clock.advance(DAY)
        m.rotate("sig")
        store = m.store
        assert isinstance(store, VaultKeyStore)
        published = store.load_public("sig")
        assert published is not None and sorted(published.keys) == [1, 2]
        assert m.ring("sig").public_key(1) == v1_pem  # the forged v1 was not carried over

    # a policy that may do everything but write public keys: the commit lands, with a warning
    hcl = run(url, "vault", "policy", "--operator").output
    hcl += f'path "{kv}/data/public/*" {{\n  capabilities = ["deny"]\n}}\n'
    monkeypatch.setenv("VAULT_TOKEN", token_with(vault_env, "no-publish", hcl))
    with (
        keylife.open(VaultKeyStore.from_url(url), actor="op", clock=clock) as m,
        caplog.at_level(logging.WARNING, logger="keylife.vault.public"),
    ):
        clock.advance(DAY)
        assert m.rotate("sig").number == 3
        assert m.ring("sig").primary().number == 3
    assert "public keys of sig not published" in caplog.text
