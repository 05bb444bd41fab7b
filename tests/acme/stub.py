"""A scripted ACME server over HTTPS on 127.0.0.1, for what Pebble 2.4 cannot show (ARI,
Retry-After, 429) and for hostile CAs (malformed answers, slow or huge bodies, certificates for
other names, keys or roots, absurd dates).

It does not verify JWS signatures; it records each request's decoded payload and answers
according to ``behaviour``. Its listener certificate comes from a trustme CA (``ca_bundle``);
the certificates it issues chain to its own issuing root (``roots_file``). ``override`` maps a
path to a function ``(handler) -> bool`` that may answer instead (True when it did).
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UTC = dt.UTC


def make_root(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_leaf(
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate,
    public_key: Any,
    names: list[str],
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
        .sign(issuer_key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class StubAcme:
    def __init__(self, workdir: Path) -> None:
        stub = self
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        self.override: dict[str, Callable[[Any], bool]] = {}
        self.behaviour: dict[str, Any] = {
            "reject_replaces": False,
            "rate_limit": False,
            "processing_polls": 0,
            "retry_after": None,
            "ari": {"start": "2030-01-01T00:00:00Z", "end": "2030-01-03T00:00:00Z"},
            "ari_retry_after": "3600",
            "renewal_info": True,
            # what the issued certificate looks like (None: as requested)
            "cert_names": None,
            "cert_key": None,
            "cert_issuer": None,
            "not_after": None,
        }
        self._nonce = 0
        self.csr: x509.CertificateSigningRequest | None = None
        self.issuer_key, self.issuer = make_root("keylife stub issuing root")
        self.roots_file = str(workdir / "stub-roots.pem")
        Path(self.roots_file).write_text(pem(self.issuer))
        tls_ca = trustme.CA()
        self.ca_bundle = str(workdir / "stub-listener-ca.pem")
        tls_ca.cert_pem.write_to_path(self.ca_bundle)
        server_cert = tls_ca.issue_cert("127.0.0.1", "localhost")

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def nonce(self) -> str:
                stub._nonce += 1
                return f"bm9uY2U{stub._nonce:04d}"

            def send(
                self, code: int, body: Any = None, headers: dict[str, str] | None = None
            ) -> None:
                if isinstance(body, bytes):
                    data = body
                else:
                    data = b"" if body is None else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Replay-Nonce", self.nonce())
                ctype = "application/json"
                if isinstance(body, dict) and "type" in body and code >= 400:
                    ctype = "application/problem+json"
                self.send_header("Content-Type", ctype)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_HEAD(self) -> None:
                stub.requests.append(("HEAD", self.path, None))
                if stub.override.get("HEAD " + self.path, lambda h: False)(self):
                    return
                self.send(200)

            def do_GET(self) -> None:
                stub.requests.append(("GET", self.path, None))
                if stub.override.get(self.path, lambda h: False)(self):
                    return
                stub.answer_get(self)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                jws = json.loads(self.rfile.read(length) or b"{}")
                raw = jws.get("payload", "")
                payload = (
                    json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
                    if raw
                    else None
                )
                stub.requests.append(("POST", self.path, payload))
                if stub.override.get(self.path, lambda h: False)(self):
                    return
                stub.answer_post(self, payload)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_cert.configure_cert(ctx)
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self._thread.start()

    # -- the script --------------------------------------------------------------------------

    @property
    def directory_url(self) -> str:
        return self.url + "/dir"

    def directory(self) -> dict[str, Any]:
        base = self.url
        doc = {
            "newNonce": base + "/nonce",
            "newAccount": base + "/acct",
            "newOrder": base + "/order",
            "revokeCert": base + "/revoke",
            "keyChange": base + "/keychange",
            "meta": {},
        }
        if self.behaviour["renewal_info"]:
            doc["renewalInfo"] = base + "/ari"
        return doc

    def answer_get(self, h: Any) -> None:
        if h.path == "/dir":
            h.send(200, self.directory())
        elif h.path.startswith("/ari/"):
            headers = {}
            if self.behaviour["ari_retry_after"] is not None:
                headers["Retry-After"] = self.behaviour["ari_retry_after"]
            h.send(200, {"suggestedWindow": self.behaviour["ari"]}, headers)
        else:
            h.send(404, {"type": "about:blank", "detail": "no such thing"})

    def order(self) -> dict[str, Any]:
        idents = []
        for payload in self.payloads("/order")[-1:]:
            idents = (payload or {}).get("identifiers", [])
        return {
            "status": "ready",
            "identifiers": idents,
            "authorizations": [],
            "finalize": self.url + "/finalize",
        }

    def answer_post(self, h: Any, payload: dict[str, Any] | None) -> None:
        order = self.order()
        if h.path == "/acct":
            h.send(201, {"status": "valid"}, {"Location": self.url + "/acct/1"})
        elif h.path == "/order" and self.behaviour["rate_limit"]:
            h.send(
                429,
                {"type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many orders"},
                {"Retry-After": "120"},
            )
        elif h.path == "/order":
            if payload and "replaces" in payload and self.behaviour["reject_replaces"]:
                h.send(
                    409,
                    {
                        "type": "urn:ietf:params:acme:error:alreadyReplaced",
                        "detail": "already replaced",
                    },
                )
                return
            h.send(201, order, {"Location": self.url + "/order/1"})
        elif h.path in ("/finalize", "/order/1"):
            if h.path == "/finalize" and payload and "csr" in payload:
                der = base64.urlsafe_b64decode(payload["csr"] + "=" * (-len(payload["csr"]) % 4))
                self.csr = x509.load_der_x509_csr(der)
            if self.behaviour["processing_polls"] > 0:
                self.behaviour["processing_polls"] -= 1
                headers = {}
                if self.behaviour["retry_after"] is not None:
                    headers["Retry-After"] = self.behaviour["retry_after"]
                h.send(200, {**order, "status": "processing"}, headers)
            else:
                h.send(200, {**order, "status": "valid", "certificate": self.url + "/cert/1"})
        elif h.path == "/cert/1":
            body = self.certificate_chain().encode()
            h.send(200, body, {"Content-Type": "application/pem-certificate-chain"})
        elif h.path in ("/revoke", "/keychange"):
            h.send(200)
        else:
            h.send(404, {"type": "urn:ietf:params:acme:error:malformed"})

    def certificate_chain(self) -> str:
        assert self.csr is not None, "finalize first"
        san = self.csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = self.behaviour["cert_names"] or list(san.get_values_for_type(x509.DNSName))
        public_key = self.behaviour["cert_key"] or self.csr.public_key()
        issuer_key, issuer = self.behaviour["cert_issuer"] or (self.issuer_key, self.issuer)
        now = dt.datetime.now(UTC)
        not_after = self.behaviour["not_after"] or now + dt.timedelta(days=90)
        leaf = issue_leaf(
            issuer_key, issuer, public_key, names, now - dt.timedelta(minutes=1), not_after
        )
        return pem(leaf) + pem(issuer)

    def payloads(self, path: str) -> list[dict[str, Any] | None]:
        return [p for (m, pth, p) in self.requests if m == "POST" and pth == path]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


# -- helpers for tests that drive keylife against the stub ----------------------------------


def stub_settings(stub: StubAcme, *domains: str, **kwargs: Any) -> Any:
    """CertSettings for ``domains`` at the stub (orders there need no challenge)."""
    from keylife.acme import CertSettings

    fields: dict[str, Any] = {
        "directory": stub.directory_url,
        "domains": domains or ("stub.example.com",),
        "ca_bundle": stub.ca_bundle,
        "trust_roots": stub.roots_file,
        "poll_interval": 0.02,
        "agree_tos": True,
    }
    return CertSettings(**{**fields, **kwargs})


def cli_args(stub: StubAcme) -> list[str]:
    return [
        "--directory",
        stub.directory_url,
        "--ca-bundle",
        stub.ca_bundle,
        "--trust-roots",
        stub.roots_file,
        "--agree-tos",
        "--poll-interval",
        "0.02",
    ]


def run_cli(home: Path, *args: str, timeout: float = 60) -> Any:
    """``python -m keylife_cli --store ... ARGS`` in a fresh environment; the CompletedProcess."""
    import os
    import subprocess
    import sys

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
    cmd = [
        sys.executable,
        "-m",
        "keylife_cli",
        "--store",
        str(home / "data" / "keylife.db"),
        "--master-key-file",
        str(home / "config" / "master.key"),
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
