"""Certificate revocation (RFC 8555 §7.6) by the account key or by the certificate's own key."""

from __future__ import annotations

import logging

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keylife.acme.client import AcmeClient, b64url
from keylife.acme.csr import CertificateKey
from keylife.acme.problems import problem_code, translated
from keylife.errors import AcmeError
from keylife.lifecycle import RevocationReason

log = logging.getLogger(__name__)

#: The reasons a subscriber may give an ACME CA (RFC 8555 §7.6 with RFC 5280 codes): every
#: :class:`~keylife.lifecycle.RevocationReason` except ``ca-compromise``, which is the CA's.
SUBSCRIBER_REASONS: tuple[RevocationReason, ...] = tuple(
    r for r in RevocationReason if r is not RevocationReason.CA_COMPROMISE
)


def _squash(text: str) -> str:
    return text.replace("-", "").replace("_", "").replace(" ", "").lower()


def parse_reason(reason: str | int | RevocationReason) -> RevocationReason:
    """The revocation reason for a lifecycle reason, a name in any spelling (``keyCompromise``,
    ``key-compromise``, ``KEYCOMPROMISE``) or an RFC 5280 code; only those a subscriber may
    send to an ACME CA (:data:`SUBSCRIBER_REASONS`)."""
    allowed = ", ".join(r.value for r in SUBSCRIBER_REASONS)
    if isinstance(reason, RevocationReason):
        found: RevocationReason | None = reason
    elif isinstance(reason, int) or (isinstance(reason, str) and reason.strip().isdigit()):
        code = int(reason)
        found = next((r for r in RevocationReason if r.rfc5280_code == code), None)
    else:
        wanted = _squash(str(reason))
        found = next((r for r in RevocationReason if _squash(r.value) == wanted), None)
    if found is None or found not in SUBSCRIBER_REASONS:
        raise AcmeError(
            f"revocation reason {reason!r} cannot be sent to a CA; use one of {allowed}"
        )
    return found


def revoke_certificate(
    client: AcmeClient,
    certificate_pem: str,
    reason: str | int | RevocationReason = "unspecified",
    *,
    certificate_key: CertificateKey | None = None,
) -> bool:
    """Revoke at the CA. Signed by the account (default) or by ``certificate_key``.

    Returns ``True`` when revoked now and ``False`` when the CA says it already was.
    """
    code = parse_reason(reason).rfc5280_code
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
        with client.operation(), translated(f"revoking certificate {cert.serial_number:x}", url):
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


__all__ = ["SUBSCRIBER_REASONS", "parse_reason", "revoke_certificate"]
