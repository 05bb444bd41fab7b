"""Public halves for verifiers: PEM, DER, OpenSSH, JWK (RFC 7517/7518/8037) and compact JWS
(RFC 7515) with ``kid`` = ``RING:vN``.

Only public data passes through here; the private key is used once, by the signing function
handed to :func:`compact_jws`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .specs import KeyKind, KeySpec

__all__ = [
    "FORMATS",
    "compact_jws",
    "export",
    "jwk",
    "jws_alg",
    "kid",
]

#: What ``export`` and ``keylife key public --format`` write.
FORMATS = ("pem", "der", "ssh", "jwk", "jwks")

AnyPublicKey = (
    rsa.RSAPublicKey
    | ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | ed448.Ed448PublicKey
    | x25519.X25519PublicKey
)

_JWS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_CRV = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def kid(ring: str, version: int) -> str:
    """The key id of a version: ``RING:vN``."""
    return f"{ring}:v{version}"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url(value.to_bytes(length, "big"))


def jws_alg(spec: KeySpec) -> str:
    """The JWS ``alg`` of a signing spec: ES256/ES384/ES512 by curve, EdDSA, PS256."""
    if spec.kind is KeyKind.EC and spec.curve is not None:
        return _JWS[spec.curve]
    if spec.kind in (KeyKind.ED25519, KeyKind.ED448):
        return "EdDSA"
    if spec.kind is KeyKind.RSA:
        return "PS256"
    raise ValueError(f"{spec.name} does not sign")


def _use_alg(spec: KeySpec, purpose: str) -> tuple[str, str]:
    if purpose == "key-wrapping" and spec.kind is KeyKind.RSA:
        return "enc", "RSA-OAEP-256"
    if purpose == "key-agreement":
        return "enc", "ECDH-ES"
    return "sig", jws_alg(spec)


def jwk(public: AnyPublicKey, spec: KeySpec, purpose: str, key_id: str) -> dict[str, Any]:
    """The JWK of a public key, with ``kid``, ``use`` and ``alg``."""
    use, alg = _use_alg(spec, purpose)
    doc: dict[str, Any]
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    if isinstance(public, ec.EllipticCurvePublicKey):
        size = (public.curve.key_size + 7) // 8
        numbers = public.public_numbers()
        doc = {
            "kty": "EC",
            "crv": _CRV[public.curve.name],
            "x": _int(numbers.x, size),
            "y": _int(numbers.y, size),
        }
    elif isinstance(public, rsa.RSAPublicKey):
        rsa_numbers = public.public_numbers()
        doc = {"kty": "RSA", "n": _int(rsa_numbers.n), "e": _int(rsa_numbers.e)}
    else:
        crv = {
            ed25519.Ed25519PublicKey: "Ed25519",
            ed448.Ed448PublicKey: "Ed448",
            x25519.X25519PublicKey: "X25519",
        }
        name = next(v for k, v in crv.items() if isinstance(public, k))
        doc = {"kty": "OKP", "crv": name, "x": b64url(public.public_bytes(*raw))}
    doc.update({"kid": key_id, "use": use, "alg": alg})
    return doc


def export(public: AnyPublicKey, fmt: str) -> bytes:
    """The public key as ``pem`` (SubjectPublicKeyInfo), ``der`` or ``ssh`` (OpenSSH line)."""
    if fmt == "pem":
        return public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    if fmt == "der":
        return public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    if fmt == "ssh":
        if isinstance(public, x25519.X25519PublicKey | ed448.Ed448PublicKey):
            raise ValueError("OpenSSH has no format for X25519 or Ed448 keys; use pem or jwk")
        return (
            public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            + b"\n"
        )
    raise ValueError(f"unknown public key format {fmt!r}; use one of {', '.join(FORMATS)}")


def compact_jws(
    sign: Callable[[bytes], bytes],
    spec: KeySpec,
    key_id: str,
    payload: bytes,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """A compact JWS of ``payload``: ``header.payload.signature`` (base64url), the header
    holding ``alg`` and ``kid`` (plus ``headers``). ECDSA signatures are converted from DER to
    the fixed-length ``r || s`` JWS uses."""
    header = {**(headers or {}), "alg": jws_alg(spec), "kid": key_id}
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    signing_input = f"{b64url(text)}.{b64url(payload)}".encode()
    signature = sign(signing_input)
    if spec.kind is KeyKind.EC:
        r, s = decode_dss_signature(signature)
        size = (spec.key_bits + 7) // 8
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return f"{signing_input.decode()}.{b64url(signature)}"
