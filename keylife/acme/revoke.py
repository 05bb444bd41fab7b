"""Certificate revocation (RFC 8555 §7.6) by the account key or by the certificate's own key."""

from __future__ import annotations

import logging

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keylife.acme.client import AcmeClient, b64url
from keylife.acme.csr import CertificateKey
from keylife.acme.problems import problem_code, translated
from keylife.errors import AcmeError

log = logging.getLogger(__name__)

#: RFC 5280 CRLReason codes that an ACME client may ask for (7 is unused; 2, 6, 8, 10 are
#: for CAs, not subscribers; Let's Encrypt accepts 0, 1, 3, 4 and 5).
REASONS: dict[str, int] = {
    "unspecified": 0,
    "key-compromise": 1,
    "affiliation-changed": 3,
    "superseded": 4,
    "cessation-of-operation": 5,
    "privilege-withdrawn": 9,
}


def parse_reason(reason: str | int) -> int:
    """An RFC 5280 reason code from a name (``keyCompromise``, ``key-compromise``,
    ``keycompromise``) or a number."""
    if isinstance(reason, int):
        if reason in REASONS.values():
            return reason
        raise AcmeError(f"revocation reason {reason} is not one a subscriber may use")
    text = reason.strip()
    if text.isdigit():
        return parse_reason(int(text))
    wanted = text.replace("-", "").replace("_", "").lower()
    for name, code in REASONS.items():
        if name.replace("-", "") == wanted:
            return code
    raise AcmeError(f"unknown revocation reason {reason!r}; use one of {', '.join(REASONS)}")


def revoke_certificate(
    client: AcmeClient,
    certificate_pem: str,
    reason: str | int = "unspecified",
    *,
    certificate_key: CertificateKey | None = None,
) -> bool:
    """Revoke at the CA. Signed by the account (default) or by ``certificate_key``.

    Returns ``True`` when revoked now and ``False`` when the CA says it already was.
    """
    code = parse_reason(reason)
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    except ValueError as exc:
        raise AcmeError("not a PEM certificate") from exc
    if certificate_key is not None:
        mine = certificate_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        theirs = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if mine != theirs:
            raise AcmeError("the given key is not the certificate's key")
    payload = {
        "certificate": b64url(cert.public_bytes(serialization.Encoding.DER)),
        "reason": code,
    }
    url = client.resource_url("revokeCert")
    try:
        with translated(f"revoking certificate {cert.serial_number:x}", url):
            if certificate_key is None:
                client.require_account()
                client.post(url, payload)
            else:
                with client.network_for(certificate_key) as net:
                    client.post(url, payload, network=net)
    except AcmeError as exc:
        if problem_code(exc) == "alreadyRevoked":
            log.info("certificate %x was already revoked", cert.serial_number)
            return False
        raise
    return True


__all__ = ["REASONS", "parse_reason", "revoke_certificate"]
