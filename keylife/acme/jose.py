"""JOSE and small helpers for the ACME client: keys as JWKs, payloads, key authorizations,
External Account Binding, directory URL and polling settings."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acme import jws as acme_jws
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.b64 import b64decode, b64encode
from josepy.interfaces import JSONDeSerializable
from josepy.jwa import ES256, ES384, ES512, HS256, RS256
from josepy.jwk import JWKEC, JWKRSA, JWKOct

from keylife.acme.csr import CertificateKey
from keylife.errors import AcmeError


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE and ACME use it."""
    return b64encode(data).decode("ascii")


@dataclass(frozen=True)
class PollSettings:
    """How to poll authorizations and orders: first wait, back-off cap, overall deadline.

    Retry-After from the CA always wins over the back-off (bounded by the deadline).
    """

    interval: float = 0.05
    max_interval: float = 5.0
    timeout: float = 120.0

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.max_interval < self.interval or self.timeout <= 0:
            raise AcmeError("poll interval, max interval and timeout must be positive")


class Payload(JSONDeSerializable):
    """A plain JSON object as a JWS payload."""

    def __init__(self, jobj: Mapping[str, Any]) -> None:
        self.jobj = dict(jobj)

    def to_partial_json(self) -> dict[str, Any]:
        return self.jobj

    @classmethod
    def from_json(cls, jobj: Any) -> Payload:
        return cls(jobj)


def jwk_and_alg(key: CertificateKey) -> tuple[Any, Any]:
    """The josepy JWK and JWS algorithm for an account (or certificate) key."""
    if isinstance(key, rsa.RSAPrivateKey):
        return JWKRSA(key=key), RS256
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = {256: ES256, 384: ES384, 521: ES512}.get(key.curve.key_size)
        if alg is None:
            raise AcmeError(f"unsupported EC curve {key.curve.name} for an ACME key")
        return JWKEC(key=key), alg
    raise AcmeError("ACME keys must be RSA or ECDSA")


def key_authorization(token: str, jwk: Any) -> str:
    """RFC 8555 §8.1: token || '.' || base64url(JWK thumbprint)."""
    return f"{token}.{b64url(jwk.thumbprint())}"


def check_directory_url(url: str) -> str:
    """ACME directories are https:// URLs (loopback included: Pebble serves HTTPS too)."""
    if not isinstance(url, str) or not url.lower().startswith("https://") or len(url) > 2048:
        raise AcmeError(
            f"the ACME directory must be an https:// URL, not {url!r}; "
            "plain HTTP would let anyone on the path issue or revoke in your name"
        )
    return url


def eab_binding(account_jwk: Any, new_account_url: str, kid: str, hmac_key: str) -> dict[str, Any]:
    """RFC 8555 §7.3.4: the account's public JWK signed with the CA-issued HMAC key."""
    try:
        mac_key = b64decode(hmac_key.strip())
    except (ValueError, TypeError) as exc:
        raise AcmeError("the EAB HMAC key is not base64url") from exc
    if not mac_key:
        raise AcmeError("the EAB HMAC key is empty")
    eab = acme_jws.JWS.sign(
        json.dumps(account_jwk.public_key().to_partial_json()).encode(),
        JWKOct(key=mac_key),
        HS256,
        None,
        new_account_url,
        kid,
    )
    result: dict[str, Any] = eab.to_partial_json()
    return result


__all__ = [
    "Payload",
    "PollSettings",
    "b64url",
    "check_directory_url",
    "eab_binding",
    "jwk_and_alg",
    "key_authorization",
]
