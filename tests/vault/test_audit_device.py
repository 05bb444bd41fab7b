"""Vault's file audit device (declared in the server config, as docs/vault.md shows) records
keylife's requests, with request/response data HMAC'd: no key material in clear."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import keylife
from keylife.vault import open_store
from tests.vault.conftest import DevServer, start_dev, stop

pytestmark = pytest.mark.vault


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[DevServer]:
    log = tmp_path / "audit.log"
    server = start_dev(
        tmp_path,
        config=f"""
audit "file" "keylife-file" {{
  description = "Vault access log beside keylife's own audit log"
  options {{ file_path = "{log}" }}
}}
""",
    )
    server.audit_log = log
    try:
        yield server
    finally:
        stop(server.proc)


def test_file_audit_device_records_keylife_without_secrets(
    audited: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", audited.token)
    tag = uuid.uuid4().hex[:8]
    url = audited.store_url(f"kl-{tag}", f"tr-{tag}")
    with keylife.open(open_store(url, create=True), actor="alice") as m:
        m.create_ring("web", "aes-256", "data-encryption")
        secret = m.ring("web").primary().material.reveal()
    assert audited.audit_log is not None
    lines = [json.loads(x) for x in audited.audit_log.read_text().splitlines() if x.strip()]
    paths = {(e["type"], e["request"]["path"]) for e in lines if "request" in e}
    assert ("request", f"tr-{tag}/encrypt/keylife") in paths
    assert ("response", f"kl-{tag}/data/rings/web") in paths
    encrypts = [
        e
        for e in lines
        if e["type"] == "response" and e["request"]["path"].endswith("/encrypt/keylife")
    ]
    assert encrypts and encrypts[0]["request"]["data"]["plaintext"].startswith("hmac-sha256:")
    assert encrypts[0]["auth"]["policy_results"]["allowed"] is True
    text = audited.audit_log.read_text()
    assert base64.b64encode(secret).decode()[:16] not in text
    assert secret.hex()[:16] not in text
    assert audited.token not in text  # tokens are HMAC'd too
