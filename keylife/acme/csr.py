"""Certificate keys, ACME identifiers and CSRs, built with ``cryptography``."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import idna
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from keylife.errors import AcmeError

#: Private key types a certificate key may have, as accepted by public ACME CAs.
CertificateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

#: Key type names understood by :func:`generate_private_key` (the CLI's ``--key-type``).
KEY_TYPES: tuple[str, ...] = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
DEFAULT_KEY_TYPE = "ec-p256"


@dataclass(frozen=True, order=True)
class Identifier:
    """An ACME identifier: a DNS name (possibly a wildcard) or an IP address (RFC 8738)."""

    type: Literal["dns", "ip"]
    value: str

    @property
    def wildcard(self) -> bool:
        return self.type == "dns" and self.value.startswith("*.")

    def __str__(self) -> str:
        return self.value


#: A letter-digit-hyphen label (RFC 1035 §2.3.1, as RFC 5890 A-labels use it).
_LDH = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
MAX_NAME = 253
NAME_RULE = (
    "a DNS name of LDH labels (letters, digits, '-') of at most 63 characters, at most 253 in "
    "all, '*' only as the whole leftmost label, or an IP address"
)


def _a_label(label: str, name: str) -> str:
    """An IDNA 2008 A-label for one label (ASCII labels are only lower-cased)."""
    if label.isascii():
        return label.lower()
    try:
        return idna.encode(label, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise AcmeError(f"{name!r} is not a valid internationalised name: {exc}") from None


def parse_identifier(name: str) -> Identifier:
    """Turn a user-given name into an identifier: IP literals become ``ip``, the rest ``dns``
    (Unicode labels as IDNA A-labels). Anything but :data:`NAME_RULE` is refused, so no
    shell metacharacter, space or path ever reaches a CA, a hook or a file name."""
    if not isinstance(name, str) or len(name) > 4 * MAX_NAME:
        raise AcmeError(f"not a DNS name or IP address; use {NAME_RULE}")
    text = name.strip()
    try:
        address = ipaddress.ip_address(text[1:-1] if text.startswith("[") else text)
    except ValueError:
        pass
    else:
        return Identifier("ip", str(address))
    labels = text.removesuffix(".").split(".")
    if labels and labels[0] == "*":
        if len(labels) < 3:
            raise AcmeError(f"wildcard too broad: {name!r}; use *.name.tld at the least")
        rest = labels[1:]
    else:
        rest = labels
    ascii_labels = [_a_label(label, name) for label in rest]
    if not all(_LDH.fullmatch(label) for label in ascii_labels):
        raise AcmeError(f"not a valid DNS name: {name!r}; use {NAME_RULE}")
    value = ".".join((["*"] if rest is not labels else []) + ascii_labels)
    if len(value) > MAX_NAME:
        raise AcmeError(f"{name!r} is longer than {MAX_NAME} characters")
    if ascii_labels[-1].isdigit():
        raise AcmeError(f"not a valid DNS name (numeric top-level label): {name!r}")
    return Identifier("dns", value)


def parse_identifiers(names: Sequence[str]) -> list[Identifier]:
    """Parse and de-duplicate names, keeping their order."""
    seen: dict[Identifier, None] = {}
    for name in names:
        seen.setdefault(parse_identifier(name), None)
    if not seen:
        raise AcmeError("at least one domain name or IP address is required")
    return list(seen)


def generate_private_key(key_type: str = DEFAULT_KEY_TYPE) -> CertificateKey:
    """Make a fresh certificate (or account) key of one of :data:`KEY_TYPES`."""
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type.startswith("rsa-") and key_type in KEY_TYPES:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    raise AcmeError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")


def key_type_of(key: CertificateKey) -> str:
    """The :data:`KEY_TYPES` name of a key (``ec-p521`` and odd RSA sizes are named too)."""
    if isinstance(key, rsa.RSAPrivateKey):
        return f"rsa-{key.key_size}"
    return {"secp256r1": "ec-p256", "secp384r1": "ec-p384", "secp521r1": "ec-p521"}.get(
        key.curve.name, f"ec-{key.curve.name}"
    )


def build_csr(key: CertificateKey, identifiers: Sequence[Identifier]) -> bytes:
    """A PEM CSR for the identifiers, all in subjectAltName; the first DNS name is also the CN."""
    if not identifiers:
        raise AcmeError("a CSR needs at least one identifier")
    sans: list[x509.GeneralName] = []
    for ident in identifiers:
        if ident.type == "ip":
            sans.append(x509.IPAddress(ipaddress.ip_address(ident.value)))
        else:
            sans.append(x509.DNSName(ident.value))
    builder = x509.CertificateSigningRequestBuilder()
    first_dns = next((i.value for i in identifiers if i.type == "dns"), None)
    if first_dns is not None and len(first_dns) <= 64:
        builder = builder.subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first_dns)])
        )
    else:
        builder = builder.subject_name(x509.Name([]))
    builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: CertificateKey) -> bytes:
    """PKCS#8 PEM of a private key, unencrypted (for 0600 files and the sealed store)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> CertificateKey:
    """Load a PEM private key that can be a certificate or account key."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise AcmeError("cannot load the private key (not an unencrypted PEM key)") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise AcmeError("ACME keys must be RSA or ECDSA")
    return key


__all__ = [
    "DEFAULT_KEY_TYPE",
    "KEY_TYPES",
    "NAME_RULE",
    "CertificateKey",
    "Identifier",
    "build_csr",
    "generate_private_key",
    "key_type_of",
    "load_private_key",
    "parse_identifier",
    "parse_identifiers",
    "private_key_pem",
]
