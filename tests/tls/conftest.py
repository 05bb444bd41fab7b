"""Fixtures: a run-time PKI and real TLS peers on 127.0.0.1 (see peers.py)."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tls import peers
from tests.tls.pki import Issued, Pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@dataclass(frozen=True)
class Endpoint:
    port: int
    ca_file: Path
    host: str = "127.0.0.1"
    sni: str = "localhost"

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"


def _ctx(
    cert: Issued,
    ciphers: str = "ECDHE+AESGCM:ECDHE+CHACHA20",
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = minimum
    ctx.maximum_version = maximum
    ctx.set_ciphers(ciphers)  # before loading: the security level decides what loads
    ctx.load_cert_chain(cert.cert_path, cert.key_path)
    return ctx


# name -> how to start it; Python ssl servers take an SSLContext, s_server takes arguments.
PythonPeer = Callable[[Pki], ssl.SSLContext]
OpensslPeer = Callable[[Pki], list[str]]


def _dhe1024(p: Pki) -> ssl.SSLContext:
    ctx = _ctx(
        p.rsa_leaf,
        "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=1",
        maximum=ssl.TLSVersion.TLSv1_2,
    )
    ctx.load_dh_params(p.dh1024)
    return ctx


PYTHON_PEERS: dict[str, PythonPeer] = {
    "strong": lambda p: _ctx(p.leaf),
    "strong-rsa": lambda p: _ctx(p.rsa_leaf),
    "tls13-only": lambda p: _ctx(p.leaf, minimum=ssl.TLSVersion.TLSv1_3),
    "rsa1024": lambda p: _ctx(p.rsa1024, "ECDHE+AESGCM:@SECLEVEL=1"),
    "expired": lambda p: _ctx(p.expired),
    "self-signed": lambda p: _ctx(p.self_signed),
    "wrong-host": lambda p: _ctx(p.wrong_host),
    "sha1": lambda p: _ctx(p.sha1, "ECDHE+AESGCM:@SECLEVEL=0"),
    "incomplete-chain": lambda p: _ctx(p.behind_intermediate),
    "dhe1024": _dhe1024,
}


def _cert_args(c: Issued) -> list[str]:
    return ["-cert", str(c.cert_path), "-key", str(c.key_path)]


OPENSSL_PEERS: dict[str, OpensslPeer] = {
    "tls10-11": lambda p: [
        *_cert_args(p.rsa_leaf),
        "-min_protocol", "TLSv1", "-cipher", "ECDHE+AESGCM:ECDHE+AES:@SECLEVEL=0",
    ],
    "null-suites": lambda p: [
        *_cert_args(p.rsa_leaf),
        "-cipher", "ECDHE-RSA-AES128-GCM-SHA256:NULL-SHA256:ECDHE-RSA-NULL-SHA:@SECLEVEL=0",
    ],
    "anonymous-only": lambda p: [
        "-nocert", "-no_tls1_3", "-cipher", "aNULL:-eNULL:@SECLEVEL=0",
    ],
    "openssl-strong": lambda p: [
        *_cert_args(p.leaf), "-cipher", "ECDHE+AESGCM:ECDHE+CHACHA20",
        "-groups", "X25519:P-256:P-384",
    ],
}  # fmt: skip

LEGACY_PEERS: dict[str, tuple[list[int], list[int]]] = {
    # versions, suites in server preference order
    "ssl3-rc4-3des": ([0x0300, 0x0301], [0x0005, 0x000A]),
    "tls12-3des": ([0x0303], [0x000A]),
    "tls10-export-null": ([0x0301], [0x0003, 0x0002]),
}

HOSTILE_PEERS: dict[str, Callable[..., None]] = {
    "never-answers": peers.never_answers,
    "garbage": peers.sends_garbage,
    "closes-mid-handshake": peers.closes_mid_handshake,
    "dribbles": peers.dribbles,
}


@pytest.fixture
def start_peer(pki: Pki) -> Iterator[Callable[[str], Endpoint]]:
    """start_peer(name) starts the named peer; everything started is stopped at teardown."""
    with ExitStack() as stack:

        def start(name: str) -> Endpoint:
            server: peers._ThreadedServer | peers.OpensslServer
            if name in PYTHON_PEERS:
                server = peers.PythonTlsServer(PYTHON_PEERS[name](pki))
            elif name in OPENSSL_PEERS:
                server = peers.OpensslServer(OPENSSL_PEERS[name](pki))
            elif name in LEGACY_PEERS:
                versions, suites = LEGACY_PEERS[name]
                server = peers.LegacyServer(versions, suites, pki.rsa_leaf.der)
            elif name in HOSTILE_PEERS:
                server = peers.HostileServer(HOSTILE_PEERS[name])
            else:
                raise KeyError(name)
            stack.enter_context(server)
            return Endpoint(port=server.port, ca_file=pki.root.cert_path)

        yield start
