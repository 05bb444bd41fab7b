"""Socket I/O against an endpoint: which versions, suites and groups it accepts.

Suites are enumerated the way testssl.sh does it: offer every suite, note the one the server
picks, remove it and offer the rest again, until the server refuses. That costs one handshake
per accepted suite plus one per protocol version, instead of one per (version, suite) pair.

Nothing a peer does can hold the prober for long or make it hold much: every connection has a
timeout, the whole endpoint has a deadline (every connection's time is cut to what is left of
it), every read is at most one TLS record, and the parser holds at most ``MAX_FLIGHT_BYTES`` and
``MAX_CERTIFICATES`` per connection. The first failure of any connection stops the others.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from keylife.errors import FlightLimitError, HelloParseError, ProbeError
from keylife.tls.ciphersuites import GROUPS, suite_by_code, suites_for_tls12, suites_for_tls13
from keylife.tls.clienthello import (
    MAX_CERTIFICATES,
    MAX_RECORD_PAYLOAD,
    ClientHelloSpec,
    ServerFlight,
    ServerFlightParser,
    TlsVersion,
    build_client_hello,
)
from keylife.tls.gate import ConnectionGate

__all__ = [
    "INTERRUPTED",
    "POLL_INTERVAL",
    "RECV_SIZE",
    "AcceptedSuite",
    "EndpointObservation",
    "ProbeError",
    "fetch_chain_tls13",
    "observe_endpoint",
]

LEGACY_VERSIONS = (TlsVersion.SSL3, TlsVersion.TLS1_0, TlsVersion.TLS1_1, TlsVersion.TLS1_2)
RECV_SIZE = MAX_RECORD_PAYLOAD + 5
"""Most bytes taken from the socket in one read: one TLS record."""
POLL_INTERVAL = 0.25
"""How often a waiting connection looks whether the endpoint's probe was stopped."""
INTERRUPTED = "interrupted: the run was stopped before this endpoint was done"

Address = tuple[Any, Any, int, str, Any]  # getaddrinfo: family, type, proto, name, sockaddr
ChainFetcher = Callable[[str, int, str | None, float], list[bytes]]


@dataclass(frozen=True)
class AcceptedSuite:
    version: TlsVersion
    code: int
    dh_bits: int | None
    group: int | None


@dataclass
class EndpointObservation:
    """Raw facts about one endpoint, before any policy is applied.

    ``error`` is set when the probe could not finish (unreachable, not TLS, a cap or the
    deadline reached); the other fields then hold what was seen until then.
    """

    versions: dict[TlsVersion, bool] = field(default_factory=dict)
    suites: list[AcceptedSuite] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    certificates: list[bytes] = field(default_factory=list)
    handshakes: int = 0
    error: str | None = None


