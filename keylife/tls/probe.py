"""Socket I/O against an endpoint: which versions, suites and groups it accepts.

Suites are enumerated the way testssl.sh does it: offer every suite, note the one the server
picks, remove it and offer the rest again, until the server refuses. That costs one handshake
per accepted suite plus one per protocol version, instead of one per (version, suite) pair.
Each connection has a hard deadline, so a peer that never answers, or dribbles bytes, cannot
hold a check for longer than the timeout.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from keylife.errors import TlsError
from keylife.tls.ciphersuites import GROUPS, suite_by_code, suites_for_tls12, suites_for_tls13
from keylife.tls.clienthello import (
    ClientHelloSpec,
    HelloParseError,
    ServerFlight,
    ServerFlightParser,
    TlsVersion,
    build_client_hello,
)

__all__ = ["AcceptedSuite", "EndpointObservation", "ProbeError", "observe_endpoint"]

LEGACY_VERSIONS = (TlsVersion.SSL3, TlsVersion.TLS1_0, TlsVersion.TLS1_1, TlsVersion.TLS1_2)


class ProbeError(TlsError):
    """The endpoint could not be probed: unreachable, not TLS, or too slow."""


@dataclass(frozen=True)
class AcceptedSuite:
    version: TlsVersion
    code: int
    dh_bits: int | None
    group: int | None


@dataclass
class EndpointObservation:
    """Raw facts about one endpoint, before any policy is applied."""

    versions: dict[TlsVersion, bool] = field(default_factory=dict)
    suites: list[AcceptedSuite] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    certificates: list[bytes] = field(default_factory=list)
    handshakes: int = 0


class _Endpoint:
    def __init__(self, host: str, port: int, sni: str | None, timeout: float) -> None:
        self.host = host
        self.port = port
        self.sni = sni
        self.timeout = timeout
        self._lock = threading.Lock()
        self.handshakes = 0

    def exchange(self, spec: ClientHelloSpec) -> ServerFlight | None:
        """Send one ClientHello; the server's flight, or None if it closed without a word."""
        with self._lock:
            self.handshakes += 1
        deadline = time.monotonic() + self.timeout
        parser = ServerFlightParser(spec.version)
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
                sock.sendall(build_client_hello(spec))
                received = 0
                while not parser.flight.done:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise ProbeError(f"no complete TLS answer within {self.timeout:g} s")
                    sock.settimeout(left)
                    data = sock.recv(65536)
                    if not data:
                        if received == 0:
                            return None
                        raise ProbeError(
                            "connection closed in the middle of the server's handshake"
                        )
                    received += len(data)
                    parser.feed(data)
        except ProbeError:
            raise
        except TimeoutError as exc:
            raise ProbeError(f"no TLS answer within {self.timeout:g} s") from exc
        except ConnectionResetError:
            if parser.flight.version is None and parser.flight.alert is None:
                return None  # some servers reset instead of sending an alert
            raise ProbeError("connection reset mid-handshake") from None
        except HelloParseError as exc:
            raise ProbeError(f"not a TLS server ({exc})") from exc
        except OSError as exc:
            raise ProbeError(f"{exc.strerror or exc}") from exc
        return parser.flight


def _accepted(flight: ServerFlight | None, version: TlsVersion) -> bool:
    return flight is not None and flight.alert is None and flight.version == version


def _enumerate(
    ep: _Endpoint,
    version: TlsVersion,
    first: ServerFlight | None = None,
) -> list[tuple[int, ServerFlight]]:
    """Suites accepted at ``version``: offer all, remove the chosen one, repeat."""
    pool = suites_for_tls13() if version == TlsVersion.TLS1_3 else suites_for_tls12()
    remaining = [s.code for s in pool]
    groups = [g.code for g in GROUPS]
    found: list[tuple[int, ServerFlight]] = []
    flight = first
    while remaining:
        if flight is None:
            flight = ep.exchange(ClientHelloSpec(version, remaining, groups, ep.sni))
        if not _accepted(flight, version) or flight is None or flight.suite not in remaining:
            break
        found.append((flight.suite, flight))
        remaining.remove(flight.suite)
        flight = None
    return found


