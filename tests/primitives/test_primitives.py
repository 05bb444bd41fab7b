"""Each ring operation on the embedded store: what it returns, what it refuses, and that usage
follows the state (only the primary protects; others process inside their window)."""

from __future__ import annotations

import io
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import keylife
from keylife import errors
from keylife.loaded import DecryptOnly
from keylife.material import KeyMaterial
from keylife.rotation import run as rotate_run

from .conftest import DAY

SIGNING = ["sig-p256", "sig-p384", "sig-p521", "sig-ed", "sig-rsa"]


def test_encrypt_decrypt_binds_ring_and_associated_data(rings) -> None:
    orders, invoices = rings.ring("orders"), rings.ring("invoices")
    box = orders.encrypt(b"card 4111", b"order-42")
    assert box[0] == 1 and int.from_bytes(box[1:5], "big") == 1 and len(box) == 17 + 9 + 16
    assert orders.encrypt(b"card 4111", b"order-42") != box  # a fresh nonce every time
    assert orders.decrypt(box, b"order-42") == b"card 4111"
    with pytest.raises(errors.DecryptionError) as info:
        orders.decrypt(box, b"order-43")
    assert info.value.ring == "orders" and "4111" not in str(info.value)
    with pytest.raises(errors.DecryptionError):
        invoices.decrypt(box, b"order-42")  # same version number, other ring
    assert rings.ring("chacha").decrypt(rings.ring("chacha").encrypt(b"x")) == b"x"


def test_operations_refuse_the_wrong_kind_of_ring(rings) -> None:
    with pytest.raises(errors.KeyUsageError, match="data-encryption"):
        rings.ring("kek").encrypt(b"x")
    with pytest.raises(errors.KeyUsageError, match="signing"):
        rings.ring("orders").sign(b"x")
    with pytest.raises(errors.KeyUsageError):
        rings.ring("sig-p256").mac(b"x")
    with pytest.raises(errors.KeyUsageError):
        rings.ring("orders").wrap(b"k" * 32)
    with pytest.raises(errors.KeyUsageError):
        rings.ring("webhooks").public_keys()
    with pytest.raises(errors.KeyUsageError):
        rings.ring("kek").data_key("ec-p256")


def test_rotation_old_versions_process_until_their_window_ends(rings, clock) -> None:
    orders = rings.ring("orders")
    old = orders.encrypt(b"v1 data")
    clock.advance(10 * DAY)
    rings.rotate("orders")
    new = orders.encrypt(b"v2 data")
    assert orders.version_of(new) == 2 and orders.version_of(old) == 1
    assert orders.decrypt(old) == b"v1 data" and orders.decrypt(new) == b"v2 data"
    clock.advance(1095 * DAY)  # the data-encryption grace period
    with pytest.raises(errors.MaterialUnavailableError, match="orders v1 is deactivated"):
        orders.decrypt(old)
    assert orders.decrypt(new) == b"v2 data"


def test_suspended_compromised_destroyed_and_unknown_versions(rings) -> None:
    orders = rings.ring("orders")
    v1 = orders.encrypt(b"one")
    rings.rotate("orders")
    v2 = orders.encrypt(b"two")
    rings.suspend("orders", 2)
    with pytest.raises(errors.MaterialUnavailableError, match="suspended"):
        orders.decrypt(v2)
    with pytest.raises(errors.MaterialUnavailableError, match="no active version"):
        orders.encrypt(b"nothing protects now")
    rings.resume("orders", 2)
    rings.compromise("orders", version=2, occurred_at=rings.now())
    with pytest.raises(errors.MaterialUnavailableError, match="compromised"):
        orders.decrypt(v2)
    assert orders.version_of(orders.encrypt(b"three")) == 3
    rings.destroy("orders", 1)
    assert orders.decrypt(v1) == b"one"  # scheduled: still readable
    rotate_run(rings, now=rings.now() + rings.policy.destroy_wait)
    with pytest.raises(keylife.KeylifeError):
        orders.decrypt(v1)
    unknown = bytes([1]) + (99).to_bytes(4, "big") + v1[5:]
    with pytest.raises(errors.DecryptionError):
        orders.decrypt(unknown)


