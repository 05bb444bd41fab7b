"""Certificate chain checks: key, signature hash, validity, host name, completeness, trust.

The chain is examined as the server sent it. Trust is decided by cryptography's Web PKI path
validation against the system store or a CA file; the other rules are read one by one, so that
each weakness gets its own finding, independently of trust.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from keylife.tls.report import CertificateInfo
from keylife.tls.rules import FindingCollector

__all__ = ["CERTIFICATE_ERRORS", "evaluate_chain", "load_chain"]

CERTIFICATE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)
"""What cryptography raises for a certificate a peer made up: a probe error, not a crash."""


def load_chain(ders: Sequence[bytes]) -> list[x509.Certificate]:
    from keylife.errors import ProbeError

    try:
        with warnings.catch_warnings():  # odd but parseable certificates are still judged
            warnings.simplefilter("ignore")
            return [x509.load_der_x509_certificate(d) for d in ders]
    except CERTIFICATE_ERRORS as exc:
        raise ProbeError(f"the peer sent a certificate that cannot be parsed: {exc}") from exc


def _key(cert: x509.Certificate) -> tuple[str, int]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, 0


def _hash_name(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except x509.UnsupportedGeneralNameType:  # pragma: no cover - defensive
        return None
    except Exception:  # unsupported algorithm OIDs raise UnsupportedAlgorithm
        return "unknown"
    return algorithm.name if isinstance(algorithm, hashes.HashAlgorithm) else None


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    san = _san(cert)
    if san is None:
        return ()
    dns = san.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return (*dns, *ips)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, Exception):  # InvalidSignature, unsupported key types
        return False
    return True


def describe(cert: x509.Certificate) -> CertificateInfo:
    key_type, key_bits = _key(cert)
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=f"{cert.serial_number:x}",
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        key_type=key_type,
        key_bits=key_bits,
        signature_hash=_hash_name(cert),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        names=_names(cert),
        self_signed=_signed_by(cert, cert),
        is_ca=_is_ca(cert),
    )


def hostname_matches(cert: x509.Certificate, host: str) -> bool:
    """RFC 6125 matching against subjectAltName only (no CN fallback), wildcards leftmost."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    san = _san(cert)
    if san is None:
        return False
    if ip is not None:
        return ip in san.get_values_for_type(x509.IPAddress)
    wanted = host.rstrip(".").lower().split(".")
    for name in san.get_values_for_type(x509.DNSName):
        pattern = name.rstrip(".").lower().split(".")
        if len(pattern) != len(wanted):
            continue
        first_ok = pattern[0] == wanted[0] or (pattern[0] == "*" and len(pattern) > 2)
        if first_ok and pattern[1:] == wanted[1:]:
            return True
    return False


#: Anchor loading touches the process-wide warning filters; one thread at a time.
_WARNINGS_LOCK = threading.Lock()


@lru_cache(maxsize=16)
def _anchors(ca_file: str | None) -> tuple[x509.Certificate, ...]:
    paths: list[Path] = []
    if ca_file:
        paths.append(Path(ca_file))
    else:
        defaults = ssl.get_default_verify_paths()
        for candidate in (defaults.cafile, defaults.openssl_cafile):
            if candidate and Path(candidate).is_file():
                paths.append(Path(candidate))
                break
    anchors: list[x509.Certificate] = []
    for path in paths:
        try:
            # System bundles hold a few odd old roots that cryptography warns about.
            # catch_warnings swaps a process-wide list: the lock keeps two checking threads
            # from restoring each other's filters (a warning then escaped as an error).
            with _WARNINGS_LOCK, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                anchors.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except (OSError, ValueError):
            continue
    return tuple(anchors)


def _verify_trust(
    chain: Sequence[x509.Certificate], ca_file: str | None, now: dt.datetime
) -> str | None:
    """None when a path to a trust anchor is built under the Web PKI rules, else why not.

    Uses cryptography's verifier (the CA/Browser Forum profile browsers and sslyze apply), so
    a chain keylife trusts is one they trust. Host name and validity dates have their own
    rules: the path is checked for a name the leaf carries, at a time all certificates are
    valid if there is one.
    """
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    anchors = _anchors(ca_file)
    if not anchors:
        return "no trust anchors could be loaded"
    leaf = chain[0]
    names = _names(leaf)
    subject: x509.GeneralName
    try:
        subject = x509.IPAddress(ipaddress.ip_address(names[0])) if names else x509.DNSName("x")
    except ValueError:
        subject = x509.DNSName(names[0])
    earliest_end = min(c.not_valid_after_utc for c in chain)
    latest_start = max(c.not_valid_before_utc for c in chain)
    when = now
    if not latest_start <= now <= earliest_end and latest_start <= earliest_end:
        when = earliest_end - dt.timedelta(seconds=1)
    try:
        verifier = (
            PolicyBuilder().store(Store(list(anchors))).time(when).build_server_verifier(subject)
        )
        verifier.verify(leaf, list(chain[1:]))
    except VerificationError as exc:
        return str(exc).split(" (encountered processing", 1)[0]
    except ValueError as exc:
        return str(exc)
    return None


