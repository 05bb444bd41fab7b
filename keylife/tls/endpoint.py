"""check_endpoint: probe a TLS server and judge it against a policy."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cryptography import x509

from keylife.clock import SystemClock
from keylife.errors import ProbeError, TlsError
from keylife.tls.certs import CERTIFICATE_ERRORS, evaluate_chain, load_chain
from keylife.tls.ciphersuites import group_by_code, suite_by_code
from keylife.tls.gate import ConnectionGate
from keylife.tls.policy import TlsPolicy, load_policy
from keylife.tls.probe import EndpointObservation, fetch_chain_tls13, observe_endpoint
from keylife.tls.report import ProtocolSupport, TlsReport, Verdict
from keylife.tls.rules import (
    FindingCollector,
    SeenSuite,
    evaluate_groups,
    evaluate_protocols,
    evaluate_suites,
)
from keylife.tls.targets import check_host, check_server_name, parse_target

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUT",
    "check_endpoint",
    "check_endpoints",
    "parse_target",
]

DEFAULT_TIMEOUT = 5.0
"""Seconds one connection may take: connect, ClientHello, the server's whole first flight."""
DEFAULT_DEADLINE = 30.0
"""Seconds one endpoint may take, all its connections together; then its verdict is error."""


def check_endpoint(
    host: str,
    port: int = 443,
    policy: TlsPolicy | str | Path | None = None,
    *,
    sni: str | None = None,
    ca_file: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
    max_connections: int = 4,
    now: dt.datetime | None = None,
    gate: ConnectionGate | None = None,
    cancel: threading.Event | None = None,
) -> TlsReport:
    """Probe ``host:port`` and judge it against ``policy``.

    Never raises for a peer that misbehaves: an unreachable, silent, slow, oversized or non-TLS
    peer gives a report with verdict ``error``, at the latest ``deadline`` seconds after the
    start (each connection also within ``timeout``); the report then carries what was seen so
    far. Raises :class:`keylife.errors.TlsError` only for bad arguments (an unknown policy, an
    unreadable CA file, a host or ``sni`` that is not a host name: ``TlsTargetError``).
    ``gate`` is a connection limit shared with other endpoints; setting ``cancel`` abandons
    the probe (verdict error, "interrupted").
    """
    pol = load_policy(policy)
    check_host(host)
    if not deadline > 0 or not timeout > 0:
        raise TlsError("timeout and deadline must be positive numbers of seconds")
    ca = str(ca_file) if ca_file is not None else None
    if ca is not None and not Path(ca).is_file():
        raise TlsError(f"CA file not found: {ca}")
    name = sni if sni is not None else _default_sni(host)
    server_name = check_server_name(name) if name else None
    started = time.monotonic()
    base: dict[str, Any] = {
        "host": host,
        "port": port,
        "server_name": server_name,
        "policy": pol.name,
    }
    obs = observe_endpoint(
        host,
        port,
        sni=server_name,
        timeout=timeout,
        deadline=deadline,
        max_connections=max_connections,
        fetch_tls13_chain=fetch_chain_tls13,
        gate=gate,
        cancel=cancel,
    )
    try:
        chain = load_chain(obs.certificates) if obs.error is None else []
    except ProbeError as exc:
        obs.error = str(exc)
    if obs.error is not None:
        return _error_report(obs, base, started)
    try:
        return _judge(obs, chain, pol, base, server_name or host, ca, now, started)
    except CERTIFICATE_ERRORS as exc:  # a certificate too odd to evaluate
        return TlsReport(
            **base,
            verdict="error",
            error=f"cannot evaluate the peer's certificate: {exc}",
            duration_ms=int((time.monotonic() - started) * 1000),
        )


def _error_report(obs: EndpointObservation, base: dict[str, Any], started: float) -> TlsReport:
    """Verdict error, with what was seen before the probe stopped."""
    accepted = [v for v, ok in obs.versions.items() if ok]
    seen = [
        SeenSuite(a.version, suite, a.dh_bits, a.group)
        for a in obs.suites
        if (suite := suite_by_code(a.code)) is not None
    ]
    summary = ", ".join(
        f"{v.label} ({sum(1 for a in obs.suites if a.version == v)} suites)" for v in accepted
    )
    return TlsReport(
        **base,
        verdict="error",
        error=f"{obs.error}; seen so far: {summary}" if summary else obs.error,
        protocols=tuple(ProtocolSupport(v.label, True) for v in accepted),
        suites=tuple(s.result() for s in seen),
        groups=tuple(g.name for c in obs.groups if (g := group_by_code(c)) is not None),
        handshakes=obs.handshakes,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def _judge(
    obs: EndpointObservation,
    chain: list[x509.Certificate],
    pol: TlsPolicy,
    base: dict[str, Any],
    name: str,
    ca: str | None,
    now: dt.datetime | None,
    started: float,
) -> TlsReport:
    out = FindingCollector(pol)
    evaluate_protocols([v for v, ok in obs.versions.items() if ok], pol, out, what="accepts")
    seen = []
    for accepted in obs.suites:
        suite = suite_by_code(accepted.code)
        if suite is not None:
            seen.append(SeenSuite(accepted.version, suite, accepted.dh_bits, accepted.group))
    evaluate_suites(seen, pol, out)
    evaluate_groups(obs.groups, pol, out)
    infos, trusted = evaluate_chain(
        chain,
        host=name,
        ca_file=ca,
        now=now or SystemClock().now(),
        out=out,
    )
    findings = out.findings
    verdict: Verdict = "fail" if any(f.severity == "fail" for f in findings) else "pass"
    return TlsReport(
        **base,
        verdict=verdict,
        findings=findings,
        protocols=tuple(ProtocolSupport(v.label, ok) for v, ok in obs.versions.items()),
        suites=tuple(s.result() for s in seen),
        groups=tuple(g.name for c in obs.groups if (g := group_by_code(c)) is not None),
        certificates=infos,
        trusted=trusted,
        handshakes=obs.handshakes,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def _default_sni(host: str) -> str | None:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    return None


def check_endpoints(
    targets: Sequence[str | tuple[str, int]],
    policy: TlsPolicy | str | Path | None = None,
    *,
    sni: str | None = None,
    ca_file: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
    max_connections: int = 4,
    max_endpoints: int = 8,
    now: dt.datetime | None = None,
) -> list[TlsReport]:
    """Check several endpoints concurrently; reports come back in the order given.

    Every argument is checked before the first connection, so a bad one raises
    :class:`keylife.errors.TlsError` and nothing is probed. Each endpoint's ``deadline`` starts
    when its check starts.
    """
    pol = load_policy(policy)
    parsed = [parse_target(t) if isinstance(t, str) else (check_host(t[0]), t[1]) for t in targets]
    if sni is not None:
        check_server_name(sni)
    if not parsed:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_endpoints, len(parsed)))) as pool:
        futures = [
            pool.submit(
                check_endpoint,
                host,
                port,
                pol,
                sni=sni,
                ca_file=ca_file,
                timeout=timeout,
                deadline=deadline,
                max_connections=max_connections,
                now=now,
            )
            for host, port in parsed
        ]
        return [f.result() for f in futures]
