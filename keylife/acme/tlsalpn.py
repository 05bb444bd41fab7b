"""tls-alpn-01 (RFC 8737): a standalone TLS responder for hosts where only port 443 is open.

The CA connects to the identifier's address on port 443 (Pebble: its ``tlsPort``), offers only
the ALPN protocol ``acme-tls/1`` and names the identifier in SNI (for an IP identifier, its
reverse-DNS name, RFC 8738 §6). The responder answers with a self-signed certificate made for
that one challenge: its subjectAltName is exactly the identifier and it carries the critical
``id-pe-acmeIdentifier`` extension holding the SHA-256 of the key authorization. The responder
offers no ALPN protocol but ``acme-tls/1``, and a client that names no pending identifier in SNI
gets no certificate at all (the handshake fails with ``unrecognized_name``).

Each challenge certificate and its throw-away key live in a 0700 temporary directory (Python's
``ssl`` loads certificates only from files) that is removed when the responder stops. Neither is
a secret: the key signs nothing but its own certificate and is never used again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import shutil
import socket
import socketserver
import ssl
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ObjectIdentifier

from keylife.acme.challenges import ChallengeTask
from keylife.acme.responder import DualStackServer, StandaloneResponder
from keylife.clock import SystemClock
from keylife.errors import AcmeError
from keylife.files import atomic_write

log = logging.getLogger(__name__)

#: The ALPN protocol of RFC 8737 §6.2.
ACME_TLS_1 = "acme-tls/1"
#: id-pe-acmeIdentifier (RFC 8737 §6.1).
ACME_IDENTIFIER_OID = ObjectIdentifier("1.3.6.1.5.5.7.1.31")
#: The longest a connecting client may take for its handshake.
HANDSHAKE_TIMEOUT = 10.0
#: How long a challenge certificate is valid either side of now.
CERT_SLACK = dt.timedelta(days=1)


def sni_name(task: ChallengeTask) -> str:
    """The server name the CA sends in SNI for ``task``: the DNS name, or for an IP
    identifier its reverse-DNS name (RFC 8738 §6)."""
    if task.identifier_type == "ip":
        return ipaddress.ip_address(task.identifier).reverse_pointer
    return task.identifier.lower()


def acme_identifier_value(key_authorization: str) -> bytes:
    """The DER of the extension's value: ``Authorization ::= OCTET STRING (SIZE (32))``
    holding the SHA-256 of the key authorization."""
    digest = hashlib.sha256(key_authorization.encode("utf-8")).digest()
    return b"\x04\x20" + digest


def challenge_certificate(
    task: ChallengeTask, key: ec.EllipticCurvePrivateKey, now: dt.datetime
) -> x509.Certificate:
    """The self-signed RFC 8737 §3 certificate answering ``task``."""
    san: x509.GeneralName
    if task.identifier_type == "ip":
        san = x509.IPAddress(ipaddress.ip_address(task.identifier))
    else:
        san = x509.DNSName(task.identifier)
    name = x509.Name([])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CERT_SLACK)
        .not_valid_after(now + CERT_SLACK)
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, acme_identifier_value(task.validation)),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def _context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols([ACME_TLS_1])
    return ctx


class _Handler(socketserver.BaseRequestHandler):
    server: _AlpnServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(HANDSHAKE_TIMEOUT)
        try:
            with self.server.default_context.wrap_socket(sock, server_side=True) as tls:
                chosen = tls.selected_alpn_protocol()
                if chosen != ACME_TLS_1:
                    log.debug("tls-alpn-01 responder: client did not negotiate %s", ACME_TLS_1)
                # RFC 8737 §3: the handshake is the whole exchange; close now.
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.debug("tls-alpn-01 responder: handshake ended: %s", exc)


class _AlpnServer(DualStackServer):
    def __init__(self, address: tuple[str, int], family: socket.AddressFamily) -> None:
        self.address_family = family
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.default_context = _context()
        self.default_context.sni_callback = self._pick
        super().__init__(address, _Handler)

    def _pick(self, sslobj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> int | None:
        chosen = self.contexts.get((name or "").lower().rstrip("."))
        if chosen is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sslobj.context = chosen
        return None


class StandaloneTlsAlpn01(StandaloneResponder[_AlpnServer]):
    """A TLS server answering tls-alpn-01 challenges on ``address:port`` (default: all
    interfaces, port 443) while they are pending. ``port=0`` picks a free port (tests)."""

    challenge_type = "tls-alpn-01"
    bind_hint = "stop the server using that port while the challenge runs, or choose --tls-port"

    def __init__(
        self,
        port: int = 443,
        address: str = "",
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        super().__init__(port, address)
        self._clock = clock or SystemClock().now
        self._workdir: Path | None = None
        self._key = ec.generate_private_key(ec.SECP256R1())

    def make_server(self, address: tuple[str, int], family: socket.AddressFamily) -> _AlpnServer:
        return _AlpnServer(address, family)

    def started(self) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="keylife-tls-alpn-"))

    def stopped(self) -> None:
        workdir, self._workdir = self._workdir, None
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    def _load(self, name: str, cert: x509.Certificate) -> ssl.SSLContext:
        assert self._workdir is not None
        stem = hashlib.sha256(name.encode()).hexdigest()[:16]
        cert_path, key_path = self._workdir / f"{stem}.crt", self._workdir / f"{stem}.key"
        atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), error=AcmeError)
        key_pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        atomic_write(key_path, key_pem, error=AcmeError)
        ctx = _context()
        ctx.load_cert_chain(cert_path, key_path)
        return ctx

    def prepare(self, tasks: Sequence[ChallengeTask]) -> None:
        certificates: dict[str, x509.Certificate] = {}
        for task in tasks:
            if task.wildcard:
                raise AcmeError(f"{task.display}: wildcard names can only be validated with dns-01")
            try:
                certificates[sni_name(task)] = challenge_certificate(task, self._key, self._clock())
            except (ValueError, TypeError, UnicodeError) as exc:
                raise AcmeError(
                    "the CA sent a tls-alpn-01 challenge for an unusable identifier "
                    f"{task.identifier[:80]!r} ({task.identifier_type}): {exc}"
                ) from None
        self.start()
        assert self.server is not None
        for name, cert in certificates.items():
            self.server.contexts[name] = self._load(name, cert)

    def cleanup(self, tasks: Sequence[ChallengeTask]) -> None:
        if self.server is not None:
            for task in tasks:
                self.server.contexts.pop(sni_name(task), None)
        self.release()


__all__ = [
    "ACME_IDENTIFIER_OID",
    "ACME_TLS_1",
    "StandaloneTlsAlpn01",
    "acme_identifier_value",
    "challenge_certificate",
    "sni_name",
]
