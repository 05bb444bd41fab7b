"""Vault over TLS (issue 17 item 1): ``bao server -dev -dev-tls`` and its own CA.

The CA is honoured from ``VAULT_CACERT`` and from ``cacert=``, and it is *pinned*: with
``REQUESTS_CA_BUNDLE`` trusting the server, a ``VAULT_CACERT`` naming another CA is refused.
``VAULT_SKIP_VERIFY`` is refused with one logged warning; verification stays on.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keylife.errors import StoreError, StoreUnavailableError
from keylife.vault import VaultKeyStore, open_store
from keylife.vault.transport import Connections
from tests.rings import fresh_ring
from tests.vault.conftest import DevServer, start_dev, stop
from tests.vault.helpers import keylife_cmd
from tests.vault.tunnel import tunnel_proxy

pytestmark = pytest.mark.vault

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture(scope="module")
def bao_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_dev(tmp_path_factory.mktemp("bao-tls"), tls=True)
    try:
        yield server
    finally:
        stop(server.proc)


@pytest.fixture
def tls_env(
    monkeypatch: pytest.MonkeyPatch, bao_tls: DevServer, tmp_path: Path
) -> tuple[DevServer, str]:
    """Environment for the TLS server, without a CA set; returns (server, fresh store URL)."""
    for key in list(os.environ):
        if key.startswith(("VAULT_", "BAO_", "KEYLIFE_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VAULT_TOKEN", bao_tls.token)
    monkeypatch.setenv("KEYLIFE_VAULT_DEADLINE", "5")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_BUNDLE)
    tag = uuid.uuid4().hex[:10]
    return bao_tls, bao_tls.store_url(f"kl-{tag}", f"tr-{tag}")


def other_ca(path: Path) -> str:
    """A CA certificate that did not sign the server's certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the Vault CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def round_trip(url: str) -> None:
    """Set up, commit a ring, read it back."""
    with open_store(url, create=True) as store:
        now = dt.datetime.now(dt.UTC)
        ring, material = fresh_ring(
            "over-tls",
            "ec-p256",
            "signing",
            created=now,
            deactivation=now + dt.timedelta(days=30),
            actor="test",
        )
        store.commit(ring, expected_revision=0, materials={1: material})
        loaded = store.load_ring("over-tls")
        assert loaded is not None and loaded.revision == 1


def test_vault_cacert_is_honoured(
    tls_env: tuple[DevServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = tls_env
    assert server.cafile is not None
    monkeypatch.setenv("VAULT_CACERT", server.cafile)
    round_trip(url)


def test_through_an_http_proxy_the_tunnel_carries_tls_end_to_end(
    tls_env: tuple[DevServer, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """HTTPS_PROXY=http://...: keylife's own connections ask the proxy for a CONNECT tunnel,
    send the proxy's credentials to the proxy only, and verify Vault's certificate through it."""
    server, url = tls_env
    assert server.cafile is not None
    monkeypatch.setenv("VAULT_CACERT", server.cafile)
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with tunnel_proxy() as (proxy, seen):
        monkeypatch.setenv("HTTPS_PROXY", proxy.replace("://", "://ops:p%40ss@"))
        round_trip(url)
        with VaultKeyStore.from_url(url) as store:
            assert isinstance(store.client._transport(server.addr), Connections)
    authority = server.addr.split("://", 1)[1]
    assert seen and all(h.startswith(f"CONNECT {authority} HTTP/1.1".encode()) for h in seen)
    assert all(b"Proxy-Authorization: Basic b3BzOnBAc3M=" in h for h in seen)  # ops:p@ss
    # with another CA pinned, the tunnel does not weaken verification
    monkeypatch.setenv("VAULT_CACERT", other_ca(tmp_path / "other-ca.pem"))
    with tunnel_proxy() as (proxy, seen):
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        with pytest.raises(StoreUnavailableError, match=r"other-ca\.pem"):
            open_store(url, create=True)
    assert seen  # the refusal came through the tunnel


def test_cacert_option_is_honoured(tls_env: tuple[DevServer, str]) -> None:
    server, url = tls_env
    round_trip(f"{url}&cacert={server.cafile}")


def test_cli_setup_with_vault_cacert(tls_env: tuple[DevServer, str], tmp_path: Path) -> None:
    server, url = tls_env
    env = dict(os.environ, VAULT_CACERT=str(server.cafile))
    done = subprocess.run(
        keylife_cmd("--store", url, "vault", "setup"),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_missing_ca_file_is_named(
    tls_env: tuple[DevServer, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _server, url = tls_env
    missing = str(tmp_path / "nonexistent-ca.pem")
    monkeypatch.setenv("VAULT_CACERT", missing)
    with pytest.raises(StoreError, match=r"nonexistent-ca\.pem.*VAULT_CACERT"):
        VaultKeyStore.from_url(url)
    with pytest.raises(StoreError, match=r"nonexistent-ca\.pem.*cacert="):
        VaultKeyStore.from_url(f"{url}&cacert={missing}")


def test_wrong_ca_refused_although_requests_bundle_trusts_the_server(
    tls_env: tuple[DevServer, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server, url = tls_env
    assert server.cafile is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.cafile)  # would trust the server
    wrong = other_ca(tmp_path / "other-ca.pem")
    monkeypatch.setenv("VAULT_CACERT", wrong)
    with pytest.raises(StoreUnavailableError, match=r"other-ca\.pem"):
        open_store(url, create=True)
    monkeypatch.delenv("VAULT_CACERT")
    with pytest.raises(StoreUnavailableError, match="not trusted"):
        open_store(f"{url}&cacert={wrong}", create=True)


def test_skip_verify_keeps_verifying_and_says_why(
    tls_env: tuple[DevServer, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    _server, url = tls_env
    monkeypatch.setenv("VAULT_SKIP_VERIFY", "1")
    with (
        caplog.at_level(logging.WARNING, logger="keylife.vault"),
        pytest.raises(StoreUnavailableError, match="not trusted by the system CAs"),
    ):
        open_store(url, create=True)
    assert [r.getMessage() for r in caplog.records if "SKIP_VERIFY" in r.getMessage()] != []
    # the CLI: one warning line, and still verifying (the server's CA is not trusted)
    done = subprocess.run(
        keylife_cmd("--store", url, "vault", "status"),
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    warnings = [ln for ln in done.stderr.splitlines() if ln.lower().startswith("keylife: warning")]
    assert len(warnings) == 1 and "not honoured" in warnings[0], done.stderr


def test_vault_status_shows_tls_settings(tls_env: tuple[DevServer, str], tmp_path: Path) -> None:
    server, url = tls_env
    env = dict(os.environ, VAULT_CACERT=str(server.cafile))
    done = subprocess.run(
        keylife_cmd("--json", "--store", url, "vault", "status"),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["address"] == server.addr
    assert doc["tls"]["https"] is True and doc["tls"]["verify"] is True
    assert doc["tls"]["ca_file"] == str(Path(str(server.cafile)).resolve())
    assert doc["server"]["version"] and doc["server"]["sealed"] is False
    assert doc["token"]["accessor"] and doc["token"]["display_name"] == "token"
    assert doc["ha"]["enabled"] is False
    assert server.token not in done.stdout
