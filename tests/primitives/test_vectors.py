"""The test vectors of docs/formats.md, checked twice: with plain ``cryptography`` following
the documented layout byte by byte (as another implementation would), and through a ring
holding the vector's key, decrypting the vector and encrypting again with the nonce injected
through the one internal seam (``keylife.primitives.random_bytes``)."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import keylife
from keylife import primitives, streaming
from keylife.keygen import private_key_material
from keylife.material import KeyMaterial
from keylife.specs import parse_spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "formats.md"
VECTORS: dict[str, dict[str, Any]] = json.loads(
    re.search(r"```json\n(.*?)```", DOC.read_text(), re.S).group(1)  # type: ignore[union-attr]
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def stream_plaintext() -> bytes:
    return bytes(i % 251 for i in range(10000))


def ad_for(label: bytes, ring: str, head: bytes, extra: bytes = b"") -> bytes:
    name = ring.encode()
    return label + b"\x00" + len(name).to_bytes(2, "big") + name + head + extra


# ---- by hand, from the documented layout -------------------------------------------------


@pytest.mark.parametrize("name", ["message-aes-256-gcm", "message-chacha20-poly1305"])
def test_message_by_hand(name: str) -> None:
    v = VECTORS[name]
    blob = h(v["blob"])
    head = bytes([1]) + v["version"].to_bytes(4, "big")
    assert blob[:5] == head and blob[5:17] == h(v["nonce"])
    ad = ad_for(b"keylife/message/v1", v["ring"], head, h(v["associated_data"]))
    if "aead_associated_data" in v:
        assert ad == h(v["aead_associated_data"])
    cipher = AESGCM(h(v["key"])) if v["spec"].startswith("aes") else ChaCha20Poly1305(h(v["key"]))
    assert cipher.decrypt(blob[5:17], blob[17:], ad) == h(v["plaintext"])


def test_wrapped_key_by_hand() -> None:
    v = VECTORS["wrapped-key-aes-256-gcm"]
    blob = h(v["blob"])
    head = bytes([3]) + v["version"].to_bytes(4, "big")
    ad = ad_for(b"keylife/wrap/v1", v["ring"], head)
    assert AESGCM(h(v["key"])).decrypt(blob[5:17], blob[17:], ad) == h(v["plaintext"])


def test_stream_by_hand() -> None:
    v = VECTORS["stream-aes-256-gcm"]
    plain = stream_plaintext()
    head = h(v["header"])
    info = ad_for(b"keylife/stream/v1", v["ring"], head)
    key = HKDF(hashes.SHA256(), 32, h(v["salt"]), info).derive(h(v["key"]))
    out = [head]
    size = v["segment_size"]
    chunks = [plain[i : i + size] for i in range(0, len(plain), size)]
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        nonce = h(v["nonce_prefix"]) + i.to_bytes(4, "big") + (b"\x01" if last else b"\x00")
        out.append(AESGCM(key).encrypt(nonce, chunk, b""))
    data = b"".join(out)
    assert len(data) == v["length"]
    assert data[-40:] == h(v["last_40_bytes"])
    assert hashlib.sha256(data).hexdigest() == v["sha256"]


def test_mac_and_signature_by_hand() -> None:
    v = VECTORS["mac-hmac-sha256"]
    mac = hmac.HMAC(h(v["key"]), hashes.SHA256())
    mac.update(h(v["data"]))
    assert h(v["blob"]) == b"\x06" + (1).to_bytes(4, "big") + mac.finalize()
    s = VECTORS["signature-ed25519"]
    key = ed25519.Ed25519PrivateKey.from_private_bytes(h(s["key"]))
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert key.public_key().public_bytes(*raw) == h(s["public_key"])
    key.public_key().verify(h(s["blob"])[5:], h(s["data"]))
    assert h(s["blob"]) == b"\x05" + (1).to_bytes(4, "big") + key.sign(h(s["data"]))


# ---- through a ring holding the vector's key --------------------------------------------------


def ring_with(m: keylife.KeyManager, v: dict[str, Any], purpose: str) -> keylife.KeyRing:
    """Ring ``v["ring"]`` whose version ``v["version"]`` holds the vector's key."""
    spec = parse_spec(v["spec"])
    if spec.name == "ed25519":
        material = private_key_material(
            ed25519.Ed25519PrivateKey.from_private_bytes(h(v["key"])), spec
        )
    else:
        material = KeyMaterial(h(v["key"]), spec)
    number = v["version"]
    if number == 1:
        m.create_ring(v["ring"], purpose=purpose, material=material)
    else:
        m.create_ring(v["ring"], spec.name, purpose)
        for _ in range(number - 2):
            m.rotate(v["ring"])
        m.add_version(v["ring"], material)
    ring = m.ring(v["ring"])
    assert ring.primary().number == number
    return ring


def inject(monkeypatch: pytest.MonkeyPatch, **by_size: bytes) -> None:
    table = {len(value): value for value in by_size.values()}
    monkeypatch.setattr(primitives, "random_bytes", lambda n: table[n])
    monkeypatch.setattr(primitives, "nonce_bytes", lambda n: table[n])


@pytest.mark.parametrize("name", ["message-aes-256-gcm", "message-chacha20-poly1305"])
def test_message_through_the_ring(manager, monkeypatch, name: str) -> None:
    v = VECTORS[name]
    ring = ring_with(manager, v, "data-encryption")
    ad = h(v["associated_data"])
    assert ring.decrypt(h(v["blob"]), ad) == h(v["plaintext"])
    inject(monkeypatch, nonce=h(v["nonce"]))
    assert ring.encrypt(h(v["plaintext"]), ad) == h(v["blob"])


def test_wrapped_key_through_the_ring(manager, monkeypatch) -> None:
    v = VECTORS["wrapped-key-aes-256-gcm"]
    ring = ring_with(manager, v, "key-wrapping")
    assert ring.unwrap(h(v["blob"])).reveal() == h(v["plaintext"])
    inject(monkeypatch, nonce=h(v["nonce"]))
    assert ring.wrap(h(v["plaintext"])) == h(v["blob"])


def test_stream_through_the_ring(manager, monkeypatch) -> None:
    v = VECTORS["stream-aes-256-gcm"]
    ring = ring_with(manager, v, "data-encryption")
    inject(monkeypatch, salt=h(v["salt"]), prefix=h(v["nonce_prefix"]))
    monkeypatch.setattr(streaming, "SEGMENT_SIZE", v["segment_size"])
    out = io.BytesIO()
    ring.encrypt_stream(io.BytesIO(stream_plaintext()), out)
    data = out.getvalue()
    assert data[:32] == h(v["header"]) and hashlib.sha256(data).hexdigest() == v["sha256"]
    back = io.BytesIO()
    assert ring.decrypt_stream(io.BytesIO(data), back) == 10000
    assert back.getvalue() == stream_plaintext()


def test_mac_and_signature_through_the_ring(manager) -> None:
    v = VECTORS["mac-hmac-sha256"]
    ring = ring_with(manager, v, "authentication")
    assert ring.mac(h(v["data"])) == h(v["blob"])
    assert ring.verify_mac(h(v["data"]), h(v["blob"])) == "webhooks:v1"
    s = VECTORS["signature-ed25519"]
    signing = ring_with(manager, s, "signing")
    assert signing.sign(h(s["data"])) == h(s["blob"])
    assert signing.verify(h(s["data"]), h(s["blob"])) == "releases:v1"
