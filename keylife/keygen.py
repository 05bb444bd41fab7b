"""Key generation, loading and fingerprints, through ``cryptography``."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from typing import TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519

from .errors import FingerprintMismatchError
from .material import KeyMaterial
from .published import spki_fingerprint
from .specs import KeyKind, KeySpec

PrivateKey: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | x25519.X25519PrivateKey
)

_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "secp256r1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
}


def generate_private_key(spec: KeySpec) -> PrivateKey:
    """A new private key object for an asymmetric spec."""
    if spec.kind is KeyKind.RSA:
        return rsa.generate_private_key(public_exponent=65537, key_size=spec.key_bits)
    if spec.kind is KeyKind.EC:
        assert spec.curve is not None
        return ec.generate_private_key(_CURVES[spec.curve]())
    if spec.kind is KeyKind.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if spec.kind is KeyKind.ED448:
        return ed448.Ed448PrivateKey.generate()
    if spec.kind is KeyKind.X25519:
        return x25519.X25519PrivateKey.generate()
    raise ValueError(f"{spec.name} is a secret-key spec, not a private key")


def private_key_material(key: PrivateKey, spec: KeySpec) -> KeyMaterial:
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    material = KeyMaterial(der, spec)
    # Fingerprint from the key object we already hold: re-parsing the DER later to reach the
    # public key cost more than generating an EC key (keygen was 2.6x direct cryptography).
    material._fingerprint = _spki_fingerprint(key)
    return material


def _spki_fingerprint(key: PrivateKey) -> str:
    return _spki_hash(key.public_key().public_bytes(_DER, _SPKI))


#: SubjectPublicKeyInfo (public data) of the keys fingerprinted in this process, by
#: fingerprint, the oldest dropped past the bound: a publisher builds the verifiers' document
#: from them without reading the previous one back (keylife.vault.public).
_SEEN: dict[str, bytes] = {}
_SEEN_MAX = 16384
_SEEN_LOCK = threading.Lock()


def _spki_hash(spki: bytes) -> str:
    fingerprint = spki_fingerprint(spki)
    with _SEEN_LOCK:
        if fingerprint not in _SEEN and len(_SEEN) >= _SEEN_MAX:
            del _SEEN[next(iter(_SEEN))]
        _SEEN[fingerprint] = spki
    return fingerprint


def seen_spki(fingerprint: str) -> bytes | None:
    """The SubjectPublicKeyInfo (DER) of a key this process fingerprinted (generated,
    unsealed, checked) whose fingerprint is ``fingerprint``; None when not seen lately."""
    return _SEEN.get(fingerprint)


_FAST: dict[str, Callable[[], PrivateKey]] = {
    "ec-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ec-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ec-p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "ed448": ed448.Ed448PrivateKey.generate,
    "x25519": x25519.X25519PrivateKey.generate,
}
_DER = serialization.Encoding.DER
_PKCS8 = serialization.PrivateFormat.PKCS8
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
_NO_ENCRYPTION = serialization.NoEncryption()


def generate(spec: KeySpec) -> KeyMaterial:
    """Generate key material for ``spec`` (policy checks happen before, in the manager)."""
    fast = _FAST.get(spec.name)
    if fast is not None:  # the hot path: one dict lookup, no enum dispatch (benchmarked)
        key = fast()
        material = KeyMaterial(key.private_bytes(_DER, _PKCS8, _NO_ENCRYPTION), spec)
        material._fingerprint = _spki_fingerprint(key)
        return material
    if spec.symmetric:
        return KeyMaterial(os.urandom(spec.key_bits // 8), spec)
    return private_key_material(generate_private_key(spec), spec)


def load_private_key(material: KeyMaterial) -> PrivateKey:
    """The ``cryptography`` private key object held by ``material``."""
    key = serialization.load_der_private_key(material.reveal(), password=None)
    if not isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey
        | x25519.X25519PrivateKey,
    ):
        raise TypeError(f"unsupported private key type {type(key).__name__}")
    return key


def fingerprint(material: KeyMaterial) -> str:
    """Public identifier of a key version.

    Asymmetric keys: ``sha256:`` + hex SHA-256 of the DER SubjectPublicKeyInfo.
    Secret keys: ``kcv:`` + a key check value, the first 8 bytes of HMAC-SHA-256 under the key
    of a fixed label; it identifies the key without revealing it.
    """
    if material.spec.symmetric:
        mac = hmac.new(material.reveal(), b"keylife key check value", hashlib.sha256)
        return "kcv:" + mac.hexdigest()[:16]
    if material._fingerprint is None:
        material._fingerprint = _spki_fingerprint(load_private_key(material))
    return material._fingerprint


def _fast_fingerprint(material: KeyMaterial) -> str:
    """:func:`fingerprint` without RSA's private-key consistency check: the public half is
    read from the PKCS#8 document as stored (tens of microseconds, where the checked load of
    an RSA-4096 key takes a quarter of a second). The full check still runs when the key is
    used."""
    if material.spec.symmetric or material._fingerprint is not None:
        return fingerprint(material)
    key = serialization.load_der_private_key(
        material.reveal(), password=None, unsafe_skip_rsa_key_validation=True
    )
    material._fingerprint = _spki_hash(key.public_key().public_bytes(_DER, _SPKI))
    return material._fingerprint


def check_fingerprint(material: KeyMaterial, expected: str, ring: str, version: int) -> None:
    """Refuse unsealed ``material`` that is not the key ring ``ring`` v``version`` records
    (``expected``, its fingerprint): a sealed blob swapped with another version's or another
    store's. Cheap (a key check value, or the public half's hash); never shows the material."""
    try:
        actual = _fast_fingerprint(material)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        actual = ""
    if actual != expected:
        raise FingerprintMismatchError(
            f"{ring} v{version}'s material does not match the fingerprint its ring records "
            "(a sealed blob swapped from another version or store); restore it from a backup: "
            f"`keylife restore ARCHIVE --ring {ring} --version {version}`",
            ring=ring,
            version=version,
        )