def _enumerate_groups(ep: _Endpoint, version: TlsVersion, suites: Sequence[int]) -> list[int]:
    """Groups accepted with ``suites``: offer all groups, remove the chosen one, repeat."""
    remaining = [g.code for g in GROUPS]
    found: list[int] = []
    while remaining:
        flight = ep.exchange(ClientHelloSpec(version, suites, remaining, ep.sni))
        if not _accepted(flight, version) or flight is None or flight.group not in remaining:
            break
        found.append(flight.group)
        remaining.remove(flight.group)
    return found


def observe_endpoint(
    host: str,
    port: int,
    *,
    sni: str | None,
    timeout: float,
    max_connections: int = 4,
    fetch_tls13_chain: Callable[[str, int, str | None, float], list[bytes]] | None = None,
) -> EndpointObservation:
    """Probe every protocol version, suite and group; raises ProbeError if not TLS."""
    ep = _Endpoint(host, port, sni, timeout)
    all12 = [s.code for s in suites_for_tls12()]
    groups = [g.code for g in GROUPS]
    # The first probe runs alone: an unreachable, silent or non-TLS peer fails here, once.
    first12 = ep.exchange(ClientHelloSpec(TlsVersion.TLS1_2, all12, groups, sni))
    obs = EndpointObservation()
    results: dict[TlsVersion, list[tuple[int, ServerFlight]]] = {}

    def run(version: TlsVersion) -> None:
        first = first12 if version == TlsVersion.TLS1_2 else None
        results[version] = _enumerate(ep, version, first)

    with ThreadPoolExecutor(max_workers=max(1, max_connections)) as pool:
        futures = [pool.submit(run, v) for v in (*LEGACY_VERSIONS, TlsVersion.TLS1_3)]
        for fut in futures:
            fut.result()
        tls13 = results[TlsVersion.TLS1_3]
        if tls13:
            obs.groups = _enumerate_groups(ep, TlsVersion.TLS1_3, [c for c, _ in tls13])
        else:
            best = next((v for v in reversed(LEGACY_VERSIONS) if results[v]), None)
            ecdhe = [
                code
                for code, _ in (results[best] if best else [])
                if (s := suite_by_code(code)) is not None and s.key_exchange == "ECDHE"
            ]
            if best is not None and ecdhe:
                obs.groups = _enumerate_groups(ep, best, ecdhe)
    for version in (*LEGACY_VERSIONS, TlsVersion.TLS1_3):
        obs.versions[version] = bool(results[version])
        for code, flight in results[version]:
            obs.suites.append(AcceptedSuite(version, code, flight.dh_bits, flight.group))
    for version in reversed(LEGACY_VERSIONS):
        chain = next((f.certificates for _, f in results[version] if f.certificates), None)
        if chain:
            obs.certificates = list(chain)
            break
    if not obs.certificates and obs.versions[TlsVersion.TLS1_3] and fetch_tls13_chain:
        obs.certificates = fetch_tls13_chain(host, port, sni, timeout)
        ep.handshakes += 1
    obs.handshakes = ep.handshakes
    if not any(obs.versions.values()):
        raise ProbeError("the peer accepted no protocol version from SSL 3.0 to TLS 1.3")
    return obs


def fetch_chain_tls13(host: str, port: int, sni: str | None, timeout: float) -> list[bytes]:
    """The certificate chain as sent, from a real TLS 1.3 handshake (it is encrypted there)."""
    from OpenSSL import SSL
    from OpenSSL.crypto import FILETYPE_ASN1, dump_certificate

    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_cipher_list(b"ALL:@SECLEVEL=0")
    ctx.set_verify(SSL.VERIFY_NONE, lambda *a: True)
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.setblocking(False)
            conn = SSL.Connection(ctx, sock)
            if sni:
                conn.set_tlsext_host_name(sni.encode("idna"))
            conn.set_connect_state()
            while True:
                try:
                    conn.do_handshake()
                    break
                except SSL.WantReadError:
                    left = deadline - time.monotonic()
                    if left <= 0 or not select.select([sock], [], [], left)[0]:
                        raise ProbeError("TLS 1.3 handshake timed out") from None
            chain = conn.get_peer_cert_chain() or []
            return [dump_certificate(FILETYPE_ASN1, c) for c in chain]
    except ProbeError:
        raise
    except (OSError, SSL.Error) as exc:
        raise ProbeError(f"TLS 1.3 handshake failed: {exc}") from exc
