"""Bring your own key: parse outside key material and prove it is what it claims to be.

:func:`parse_key` takes the bytes of a PEM or DER private key (PKCS#8, or the traditional RSA
and EC formats) or raw secret-key bytes, and the declared type. The material's real algorithm,
size or curve must equal the declared spec; secret keys must have exactly the spec's length.
A public key or a certificate is refused for a private-key ring. :func:`check_material`
applies the same proof to material handed to the library directly (``create_ring(material=)``).

Errors name what was found and what was expected, never the bytes.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519

from .errors import PolicyError
from .keygen import PrivateKey, load_private_key, private_key_material
from .material import KeyMaterial
from .specs import KeyKind, KeySpec

__all__ = ["MAX_KEY_FILE", "check_material", "parse_key"]

#: Larger inputs are refused before parsing (an RSA-4096 PEM is about 3.3 kB).
MAX_KEY_FILE = 64 * 1024

_KINDS: tuple[tuple[type[object], KeyKind], ...] = (
    (rsa.RSAPrivateKey, KeyKind.RSA),
    (ec.EllipticCurvePrivateKey, KeyKind.EC),
    (ed25519.Ed25519PrivateKey, KeyKind.ED25519),
    (ed448.Ed448PrivateKey, KeyKind.ED448),
    (x25519.X25519PrivateKey, KeyKind.X25519),
)


def _describe(key: PrivateKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"an RSA-{key.key_size} key"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"an EC key on {key.curve.name}"
    return f"an {type(key).__name__.removesuffix('PrivateKey')} key"


def _check_key(key: PrivateKey, spec: KeySpec) -> None:
    kind = next((k for cls, k in _KINDS if isinstance(key, cls)), None)
    matches = kind is spec.kind
    if matches and isinstance(key, rsa.RSAPrivateKey):
        matches = key.key_size == spec.key_bits
    if matches and isinstance(key, ec.EllipticCurvePrivateKey):
        matches = key.curve.name == spec.curve
    if not matches:
        raise PolicyError(f"the material is {_describe(key)}, not {spec.name}")


def _check_secret(data: bytes, spec: KeySpec) -> None:
    want = spec.key_bits // 8
    if len(data) != want:
        raise PolicyError(
            f"{spec.name} needs exactly {want} bytes of key material, got {len(data)}"
        )
    if len(set(data)) <= 1:
        raise PolicyError(f"the {spec.name} material is a single repeated byte; refused as weak")


def parse_key(data: bytes, spec: KeySpec, *, password: bytes | None = None) -> KeyMaterial:
    """Key material of type ``spec`` from ``data`` (PEM, DER or, for secret keys, raw bytes)."""
    if len(data) > MAX_KEY_FILE:
        raise PolicyError(f"key file is over {MAX_KEY_FILE} bytes; not a key")
    if spec.symmetric:
        _check_secret(data, spec)
        return KeyMaterial(data, spec)
    stripped = data.lstrip()
    if b"-----BEGIN CERTIFICATE" in stripped[:64] or b"PUBLIC KEY-----" in stripped[:64]:
        raise PolicyError(
            f"a {spec.name} ring needs a private key; this is a public key or a certificate"
        )
    loader = (
        serialization.load_pem_private_key
        if stripped.startswith(b"-----BEGIN")
        else serialization.load_der_private_key
    )
    try:
        key = loader(stripped if loader is serialization.load_pem_private_key else data, password)
    except TypeError as exc:  # password missing or given for an unencrypted key
        raise PolicyError(f"cannot read the private key: {exc}") from None
    except (ValueError, AssertionError):
        raise PolicyError(
            "cannot read the private key: expected PEM or DER (PKCS#8, PKCS#1 or SEC1) "
            "without a password, or with the right one"
        ) from None
    if not isinstance(key, PrivateKey):
        raise PolicyError(f"unsupported private key type {type(key).__name__}")
    _check_key(key, spec)
    return private_key_material(key, spec)


def check_material(material: KeyMaterial) -> None:
    """Refuse ``material`` whose bytes are not a key of its declared spec."""
    spec = material.spec
    if spec.symmetric:
        _check_secret(material.reveal(), spec)
        return
    try:
        key = load_private_key(material)
    except (ValueError, TypeError):
        raise PolicyError(f"the material is not a {spec.name} private key") from None
    _check_key(key, spec)
