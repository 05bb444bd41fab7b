"""Transit keys weakened or imported under keylife's nose (issue 17 item 3).

keylife reads exportable, allow_plaintext_backup, deletion_allowed and imported_key on every
read of a transit-resident key and refuses (and reports) a weakened or imported key; the
operator policy cannot change those settings, import, delete, export or back up.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from keylife_cli.main import cli

from keylife.clock import SystemClock
from keylife.errors import TransitKeyWeakenedError
from keylife.vault import VaultKeyStore
from keylife.vault.policy import operator_policy, operator_policy_name
from tests.vault.conftest import DevServer

pytestmark = pytest.mark.vault


def cli_json(url: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["--json", "--store", url, *args])
    return result.exit_code, json.loads(result.stdout)


def import_known_key(env: DevServer, transit: str, name: str, key: bytes) -> None:
    """Transit BYOK: the key wrapped with an ephemeral AES key (KWP), that one with the
    mount's RSA wrapping key (OAEP-SHA256)."""
    status, body = env.api("GET", f"{transit}/wrapping_key")
    assert status == 200, body
    public = serialization.load_pem_public_key(body["data"]["public_key"].encode())
    assert isinstance(public, rsa.RSAPublicKey)
    ephemeral = os.urandom(32)
    wrapped = public.encrypt(
        ephemeral,
        padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
    ) + aes_key_wrap_with_padding(ephemeral, key)
    status, body = env.api(
        "POST",
        f"{transit}/keys/{name}/import",
        {"ciphertext": base64.b64encode(wrapped).decode(), "type": "aes256-gcm96"},
    )
    assert status in (200, 204), body


@pytest.fixture
def ring_url(
    vault_store: VaultKeyStore,
    vault_env: DevServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    monkeypatch.chdir(tmp_path)
    rings = vault_store.transit_rings(actor="ops", clock=SystemClock())
    rings.create("pay")
    rings.create("good")
    return vault_store.url


@pytest.mark.parametrize("setting", ["exportable", "allow_plaintext_backup", "deletion_allowed"])
def test_weakened_key_is_refused_and_reported(
    ring_url: str, vault_env: DevServer, mounts: tuple[str, str], setting: str
) -> None:
    transit = mounts[1]
    status, body = vault_env.api("POST", f"{transit}/keys/kl-pay/config", {setting: True})
    assert status in (200, 204), body
    code, doc = cli_json(ring_url, "vault", "transit", "show", "pay")
    assert code == 1 and doc["error"]["type"] == "TransitKeyWeakenedError", doc
    assert "kl-pay" in doc["error"]["message"] and setting in doc["error"]["message"]
    code, doc = cli_json(ring_url, "vault", "transit", "rotate", "pay")
    assert code == 1 and setting in doc["error"]["message"], doc
    assert vault_env.api("GET", f"{transit}/keys/kl-pay")[1]["data"]["latest_version"] == 1
    code, report = cli_json(ring_url, "rotate", "--dry-run", "--as-of", "2099-01-01T00:00:00Z")
    failed = {r["ring"]: r["error"] for r in report["rings"] if r["status"] == "failed"}
    assert "transit:pay" in failed and setting in failed["transit:pay"], report
    assert "transit:good" not in failed


def test_imported_key_is_refused(
    ring_url: str, vault_env: DevServer, mounts: tuple[str, str], vault_store: VaultKeyStore
) -> None:
    transit = mounts[1]
    # swap kl-pay for a key whose material the attacker knows; tk/pay stays keylife's record
    assert vault_env.api("POST", f"{transit}/keys/kl-pay/config", {"deletion_allowed": True})[
        0
    ] in (200, 204)
    assert vault_env.api("DELETE", f"{transit}/keys/kl-pay")[0] == 204
    import_known_key(vault_env, transit, "kl-pay", os.urandom(32))
    assert vault_env.api("GET", f"{transit}/keys/kl-pay")[1]["data"]["imported_key"] is True
    rings = vault_store.transit_rings(actor="ops", clock=SystemClock())
    with pytest.raises(TransitKeyWeakenedError, match="imported_key") as info:
        rings.show("pay")
    assert info.value.key == "kl-pay" and info.value.settings == ("imported_key",)
    code, doc = cli_json(ring_url, "vault", "transit", "show", "pay")
    assert code == 1 and "imported_key" in doc["error"]["message"], doc


def test_operator_policy_cannot_weaken_or_import(
    vault_store: VaultKeyStore, vault_env: DevServer, mounts: tuple[str, str]
) -> None:
    transit = mounts[1]
    name = operator_policy_name(vault_store)
    assert vault_env.api(
        "POST", f"sys/policies/acl/{name}", {"policy": operator_policy(vault_store)}
    )[0] in (200, 204)
    _status, body = vault_env.api("POST", "auth/token/create", {"policies": [name], "ttl": "10m"})
    token = body["auth"]["client_token"]

    def op(path: str, payload: dict[str, Any] | None = None, method: str = "POST") -> int:
        return int(vault_env.api(method, f"{transit}/{path}", payload, token=token)[0])

    assert op("keys/kl-k", {"type": "aes256-gcm96", "exportable": False}) in (200, 204)
    assert op("keys/kl-k/rotate", {}) in (200, 204)
    assert op("keys/kl-k/config", {"min_decryption_version": 1, "min_encryption_version": 2}) in (
        200,
        204,
    )
    assert op("keys/kl-k/trim", {"min_available_version": 1}) in (200, 204)
    assert op("keys/kl-k", method="GET") == 200
    refused = [
        ("keys/kl-k/config", {"exportable": True}),
        ("keys/kl-k/config", {"allow_plaintext_backup": True}),
        ("keys/kl-k/config", {"deletion_allowed": True}),
        ("keys/kl-k/config", {"auto_rotate_period": "1h"}),
        ("keys/kl-x", {"type": "aes256-gcm96", "exportable": True}),
        ("keys/kl-x", {"type": "aes256-gcm96", "allow_plaintext_backup": True}),
        ("keys/kl-x/import", {"ciphertext": "AAAA", "type": "aes256-gcm96"}),
        ("keys/kl-k/import_version", {"ciphertext": "AAAA"}),
        ("restore/kl-y", {"backup": "AAAA"}),
    ]
    for path, payload in refused:
        assert op(path, payload) == 403, (path, payload)
    assert op("keys/kl-k", method="DELETE") == 403
    assert op("export/encryption-key/kl-k", method="GET") == 403
    assert op("backup/kl-k", method="GET") == 403
    info = vault_env.api("GET", f"{transit}/keys/kl-k")[1]["data"]
    assert not (info["exportable"] or info["allow_plaintext_backup"] or info["deletion_allowed"])
