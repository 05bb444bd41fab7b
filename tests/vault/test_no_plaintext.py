"""Vault's storage holds no plaintext key material: search the Raft data directory and every KV
response for the key bytes (raw, hex, base64)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import keylife
from keylife.vault import index as vault_index
from keylife.vault import open_store
from tests.vault.conftest import RaftCluster, http

pytestmark = pytest.mark.vault

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def private_part(secret: bytes) -> bytes:
    """The secret bytes of a key: a private key's private value (an EC key's PKCS#8 DER ends
    with its public point, which the store publishes at ``public/<ring>`` for verifiers), a
    secret key itself."""
    try:
        key = serialization.load_der_private_key(secret, None)
    except (ValueError, TypeError):
        return secret
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.private_numbers().private_value.to_bytes(66, "big").lstrip(b"\0")
    if isinstance(key, rsa.RSAPrivateKey):
        d = key.private_numbers().d
        return d.to_bytes((d.bit_length() + 7) // 8, "big")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.private_bytes_raw()
    return secret


def needles(secret: bytes) -> list[bytes]:
    """Forms key bytes could take in storage or in JSON: 16-byte windows from the secret's
    random part (PKCS#8 DER starts with a header shared by every key of a type, and a private
    key's public half is public: the private value is searched), raw, hex, and base64 in both
    alphabets at each 3-byte alignment."""
    secret = private_part(secret)
    out = []
    for start in (len(secret) - 16, len(secret) // 2):
        part = secret[start : start + 16]
        out += [part, part.hex().encode()]
    for shift in range(3):
        chunk = secret[len(secret) - 27 + shift : len(secret) - 3 + shift]
        out += [base64.b64encode(chunk)[:16], base64.urlsafe_b64encode(chunk)[:16]]
    return out


def find(haystacks: Iterable[tuple[str, bytes]], secrets: list[bytes]) -> list[str]:
    # the needles once per secret: parsing an RSA private key (with its consistency check)
    # costs a tenth of a second or more, and there are hundreds of haystacks
    every = [n for secret in secrets for n in needles(secret)]
    return [where for where, data in haystacks if any(n in data for n in every)]


def kv_dump(addr: str, token: str, mount: str, prefix: str = "") -> list[tuple[str, bytes]]:
    status, body = http("LIST", f"{addr}/v1/{mount}/metadata/{prefix}", token)
    if status == 404:
        return []
    out = []
    for key in body["data"]["keys"]:
        if key.endswith("/"):
            out += kv_dump(addr, token, mount, prefix + key)
        else:
            status, doc = http("GET", f"{addr}/v1/{mount}/data/{prefix}{key}", token)
            out.append((f"{mount}/{prefix}{key}", json.dumps(doc).encode()))
            if prefix == "ix/":  # index shards travel compressed: search them decoded too
                shard = vault_index.decode(doc["data"]["data"])
                assert shard["rings"], key
                out.append((f"{mount}/{prefix}{key} (decoded)", json.dumps(shard).encode()))
    return out


def test_no_plaintext_in_raft_storage_or_kv(
    raft1: RaftCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", raft1.token)
    addr = raft1.nodes[0].addr
    url = f"vault://{addr.split('://')[1]}/keylife"
    clock = keylife.FixedClock(T0)
    m = keylife.KeyManager(open_store(url, create=True), actor="t", clock=clock)
    try:
        for spec, purpose in [
            ("aes-256", "data-encryption"),
            ("ec-p256", "signing"),
            ("ed25519", "signing"),
            ("rsa-3072", "signing"),
            ("hmac-sha256", "authentication"),
        ]:
            m.create_ring(f"r-{spec}", spec, purpose)
            clock.advance(dt.timedelta(hours=1))
            m.rotate(f"r-{spec}")
        items = m.store.material_items()  # type: ignore[attr-defined]
    finally:
        m.close()
    secrets = [plain for _r, _v, plain in items]
    assert len(secrets) == 10 and all(len(s) >= 16 for s in secrets)

    # every KV document, as the API returns it
    dump = kv_dump(addr, raft1.token, "keylife")
    assert len(dump) >= 10 + 5
    assert any(where.endswith("(decoded)") for where, _d in dump)  # the index was searched
    assert find(dump, secrets) == []
    # the search works: the same dump with one key planted is caught
    planted = [
        *dump,
        ("planted", json.dumps({"k": base64.b64encode(secrets[3]).decode()}).encode()),
    ]
    assert find(planted, secrets) == ["planted"]

    raft1.stop_all()  # flush and close the files
    files = [p for p in raft1.nodes[0].data.rglob("*") if p.is_file()]
    assert any(p.name == "raft.db" for p in files)
    data = [(str(p), p.read_bytes()) for p in files]
    assert sum(len(d) for _w, d in data) > 10_000
    assert find(data, secrets) == []
