"""Certificate facts for the report, read from the PEM a version's attributes hold.

Only public data is read (issuer, serial, validity, the chain's root); a PEM that does not
parse is reported as a problem on that certificate, never as an exception.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..certificates import CERTIFICATE_PEM, CHAIN_PEM
from ..lifecycle import Ring
from .model import CertificateFacts

__all__ = ["MAX_PEM", "certificate_facts", "read_certificate"]

#: The largest certificate (or chain) PEM read (a leaf is a few KiB, a chain a few more).
MAX_PEM = 64 * 1024


def _root(chain: list[object]) -> tuple[str, str, bool | None]:
    """(subject, fingerprint, in chain) of the root the chain leads to."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    top = chain[-1]
    assert isinstance(top, x509.Certificate)
    if top.subject == top.issuer:  # self-issued: the root itself is stored
        digest = top.fingerprint(hashes.SHA256()).hex()
        return top.subject.rfc4514_string(), "sha256:" + digest, True
    return top.issuer.rfc4514_string(), "", False


def read_certificate(pem: str, chain_pem: str = "") -> CertificateFacts:
    """Issuer, serial and validity of the first certificate in ``pem``, and the root its chain
    (the rest of ``pem``, then ``chain_pem``) leads to."""
    from cryptography import x509

    if len(pem) + len(chain_pem) > MAX_PEM:
        return CertificateFacts(problem=f"certificate PEM over {MAX_PEM} bytes; not read")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii", "replace"))
    except (ValueError, TypeError) as exc:
        return CertificateFacts(problem=f"certificate does not parse ({type(exc).__name__})")
    problem = ""
    chain: list[object] = [cert]
    try:
        whole = (pem + "\n" + chain_pem).encode("ascii", "replace")
        chain = list(x509.load_pem_x509_certificates(whole)) or chain
    except (ValueError, TypeError) as exc:
        problem = f"certificate chain does not parse ({type(exc).__name__})"
    subject, fingerprint, in_chain = _root(chain)
    return CertificateFacts(
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        problem=problem,
        root_subject=subject,
        root_fingerprint=fingerprint,
        root_in_chain=in_chain,
    )


def certificate_facts(rings: Iterable[Ring]) -> dict[tuple[str, int], CertificateFacts]:
    """Facts for every version of ``rings`` that holds a certificate."""
    return {
        (ring.name, v.number): read_certificate(
            v.attributes[CERTIFICATE_PEM], v.attributes.get(CHAIN_PEM, "")
        )
        for ring in rings
        for v in ring.versions
        if CERTIFICATE_PEM in v.attributes
    }
