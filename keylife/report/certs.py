"""Certificate facts for the report, read from the PEM a version's attributes hold.

Only public data is read (issuer, serial, validity); a PEM that does not parse is reported
as a problem on that certificate, never as an exception.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..certificates import CERTIFICATE_PEM
from ..lifecycle import Ring
from .model import CertificateFacts

__all__ = ["MAX_PEM", "certificate_facts", "read_certificate"]

#: The largest certificate PEM read (a leaf is a few KiB).
MAX_PEM = 64 * 1024


def read_certificate(pem: str) -> CertificateFacts:
    """Issuer, serial and validity of the first certificate in ``pem``."""
    from cryptography import x509

    if len(pem) > MAX_PEM:
        return CertificateFacts(problem=f"certificate PEM over {MAX_PEM} bytes; not read")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii", "replace"))
        return CertificateFacts(
            issuer=cert.issuer.rfc4514_string(),
            serial=format(cert.serial_number, "x"),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )
    except (ValueError, TypeError) as exc:
        return CertificateFacts(problem=f"certificate does not parse ({type(exc).__name__})")


def certificate_facts(rings: Iterable[Ring]) -> dict[tuple[str, int], CertificateFacts]:
    """Facts for every version of ``rings`` that holds a certificate."""
    return {
        (ring.name, v.number): read_certificate(v.attributes[CERTIFICATE_PEM])
        for ring in rings
        for v in ring.versions
        if CERTIFICATE_PEM in v.attributes
    }