class _Endpoint:
    """One endpoint's connections: shared deadline, handshake count and first failure."""

    def __init__(
        self,
        host: str,
        port: int,
        sni: str | None,
        timeout: float,
        deadline: float,
        gate: ConnectionGate | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.gate = gate
        self.cancel = cancel or threading.Event()
        self.host = host
        self.port = port
        self.sni = sni
        self.timeout = timeout
        self.deadline_s = deadline
        self.deadline = time.monotonic() + deadline
        self.addresses: list[Address] = []
        self.connected = host  # the address that last accepted a connection
        self.stop = threading.Event()
        self.error: ProbeError | None = None
        self._lock = threading.Lock()
        self.handshakes = 0

    def fail(self, exc: ProbeError) -> ProbeError:
        """Record the first failure and stop every other connection to this endpoint."""
        with self._lock:
            if self.error is None and not self.stop.is_set():
                self.error = exc
        self.stop.set()
        return exc

    def deadline_error(self) -> ProbeError:
        return ProbeError(
            f"endpoint deadline of {self.deadline_s:g} s reached after {self.handshakes} handshakes"
        )

    def slot(self, budget: float) -> AbstractContextManager[None]:
        """A slot of the run's connection limit, held while one connection is open."""
        return self.gate.slot(budget) if self.gate is not None else nullcontext()

    def budget(self) -> float:
        """Seconds the next connection may take: the timeout, cut to the deadline."""
        if self.cancel.is_set():
            raise self.fail(ProbeError(INTERRUPTED))
        if self.stop.is_set():
            raise ProbeError("stopped: another connection to this endpoint failed")
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.fail(self.deadline_error())
        return min(self.timeout, left)

    def exchange(self, spec: ClientHelloSpec) -> ServerFlight | None:
        """Send one ClientHello; the server's flight, or None if it closed without a word."""
        budget = self.budget()
        with self._lock:
            self.handshakes += 1
        parser = ServerFlightParser(spec.version)
        try:
            with self.slot(budget), self.connect(budget) as sock:
                sock.sendall(build_client_hello(spec))
                return self._read_flight(sock, parser, time.monotonic() + budget)
        except ProbeError as exc:
            raise self.fail(exc) from None
        except ConnectionResetError:
            if parser.flight.version is None and parser.flight.alert is None:
                return None  # some servers reset instead of sending an alert
            raise self.fail(ProbeError("connection reset mid-handshake")) from None
        except FlightLimitError as exc:
            raise self.fail(ProbeError(str(exc))) from exc
        except HelloParseError as exc:
            raise self.fail(ProbeError(f"not a TLS server ({exc})")) from exc
        except OSError as exc:
            raise self.fail(ProbeError(f"{exc.strerror or exc}")) from exc

    def _read_flight(
        self, sock: socket.socket, parser: ServerFlightParser, until: float
    ) -> ServerFlight | None:
        while not parser.flight.done:
            left = until - time.monotonic()
            if self.cancel.is_set():
                raise ProbeError(INTERRUPTED)
            if self.stop.is_set():
                raise ProbeError("stopped: another connection to this endpoint failed")
            if left <= 0:
                if until >= self.deadline:  # this connection's time was cut to the deadline
                    raise self.deadline_error()
                raise ProbeError(f"no complete TLS answer within {self.timeout:g} s")
            sock.settimeout(min(left, POLL_INTERVAL))
            try:
                data = sock.recv(min(RECV_SIZE, parser.room + 1))
            except TimeoutError:
                continue
            if not data:
                if parser.received == 0:
                    return None
                raise ProbeError("connection closed in the middle of the server's handshake")
            parser.feed(data)
        return parser.flight

    def connect(self, budget: float) -> socket.socket:
        """A connected socket to the first resolved address that answers within ``budget``."""
        until = time.monotonic() + budget
        last: OSError = OSError("no address to connect to")
        for family, type_, proto, _, sockaddr in self.addresses:
            left = until - time.monotonic()
            if left <= 0:
                break
            sock = socket.socket(family, type_, proto)
            sock.settimeout(left)
            try:
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            self.connected = str(sockaddr[0])
            return sock
        if isinstance(last, TimeoutError) or time.monotonic() >= until:
            raise ProbeError(f"could not connect within {budget:g} s")
        raise last


def resolve(host: str, port: int, timeout: float) -> list[Address]:
    """getaddrinfo with a deadline (the resolver call itself has none)."""
    found: list[Address] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise ProbeError(f"could not resolve {host} within {timeout:g} s")
    if errors:
        exc = errors[0]
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ProbeError(f"cannot resolve {host}: {reason}")
    if not found:
        raise ProbeError(f"cannot resolve {host}: no address")
    return found


def _accepted(flight: ServerFlight | None, version: TlsVersion) -> bool:
    return flight is not None and flight.alert is None and flight.version == version


def _enumerate(
    ep: _Endpoint,
    version: TlsVersion,
    found: list[tuple[int, ServerFlight]],
    first: ServerFlight | None = None,
) -> None:
    """Append to ``found`` the suites accepted at ``version``: offer all, remove the chosen one."""
    pool = suites_for_tls13() if version == TlsVersion.TLS1_3 else suites_for_tls12()
    remaining = [s.code for s in pool]
    groups = [g.code for g in GROUPS]
    flight = first
    while remaining:
        if flight is None:
            flight = ep.exchange(ClientHelloSpec(version, remaining, groups, ep.sni))
        if not _accepted(flight, version) or flight is None or flight.suite not in remaining:
            break
        found.append((flight.suite, flight))
        remaining.remove(flight.suite)
        flight = None


def _enumerate_groups(
    ep: _Endpoint, version: TlsVersion, suites: Sequence[int], found: list[int]
) -> None:
    """Append to ``found`` the groups accepted with ``suites``: offer all, remove the chosen."""
    remaining = [g.code for g in GROUPS]
    while remaining:
        flight = ep.exchange(ClientHelloSpec(version, suites, remaining, ep.sni))
        if not _accepted(flight, version) or flight is None or flight.group not in remaining:
            break
        found.append(flight.group)
        remaining.remove(flight.group)


def observe_endpoint(
    host: str,
    port: int,
    *,
    sni: str | None,
    timeout: float,
    deadline: float,
    max_connections: int = 4,
    fetch_tls13_chain: ChainFetcher | None = None,
    gate: ConnectionGate | None = None,
    cancel: threading.Event | None = None,
) -> EndpointObservation:
    """Probe every protocol version, suite and group within ``deadline`` seconds.

    Never raises for a misbehaving peer: the observation's ``error`` says why the probe
    stopped, and the other fields hold what was seen until then. Each connection holds a slot
    of ``gate`` (the run's connection limit) while open; ``cancel`` abandons the probe.
    """
    ep = _Endpoint(host, port, sni, timeout, deadline, gate, cancel)
    obs = EndpointObservation()
    results: dict[TlsVersion, list[tuple[int, ServerFlight]]] = {
        v: [] for v in (*LEGACY_VERSIONS, TlsVersion.TLS1_3)
    }
    try:
        ep.addresses = resolve(host, port, ep.budget())
        _probe(ep, obs, results, max_connections)
        _collect(obs, results)
        if not obs.certificates and obs.versions[TlsVersion.TLS1_3] and fetch_tls13_chain:
            budget = ep.budget()
            ep.handshakes += 1
            with ep.slot(budget):
                obs.certificates = fetch_tls13_chain(ep.connected, port, sni, budget)
        if not any(obs.versions.values()):
            raise ProbeError("the peer accepted no protocol version from SSL 3.0 to TLS 1.3")
    except ProbeError as exc:
        ep.fail(exc)
    if ep.error is not None:
        _collect(obs, results)
        obs.error = str(ep.error)
    obs.handshakes = ep.handshakes
    return obs


def _probe(
    ep: _Endpoint,
    obs: EndpointObservation,
    results: dict[TlsVersion, list[tuple[int, ServerFlight]]],
    max_connections: int,
) -> None:
    all12 = [s.code for s in suites_for_tls12()]
    groups = [g.code for g in GROUPS]
    # The first probe runs alone: an unreachable, silent or non-TLS peer fails here, once.
    first12 = ep.exchange(ClientHelloSpec(TlsVersion.TLS1_2, all12, groups, ep.sni))

    def run(version: TlsVersion) -> None:
        first = first12 if version == TlsVersion.TLS1_2 else None
        _enumerate(ep, version, results[version], first)

    with ThreadPoolExecutor(max_workers=max(1, max_connections)) as pool:
        # every connection is bounded by the deadline, so waiting for all of them is too
        futures = [pool.submit(run, v) for v in results]
        wait(futures)
        for fut in futures:  # a bug, not a peer: let it surface
            exc = fut.exception()
            if exc is not None and not isinstance(exc, ProbeError):
                raise exc
        if ep.error is not None:
            raise ep.error
        tls13 = results[TlsVersion.TLS1_3]
        if tls13:
            _enumerate_groups(ep, TlsVersion.TLS1_3, [c for c, _ in tls13], obs.groups)
            return
        best = next((v for v in reversed(LEGACY_VERSIONS) if results[v]), None)
        ecdhe = [
            code
            for code, _ in (results[best] if best else [])
            if (s := suite_by_code(code)) is not None and s.key_exchange == "ECDHE"
        ]
        if best is not None and ecdhe:
            _enumerate_groups(ep, best, ecdhe, obs.groups)


def _collect(
    obs: EndpointObservation, results: dict[TlsVersion, list[tuple[int, ServerFlight]]]
) -> None:
    """Fill ``obs`` from the (possibly partial) per-version results."""
    obs.suites.clear()
    for version, found in results.items():
        obs.versions[version] = bool(found)
        for code, flight in found:
            obs.suites.append(AcceptedSuite(version, code, flight.dh_bits, flight.group))
    for version in reversed(LEGACY_VERSIONS):
        chain = next((f.certificates for _, f in results[version] if f.certificates), None)
        if chain:
            obs.certificates = list(chain)
            break


def fetch_chain_tls13(host: str, port: int, sni: str | None, timeout: float) -> list[bytes]:
    """The certificate chain as sent, from a real TLS 1.3 handshake (it is encrypted there).

    OpenSSL bounds what it holds (its certificate-list limit is 100 KiB); ``timeout`` bounds
    the whole handshake, connect included.
    """
    from OpenSSL import SSL
    from OpenSSL.crypto import FILETYPE_ASN1, dump_certificate

    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_cipher_list(b"ALL:@SECLEVEL=0")
    ctx.set_verify(SSL.VERIFY_NONE, lambda *a: True)
    until = time.monotonic() + timeout
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
                except (SSL.WantReadError, SSL.WantWriteError) as want:
                    left = until - time.monotonic()
                    reading = isinstance(want, SSL.WantReadError)
                    ready = select.select(
                        [sock] if reading else [], [] if reading else [sock], [], max(0.0, left)
                    )
                    if left <= 0 or not (ready[0] or ready[1]):
                        raise ProbeError(
                            f"TLS 1.3 handshake not done within {timeout:g} s"
                        ) from None
            chain = conn.get_peer_cert_chain() or []
            if len(chain) > MAX_CERTIFICATES:
                raise ProbeError(
                    f"the server sent more than {MAX_CERTIFICATES} certificates (MAX_CERTIFICATES)"
                )
            return [dump_certificate(FILETYPE_ASN1, c) for c in chain]
    except ProbeError:
        raise
    except (OSError, SSL.Error, UnicodeError) as exc:
        raise ProbeError(f"TLS 1.3 handshake failed: {exc}") from exc
