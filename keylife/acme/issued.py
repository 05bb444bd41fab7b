"""A certificate as the CA issued it, and the checks it must pass before keylife keeps it.

:func:`check_issued` refuses (:class:`keylife.errors.CertificateCheckError`) a certificate
whose names are not exactly the ones requested, whose public key is not the CSR's key, whose
chain does not verify to the trusted roots (a PEM file given as ``trust_roots``, else the
system trust store), or whose validity is absurd: not yet valid by more than
:data:`CLOCK_SKEW`, already expired, or longer than :data:`MAX_LIFETIME`. How long a version
is *used* is decided later by the caller: ``min(notAfter, activation + cryptoperiod)``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import verification

from keylife.acme.csr import CertificateKey, Identifier
from keylife.errors import AcmeError, CertificateCheckError

#: How far a certificate's notBefore may lie after our clock (the CA's clock may be ahead).
CLOCK_SKEW = dt.timedelta(days=1)
#: The longest certificate lifetime accepted; public CAs issue at most 398 days, Pebble 5 years.
MAX_LIFETIME = dt.timedelta(days=3653)
#: Longest chain accepted from a CA (leaf included).
MAX_CHAIN = 10


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate as issued: PEM texts, validity and where the order lives. No private key."""

    certificate_pem: str
    chain_pem: str
    order_url: str
    identifiers: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int
    alternative_chains: int = 0

    @property
    def fullchain_pem(self) -> str:
        return self.certificate_pem + self.chain_pem

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")

    @classmethod
    def from_fullchain(
        cls, fullchain_pem: str, order_url: str, *, alternative_chains: int = 0
    ) -> IssuedCertificate:
        certs = split_pem_chain(fullchain_pem)
        if not certs:
            raise AcmeError(f"the CA returned no certificate at {order_url}")
        if len(certs) > MAX_CHAIN:
            raise CertificateCheckError(
                f"the CA returned a chain of {len(certs)} certificates (at most {MAX_CHAIN})",
                problem="chain",
            )
        leaf = load_certificate(certs[0])
        return cls(
            certificate_pem=certs[0],
            chain_pem="".join(certs[1:]),
            order_url=order_url,
            identifiers=tuple(san_names(leaf)),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            serial=leaf.serial_number,
            alternative_chains=alternative_chains,
        )

    def load_certificate(self) -> x509.Certificate:
        return load_certificate(self.certificate_pem)


def load_certificate(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise AcmeError("the CA returned a certificate that cannot be parsed") from exc


def san_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    except ValueError as exc:
        raise AcmeError("the certificate's subjectAltName cannot be parsed") from exc
    names: list[str] = [str(n).lower() for n in san.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return names


def split_pem_chain(text: str) -> list[str]:
    """Split a PEM bundle into normalised PEM certificates (each ending in a newline)."""
    end = "-----END CERTIFICATE-----"
    out = []
    for part in text.split(end):
        start = part.find("-----BEGIN CERTIFICATE-----")
        if start != -1:
            out.append(part[start:].strip() + "\n" + end + "\n")
    return out


def chain_matches(fullchain_pem: str, preferred: str) -> bool:
    """certbot's rule: the topmost certificate's issuer CN or subject CN names the chain."""
    certs = split_pem_chain(fullchain_pem)
    if not certs:
        return False
    try:
        top = load_certificate(certs[-1])
    except AcmeError:
        return False
    names = set()
    for name in (top.issuer, top.subject):
        for attr in name.get_attributes_for_oid(x509.NameOID.COMMON_NAME):
            names.add(str(attr.value))
    return preferred in names


def _spki(key: x509.Certificate | CertificateKey) -> bytes:
    public = key.public_key()
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_roots(trust_roots: str | None) -> list[x509.Certificate]:
    """The trusted roots: a PEM file, or the system trust store."""
    path = trust_roots or ssl.get_default_verify_paths().cafile
    if path is None or not Path(path).is_file():
        try:
            import certifi

            path = certifi.where()
        except ImportError as exc:  # pragma: no cover - requests depends on certifi
            raise AcmeError("no trust store found; give trust_roots (a PEM file)") from exc
    try:
        data = Path(path).read_bytes()
        with warnings.catch_warnings():
            # System stores carry old roots with e.g. negative serials; they still verify.
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            roots = x509.load_pem_x509_certificates(data)
    except (OSError, ValueError) as exc:
        raise AcmeError(f"cannot read the trusted roots from {path}") from exc
    return roots


def check_issued(
    issued: IssuedCertificate,
    key: CertificateKey,
    requested: Sequence[Identifier],
    now: dt.datetime,
    *,
    trust_roots: str | None = None,
) -> None:
    """Refuse a certificate that is not what was asked for (see the module docstring)."""
    leaf = issued.load_certificate()
    wanted = sorted({i.value.lower() for i in requested})
    got = sorted(set(issued.identifiers))
    if got != wanted:
        raise CertificateCheckError(
            f"the CA issued a certificate for {', '.join(got) or 'no names'} instead of "
            f"{', '.join(wanted)}; not stored",
            problem="names",
        )
    if _spki(leaf) != _spki(key):
        raise CertificateCheckError(
            "the CA issued a certificate for a different public key than the CSR's; not stored",
            problem="key",
        )
    lifetime = issued.not_after - issued.not_before
    if issued.not_before > now + CLOCK_SKEW or issued.not_after <= now:
        raise CertificateCheckError(
            f"the certificate is valid {issued.not_before.isoformat()} to "
            f"{issued.not_after.isoformat()}, which does not include now; not stored",
            problem="validity",
        )
    if lifetime > MAX_LIFETIME:
        raise CertificateCheckError(
            f"the certificate's lifetime of {lifetime.days} days (notAfter "
            f"{issued.not_after.isoformat()}) exceeds the {MAX_LIFETIME.days} days keylife "
            "accepts; not stored",
            problem="validity",
        )
    _verify_chain(issued, leaf, requested[0], now, trust_roots)


def _verify_chain(
    issued: IssuedCertificate,
    leaf: x509.Certificate,
    subject: Identifier,
    now: dt.datetime,
    trust_roots: str | None,
) -> None:
    roots = load_roots(trust_roots)
    intermediates = [load_certificate(pem) for pem in split_pem_chain(issued.chain_pem)]
    name: x509.verification.Subject
    if subject.type == "ip":
        name = x509.IPAddress(ipaddress.ip_address(subject.value))
    elif subject.wildcard:
        name = x509.DNSName("keylife-check" + subject.value[1:])
    else:
        name = x509.DNSName(subject.value)
    try:
        verifier = (
            verification.PolicyBuilder()
            .store(verification.Store(roots))
            .time(now)
            .max_chain_depth(MAX_CHAIN)
            .build_server_verifier(name)
        )
        verifier.verify(leaf, intermediates)
    except (verification.VerificationError, ValueError) as exc:
        where = trust_roots or "the system trust store"
        raise CertificateCheckError(
            f"the certificate's chain does not verify to a root in {where} ({exc}); not stored",
            problem="chain",
        ) from exc


__all__ = [
    "CLOCK_SKEW",
    "MAX_LIFETIME",
    "IssuedCertificate",
    "chain_matches",
    "check_issued",
    "load_roots",
    "san_names",
    "split_pem_chain",
]
