"""The cryptography behind a ring's operations, one function per primitive, over ``cryptography``
objects and the byte formats of :mod:`keylife.envelope`.

* messages and wrapped keys: AES-GCM or ChaCha20-Poly1305 with a random 96-bit nonce, the
  ring name and blob header bound as associated data (:func:`seal`, :func:`open_sealed`);
* wrapped keys under RSA key-wrapping rings: RSA-OAEP with SHA-256 (MGF1-SHA-256) and the same
  associated data as the OAEP label (:func:`wrap_rsa`, :func:`unwrap_rsa`);
* signatures: Ed25519 / Ed448, ECDSA with SHA-256 (P-256), SHA-384 (P-384) or SHA-512 (P-521)
  in DER, RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (:func:`signer`,
  :func:`verifier`);
* MACs: HMAC with the ring's hash, compared in constant time by ``cryptography``
  (:func:`mac_tag`, :func:`mac_ok`).

Randomness comes from :data:`random_bytes` (``os.urandom``) and, for message nonces,
:data:`nonce_bytes` (``getrandom``), looked up on every call so the test vectors can inject a
fixed nonce; nothing else ever chooses one.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.hmac import HMAC

from . import envelope
from .material import KeyMaterial
from .specs import KeyKind, KeySpec

__all__ = [
    "AEAD",
    "PublicKey",
    "aead",
    "hash_for",
    "mac_ok",
    "mac_tag",
    "nonce_bytes",
    "open_sealed",
    "random_bytes",
    "seal",
    "signer",
    "unwrap_rsa",
    "verifier",
    "wrap_rsa",
]

AEAD: TypeAlias = AESGCM | ChaCha20Poly1305
PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
SigningKey: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)

#: The one source of salts and data keys (a seam for the test vectors only).
random_bytes: Callable[[int], bytes] = os.urandom
#: The source of message nonces (12 bytes): the kernel's CSPRNG through ``getrandom(2)``
#: directly where the platform has it, some 40 ns a call cheaper than ``os.urandom``'s wrapper.
#: The same kernel source, no user-space pool, so a cloned process or VM snapshot never repeats
#: a nonce. Only for sizes up to 256 bytes, which ``getrandom`` never returns short.
nonce_bytes: Callable[[int], bytes] = getattr(os, "getrandom", os.urandom)

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_CURVE_HASH = {"secp256r1": "sha256", "secp384r1": "sha384", "secp521r1": "sha512"}


def hash_for(spec: KeySpec) -> str:
    """The hash a spec signs or MACs with: by curve for ECDSA, SHA-256 for RSA-PSS."""
    if spec.kind is KeyKind.EC and spec.curve is not None:
        return _CURVE_HASH[spec.curve]
    if spec.kind is KeyKind.HMAC and spec.hash_name is not None:
        return spec.hash_name
    return "sha256"


def aead(material: KeyMaterial) -> AEAD:
    """The AEAD object of an AES or ChaCha20 key."""
    kind = material.spec.kind
    if kind is KeyKind.AES:
        return AESGCM(material.reveal())
    if kind is KeyKind.CHACHA20:
        return ChaCha20Poly1305(material.reveal())
    raise TypeError(f"{material.spec.name} is not an AEAD key")


def seal(
    cipher: AEAD,
    fmt: int,
    ring: str,
    version: int,
    plaintext: bytes,
    associated_data: bytes = b"",
    nonce: bytes | None = None,
) -> bytes:
    """A ``fmt`` blob (message or wrapped key): header · nonce · ciphertext and tag."""
    if nonce is None:
        nonce = random_bytes(envelope.NONCE_SIZE)
    ad = envelope.associated_data(fmt, ring, version, associated_data)
    return envelope.header(fmt, version) + nonce + cipher.encrypt(nonce, plaintext, ad)


def open_sealed(
    cipher: AEAD, fmt: int, ring: str, version: int, body: memoryview, associated_data: bytes
) -> bytes:
    """The plaintext of a ``fmt`` blob whose header said ``version`` (``body`` follows the
    header), or the format's opaque error."""
    ad = envelope.associated_data(fmt, ring, version, associated_data)
    try:
        return cipher.decrypt(body[: envelope.NONCE_SIZE], body[envelope.NONCE_SIZE :], ad)
    except InvalidTag:
        raise envelope.refusal(fmt, ring) from None


def _oaep(label: bytes) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=label)


def wrap_rsa(public: rsa.RSAPublicKey, ring: str, version: int, key: bytes) -> bytes:
    """A wrapped key under an RSA key-wrapping ring: header · RSA-OAEP ciphertext."""
    label = envelope.associated_data(envelope.WRAP_RSA, ring, version)
    return envelope.header(envelope.WRAP_RSA, version) + public.encrypt(key, _oaep(label))


def unwrap_rsa(private: rsa.RSAPrivateKey, ring: str, version: int, body: memoryview) -> bytes:
    label = envelope.associated_data(envelope.WRAP_RSA, ring, version)
    if len(body) != private.key_size // 8:
        raise envelope.refusal(envelope.WRAP_RSA, ring)
    try:
        return private.decrypt(bytes(body), _oaep(label))
    except ValueError:
        raise envelope.refusal(envelope.WRAP_RSA, ring) from None


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def signer(key: SigningKey, spec: KeySpec) -> Callable[[bytes], bytes]:
    """A function signing bytes with ``key`` by the spec's scheme (raw signature bytes)."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return key.sign
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = ec.ECDSA(_HASHES[hash_for(spec)]())
        return functools.partial(key.sign, signature_algorithm=algorithm)
    pss, sha256, rsa_key = _pss(), hashes.SHA256(), key
    return lambda data: rsa_key.sign(data, pss, sha256)


def verifier(public: PublicKey, spec: KeySpec) -> Callable[[bytes, bytes], bool]:
    """A function telling whether a raw signature is valid for the data, never raising."""
    check: Callable[[bytes, bytes], None]
    if isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        check = public.verify
    elif isinstance(public, ec.EllipticCurvePublicKey):
        algorithm = ec.ECDSA(_HASHES[hash_for(spec)]())
        ec_pub = public

        def check(signature: bytes, data: bytes) -> None:
            ec_pub.verify(signature, data, algorithm)

    else:
        pss, sha256, rsa_pub = _pss(), hashes.SHA256(), public

        def check(signature: bytes, data: bytes) -> None:
            rsa_pub.verify(signature, data, pss, sha256)

    def ok(data: bytes, signature: bytes) -> bool:
        try:
            check(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True

    return ok


def mac_tag(key: bytes, hash_name: str, data: bytes) -> bytes:
    """HMAC of ``data``."""
    h = HMAC(key, _HASHES[hash_name]())
    h.update(data)
    return h.finalize()


def mac_ok(key: bytes, hash_name: str, data: bytes, tag: bytes) -> bool:
    """Whether ``tag`` is the HMAC of ``data`` (constant-time comparison)."""
    h = HMAC(key, _HASHES[hash_name]())
    h.update(data)
    try:
        h.verify(tag)
    except InvalidSignature:
        return False
    return True