def test_usage_follows_the_state(rings) -> None:
    signing = rings.ring("sig-p256")
    assert isinstance(signing.primary().key, ec.EllipticCurvePrivateKey)
    rings.rotate("sig-p256")
    rings.rotate("orders")
    rings.rotate("webhooks")
    old = signing.version(1)
    assert not old.protects and signing.version(2).protects
    with pytest.raises(errors.MaterialUnavailableError, match="not the primary"):
        old.key  # noqa: B018
    assert isinstance(old.public_key(), ec.EllipticCurvePublicKey)
    aead = rings.ring("orders").version(1).aead()
    assert isinstance(aead, DecryptOnly) and not hasattr(aead, "encrypt")
    with pytest.raises(errors.MaterialUnavailableError):
        rings.ring("webhooks").version(1).hmac()
    assert "redacted" in repr(KeyMaterial(b"k" * 32, keylife.parse_spec("aes-256")))


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 3 * 65536 + 5])
def test_stream_round_trip(rings, size: int) -> None:
    orders = rings.ring("orders")
    data = bytes(i % 256 for i in range(size))
    out = io.BytesIO()
    written = orders.encrypt_stream(io.BytesIO(data), out, b"backup-7")
    assert written == len(out.getvalue()) == 32 + size + 16 * max(1, -(-size // 65536))
    back = io.BytesIO()
    assert orders.decrypt_stream(io.BytesIO(out.getvalue()), back, b"backup-7") == size
    assert back.getvalue() == data


def _stream(rings, size: int = 3 * 65536 + 100) -> bytes:
    out = io.BytesIO()
    rings.ring("orders").encrypt_stream(io.BytesIO(b"s" * size), out)
    return out.getvalue()


def test_stream_defects_are_detected(rings) -> None:
    orders = rings.ring("orders")
    data = _stream(rings)
    seg = 65536 + 16
    segments = [data[32 + i * seg : 32 + (i + 1) * seg] for i in range(4)]
    swapped = data[:32] + segments[1] + segments[0] + segments[2] + segments[3]
    cut = data[:32] + b"".join(segments[:3])  # drops the last segment
    appended = data + segments[3]
    other_ad = data
    for bad, ad in (
        (swapped, b""),
        (cut, b""),
        (appended, b""),
        (other_ad, b"x"),
        (data[:-1], b""),
    ):
        with pytest.raises(errors.DecryptionError):
            orders.decrypt_stream(io.BytesIO(bad), io.BytesIO(), ad)
    with pytest.raises(errors.DecryptionError):
        rings.ring("invoices").decrypt_stream(io.BytesIO(data), io.BytesIO())


@pytest.mark.parametrize("name", SIGNING)
def test_sign_verify_with_kid(rings, name: str) -> None:
    ring = rings.ring(name)
    signature = ring.sign(b"invoice 42")
    assert signature[0] == 5 and ring.verify(b"invoice 42", signature) == f"{name}:v1"
    with pytest.raises(errors.InvalidSignatureError):
        ring.verify(b"invoice 43", signature)
    other = "sig-p256" if name != "sig-p256" else "sig-p384"
    with pytest.raises(errors.InvalidSignatureError):
        rings.ring(other).verify(b"invoice 42", signature)
    rings.rotate(name)
    assert ring.verify(b"invoice 42", signature) == f"{name}:v1"
    assert ring.verify(b"x", ring.sign(b"x")) == f"{name}:v2"


def test_verify_refuses_versions_past_their_window(rings, clock) -> None:
    ring = rings.ring("sig-ed")
    signature = ring.sign(b"doc")
    rings.rotate("sig-ed")
    assert set(ring.public_keys()) == {"sig-ed:v1", "sig-ed:v2"}
    clock.advance(366 * DAY)  # signing grace period: 365 days
    with pytest.raises(errors.MaterialUnavailableError):
        ring.verify(b"doc", signature)
    assert set(ring.public_keys()) == {"sig-ed:v2"}
    assert [k["kid"] for k in ring.jwks()["keys"]] == ["sig-ed:v2"]


def test_mac_and_verify_mac(rings) -> None:
    ring = rings.ring("webhooks")
    tag = ring.mac(b"payload")
    assert tag[0] == 6 and len(tag) == 5 + 32
    assert ring.verify_mac(b"payload", tag) == "webhooks:v1"
    with pytest.raises(errors.InvalidSignatureError):
        ring.verify_mac(b"payload!", tag)
    rings.rotate("webhooks")
    assert ring.verify_mac(b"payload", tag) == "webhooks:v1"
    assert ring.verify_mac(b"p", ring.mac(b"p")) == "webhooks:v2"


@pytest.mark.parametrize("name", ["kek", "kek-rsa"])
def test_wrap_unwrap_data_key_and_rewrap(rings, name: str) -> None:
    ring = rings.ring(name)
    plain, wrapped = ring.data_key()
    assert isinstance(plain, KeyMaterial) and len(plain) == 32 and "redacted" in repr(plain)
    assert ring.unwrap(wrapped) == plain
    chacha, wrapped_chacha = ring.data_key("chacha20")
    assert ring.unwrap(wrapped_chacha, "chacha20") == chacha
    rings.rotate(name)
    rewrapped = ring.rewrap(wrapped)
    assert ring.version_of(rewrapped) == 2 and ring.unwrap(rewrapped) == plain
    with pytest.raises(errors.DecryptionError):
        ring.unwrap(wrapped[:-1] + bytes([wrapped[-1] ^ 1]))


def test_rewrap_messages_never_shows_plaintext(rings) -> None:
    orders = rings.ring("orders")
    box = orders.encrypt(b"secret", b"ctx")
    rings.rotate("orders")
    again = orders.rewrap(box, b"ctx")
    assert orders.version_of(again) == 2 and orders.decrypt(again, b"ctx") == b"secret"
    with pytest.raises(errors.DecryptionError):
        orders.rewrap(b"\x07garbage")
    with pytest.raises(errors.DecryptionError):
        rings.ring("invoices").rewrap(box, b"ctx")


def test_public_key_formats(rings) -> None:
    ring = rings.ring("sig-p256")
    pem = ring.public_key(format="pem")
    loaded = serialization.load_pem_public_key(pem)
    assert loaded == ring.primary().public_key()
    assert serialization.load_der_public_key(ring.public_key(format="der")) == loaded
    assert ring.public_key(format="ssh").startswith(b"ecdsa-sha2-nistp256 ")
    jwk = json.loads(ring.public_key(format="jwk"))
    assert jwk["kid"] == "sig-p256:v1" and jwk["alg"] == "ES256" and jwk["use"] == "sig"
    assert "d" not in jwk
    assert json.loads(rings.ring("kek-rsa").public_key(format="jwk"))["alg"] == "RSA-OAEP-256"
    with pytest.raises(errors.NotFoundError):
        ring.public_key(7)


def test_unwrap_keys_of_any_length(rings) -> None:
    for name in ("kek", "kek-rsa"):
        ring = rings.ring(name)
        blob = ring.wrap(b"twenty bytes of key!")
        with pytest.raises(errors.DecryptionError, match="name its spec"):
            ring.unwrap(blob)
        with pytest.raises(errors.KeyUsageError, match="not a aes-256"):
            ring.unwrap(blob, "aes-256")
        assert ring.unwrap(blob, "hmac-sha256:160").reveal() == b"twenty bytes of key!"
        rings.rotate(name)
        assert ring.version_of(ring.rewrap(blob)) == 2