def evaluate_chain(
    chain: Sequence[x509.Certificate],
    *,
    host: str | None,
    ca_file: str | None,
    now: dt.datetime,
    out: FindingCollector,
    endpoint_rules: bool = True,
) -> tuple[tuple[CertificateInfo, ...], bool | None]:
    """Apply the certificate rules; returns the described chain and the trust result.

    With ``endpoint_rules=False`` (a context's own certificate) only the key, signature hash
    and validity dates are checked: host name, chain and trust depend on who connects.
    """
    infos = tuple(describe(c) for c in chain)
    if not chain:
        out.add("tls.cert.missing.v1", "no certificate presented", "an X.509 certificate")
        return infos, None
    _key_rules(infos, out)
    _validity_rules(chain, infos, now, out)
    if not endpoint_rules:
        return infos, None
    return infos, _endpoint_rules(chain, infos, host, ca_file, now, out)


def _key_rules(infos: Sequence[CertificateInfo], out: FindingCollector) -> None:
    policy = out.policy
    leaf_info = infos[0]
    if leaf_info.key_type not in policy.allowed_key_types:
        out.add(
            "tls.cert.key-type.v1",
            f"{leaf_info.key_type} key",
            ", ".join(sorted(policy.allowed_key_types)),
        )
    minimum = {"RSA": policy.min_rsa_bits, "DSA": policy.min_rsa_bits, "EC": policy.min_ec_bits}
    need = minimum.get(leaf_info.key_type, 0)
    if leaf_info.key_bits < need:
        out.add(
            "tls.cert.key-size.v1",
            f"{leaf_info.key_type}-{leaf_info.key_bits} leaf key",
            f"RSA >= {policy.min_rsa_bits}, EC >= {policy.min_ec_bits} bits",
        )

    for info in infos:
        if info.self_signed and info is not leaf_info:
            continue  # a root's self-signature is not relied upon
        if info.signature_hash in policy.weak_signature_hashes:
            role = "leaf" if info is leaf_info else f"certificate {info.subject}"
            out.add(
                "tls.cert.signature-hash.v1",
                f"{role} signed with {info.signature_hash.upper()}",
                "SHA-256 or stronger",
            )


def _validity_rules(
    chain: Sequence[x509.Certificate],
    infos: Sequence[CertificateInfo],
    now: dt.datetime,
    out: FindingCollector,
) -> None:
    policy = out.policy
    leaf, leaf_info = chain[0], infos[0]
    for cert, info in zip(chain, infos, strict=True):
        role = "leaf" if info is leaf_info else info.subject
        if cert.not_valid_after_utc < now:
            out.add(
                "tls.cert.expired.v1", f"{role} expired {info.not_after}", "a valid certificate"
            )
        elif cert.not_valid_before_utc > now:
            out.add(
                "tls.cert.not-yet-valid.v1",
                f"{role} valid from {info.not_before}",
                "a certificate valid now",
            )
    left = leaf.not_valid_after_utc - now
    if dt.timedelta(0) <= left < dt.timedelta(days=policy.expiry_warning_days):
        out.add(
            "tls.cert.expiring.v1",
            f"leaf expires {leaf_info.not_after} (in {left.days} days)",
            f"at least {policy.expiry_warning_days} days of validity left",
        )


def _endpoint_rules(
    chain: Sequence[x509.Certificate],
    infos: Sequence[CertificateInfo],
    host: str | None,
    ca_file: str | None,
    now: dt.datetime,
    out: FindingCollector,
) -> bool:
    """Host name, self-signed leaf, chain order and completeness, trust: True if trusted."""
    leaf, leaf_info = chain[0], infos[0]
    if host is not None and not hostname_matches(leaf, host):
        out.add(
            "tls.cert.hostname.v1",
            f"{host!r} not in " + (", ".join(leaf_info.names) or "(no subjectAltName)"),
            f"a subjectAltName matching {host!r}",
        )
    if leaf_info.self_signed:
        out.add(
            "tls.cert.self-signed.v1", f"self-signed leaf {leaf_info.subject}", "a CA-issued leaf"
        )

    for i in range(len(chain) - 1):
        if chain[i].issuer != chain[i + 1].subject:
            out.add(
                "tls.cert.chain-order.v1",
                f"certificate {i + 1} ({infos[i + 1].subject}) did not issue certificate {i}",
                "each certificate followed by its issuer",
            )
            break

    top = chain[-1]
    anchors = _anchors(ca_file)
    # by name: a chain ending in a certificate whose issuer is a trust anchor is complete,
    # even when that last signature is one the verifier refuses (SHA-1 is its own rule)
    if top.issuer != top.subject and not any(top.issuer == a.subject for a in anchors):
        out.add(
            "tls.cert.chain-complete.v1",
            f"issuer {top.issuer.rfc4514_string()!r} neither sent nor a trust anchor",
            "the full chain up to a trust anchor",
        )

    reason = _verify_trust(chain, ca_file, now)
    if reason is not None:
        store = f"CA file {ca_file}" if ca_file else "the system trust store"
        out.add("tls.cert.trusted.v1", f"{reason}; {_trust_hint(ca_file)}", f"a chain to {store}")
    return reason is None


def _trust_hint(ca_file: str | None) -> str:
    """The likely fix for an untrusted chain."""
    if ca_file is None:
        return (
            "if the server's CA is private, pass its root certificate with --ca-file "
            "(ca_file= in Python)"
        )
    return f"check that --ca-file {ca_file} holds the root that issued this chain"
