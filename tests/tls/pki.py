"""Certificates for the tests, made at run time (never committed)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

NOW = dt.datetime.now(dt.UTC)


@dataclass
class Issued:
    cert: x509.Certificate
    key: PrivateKey
    cert_path: Path
    key_path: Path

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def new_key(kind: str) -> PrivateKey:
    if kind.startswith("rsa"):
        return rsa.generate_private_key(65537, int(kind[3:]))
    return ec.generate_private_key(ec.SECP256R1())


def _names(names: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def issue(
    directory: Path,
    name: str,
    *,
    issuer: Issued | None = None,
    key_kind: str = "ec256",
    names: tuple[str, ...] = ("localhost", "127.0.0.1"),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    ca: bool = False,
) -> Issued:
    key = new_key(key_kind)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    elif names:
        builder = builder.add_extension(x509.SubjectAlternativeName(_names(names)), False)
    signer = issuer.key if issuer else key
    cert = builder.sign(signer, hashes.SHA256())
    return _save(directory, name, cert, key)


def _save(directory: Path, name: str, cert: x509.Certificate, key: PrivateKey) -> Issued:
    cert_path = directory / f"{name}.crt"
    key_path = directory / f"{name}.keyfile"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Issued(cert, key, cert_path, key_path)


def issue_sha1(directory: Path, name: str, issuer: Issued) -> Issued:
    """A leaf signed with SHA-1 by ``issuer``: cryptography refuses, so ``openssl x509 -sha1``."""
    key = new_key("rsa2048")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
    )
    csr_path = directory / f"{name}.csr"
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    ext = directory / f"{name}.ext"
    ext.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "authorityKeyIdentifier=keyid:always\n"
    )
    out = directory / f"{name}.crt"
    subprocess.run(
        [
            "openssl", "x509", "-req", "-sha1", "-in", str(csr_path),
            "-CA", str(issuer.cert_path), "-CAkey", str(issuer.key_path), "-set_serial", "4242",
            "-days", "30", "-extfile", str(ext), "-out", str(out),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    cert = x509.load_pem_x509_certificate(out.read_bytes())
    return _save(directory, name, cert, key)


# RFC 2409 second Oakley group (1024-bit MODP), the classic weak DH group.
RFC2409_GROUP2_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der_int(v: int) -> bytes:
    raw = v.to_bytes(v.bit_length() // 8 + 1, "big")  # leading zero keeps it positive
    return b"\x02" + _der_len(len(raw)) + raw


def dh1024_params(directory: Path) -> Path:
    """PKCS#3 DHParameter PEM (cryptography deprecates finite-field DH, so DER by hand)."""
    body = _der_int(RFC2409_GROUP2_P) + _der_int(2)
    der = b"\x30" + _der_len(len(body)) + body
    b64 = base64.encodebytes(der).decode().replace("\n", "")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    path = directory / "dh1024.pem"
    text = "-----BEGIN DH PARAMETERS-----\n" + "\n".join(lines) + "\n-----END DH PARAMETERS-----\n"
    path.write_text(text)
    return path


@dataclass(frozen=True)
class Pki:
    directory: Path
    root: Issued
    intermediate: Issued
    leaf: Issued  # EC P-256, issued by root
    rsa_leaf: Issued  # RSA-2048, issued by root
    rsa1024: Issued
    expired: Issued
    self_signed: Issued
    wrong_host: Issued
    sha1: Issued
    behind_intermediate: Issued  # issued by the intermediate
    dh1024: Path


def make_pki(d: Path) -> Pki:
    """Every certificate the TLS tests and the benchmark serve, made at run time in ``d``."""
    root = issue(d, "root", ca=True, not_after=NOW + dt.timedelta(days=3650))
    inter = issue(d, "intermediate", issuer=root, ca=True)
    return Pki(
        directory=d,
        root=root,
        intermediate=inter,
        leaf=issue(d, "leaf", issuer=root),
        rsa_leaf=issue(d, "rsa-leaf", issuer=root, key_kind="rsa2048"),
        rsa1024=issue(d, "rsa1024", issuer=root, key_kind="rsa1024"),
        expired=issue(
            d,
            "expired",
            issuer=root,
            not_before=NOW - dt.timedelta(days=60),
            not_after=NOW - dt.timedelta(days=1),
        ),
        self_signed=issue(d, "self-signed"),
        wrong_host=issue(d, "wrong-host", issuer=root, names=("other.example",)),
        sha1=issue_sha1(d, "sha1", root),
        behind_intermediate=issue(d, "behind-intermediate", issuer=inter),
        dh1024=dh1024_params(d),
    )
