"""Fleet runs of ``tls check``: a targets file, one connection limit, results as they finish.

A targets file holds one ``HOST[:PORT] [SNI]`` per line; ``#`` starts a comment and blank lines
are skipped. A line that does not parse becomes that target's ``error`` (with its line number),
so one typo in a 5,000-line inventory does not stop the other 4,999 checks.

:func:`check_fleet` checks targets concurrently under one :class:`ConnectionGate`: at most
``connections`` TCP connections are open at any moment in the whole run, and each endpoint
uses at most ``per_endpoint`` of them. Reports are yielded as endpoints finish; setting
``stop`` starts no new endpoint, setting ``cancel`` also abandons those in flight.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from keylife.errors import TlsError
from keylife.tls.endpoint import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, check_endpoint
from keylife.tls.gate import ConnectionGate
from keylife.tls.policy import TlsPolicy, load_policy
from keylife.tls.probe import INTERRUPTED
from keylife.tls.report import TlsReport
from keylife.tls.targets import check_server_name, parse_target

__all__ = [
    "DEFAULT_CONNECTIONS",
    "DEFAULT_PER_ENDPOINT",
    "MAX_TARGETS",
    "MAX_TARGETS_FILE_BYTES",
    "Target",
    "check_fleet",
    "parse_target_line",
    "read_targets",
    "unique_targets",
]

DEFAULT_CONNECTIONS = 32
"""Most TCP connections open at once in a whole run."""
DEFAULT_PER_ENDPOINT = 4
"""Most TCP connections open at once to one endpoint."""
MAX_TARGETS_FILE_BYTES = 16 * 1024 * 1024
"""Largest targets file read (about 300,000 lines of typical host names)."""
MAX_TARGETS = 100_000
"""Most targets in one run."""
_WAKE = 0.2  # seconds between looks at stop/cancel while endpoints run


@dataclass(frozen=True)
class Target:
    """One endpoint to check; ``error`` is set when its line did not parse."""

    host: str
    port: int
    sni: str | None = None
    source: str = ""
    error: str | None = None

    @property
    def key(self) -> tuple[str, int, str]:
        """Targets with the same key are the same check (host names compare case-blind)."""
        return (self.host.lower().rstrip("."), self.port, (self.sni or "").lower())


def parse_target_line(text: str, source: str, default_port: int = 443) -> Target | None:
    """One line of a targets file: None for a blank or comment line, else a :class:`Target`.

    Never raises for bad content: a line that does not parse gives a target with ``error``.
    """
    body = text.split("#", 1)[0].strip()
    if not body:
        return None
    fields = body.split()
    try:
        if len(fields) > 2:
            raise TlsError(f"expected HOST[:PORT] [SNI], found {len(fields)} fields")
        host, port = parse_target(fields[0], default_port)
        sni = check_server_name(fields[1]) if len(fields) == 2 else None
    except TlsError as exc:
        shown = fields[0] if len(fields[0]) <= 253 else fields[0][:250] + "..."
        return Target(shown, 0, None, source, f"{source}: {exc}")
    return Target(host, port, sni, source)


def read_targets(path: str | Path) -> list[Target]:
    """Every target of a targets file, in file order; :class:`TlsError` if it cannot be read.

    The file is read up to :data:`MAX_TARGETS_FILE_BYTES` and may hold :data:`MAX_TARGETS`
    targets; a line that is not UTF-8 or does not parse is a target with ``error``.
    """
    name = str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_TARGETS_FILE_BYTES + 1)
    except OSError as exc:
        raise TlsError(f"cannot read targets file {name}: {exc.strerror or exc}") from exc
    if len(data) > MAX_TARGETS_FILE_BYTES:
        raise TlsError(
            f"targets file {name} is larger than {MAX_TARGETS_FILE_BYTES} bytes "
            "(MAX_TARGETS_FILE_BYTES); split it into several runs"
        )
    out: list[Target] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        source = f"{name} line {number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            out.append(Target("?", 0, None, source, f"{source}: not UTF-8 text"))
            continue
        target = parse_target_line(line, source)
        if target is not None:
            out.append(target)
        if len(out) > MAX_TARGETS:
            raise TlsError(f"targets file {name} holds more than {MAX_TARGETS} targets")
    return out


def unique_targets(targets: Iterable[Target]) -> list[Target]:
    """``targets`` without repeats (first occurrence kept); lines in error are all kept."""
    seen: set[tuple[str, int, str]] = set()
    out: list[Target] = []
    for target in targets:
        if target.error is None:
            if target.key in seen:
                continue
            seen.add(target.key)
        out.append(target)
    return out


def _error_report(target: Target, policy: str) -> TlsReport:
    return TlsReport(
        host=target.host,
        port=target.port,
        server_name=target.sni,
        policy=policy,
        verdict="error",
        error=target.error,
    )


def check_fleet(
    targets: Sequence[Target],
    policy: TlsPolicy | str | Path | None = None,
    *,
    connections: int = DEFAULT_CONNECTIONS,
    per_endpoint: int = DEFAULT_PER_ENDPOINT,
    ca_file: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
    now: dt.datetime | None = None,
    stop: threading.Event | None = None,
    cancel: threading.Event | None = None,
    gate: ConnectionGate | None = None,
) -> Iterator[tuple[int, TlsReport]]:
    """Yield ``(index in targets, report)`` as each endpoint's check ends.

    Targets whose line did not parse come first, as error reports. At most ``connections``
    TCP connections are open at once (``gate``, when given, is that limit and records its
    peak); ``connections // per_endpoint`` endpoints are checked at once, so no endpoint
    waits for a connection slot and its ``deadline`` is all its own. Once ``stop`` is set no
    new endpoint starts; once ``cancel`` is set the endpoints in flight are abandoned within
    about a second and not yielded. Closing the iterator early abandons them too.
    """
    pol = load_policy(policy)
    if connections < 1 or per_endpoint < 1:
        raise TlsError("--connections and --per-endpoint are at least 1")
    stop = stop or threading.Event()
    cancel = cancel or threading.Event()
    gate = gate or ConnectionGate(connections)
    per = min(per_endpoint, gate.limit)
    pending: deque[tuple[int, Target]] = deque()
    for index, target in enumerate(targets):
        if target.error is not None:
            yield index, _error_report(target, pol.name)
        else:
            pending.append((index, target))
    if not pending:
        return
    in_flight = max(1, min(gate.limit // per, len(pending)))
    abandon = threading.Event()
    running: dict[Future[TlsReport], int] = {}
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="tls-endpoint") as pool:
        try:
            while pending or running:
                while (
                    pending and len(running) < in_flight and not (stop.is_set() or cancel.is_set())
                ):
                    index, target = pending.popleft()
                    fut = pool.submit(
                        check_endpoint,
                        target.host,
                        target.port,
                        pol,
                        sni=target.sni,
                        ca_file=ca_file,
                        timeout=timeout,
                        deadline=deadline,
                        max_connections=per,
                        now=now,
                        gate=gate,
                        cancel=abandon,
                    )
                    running[fut] = index
                if not running:
                    break
                done, _ = wait(running, timeout=_WAKE, return_when=FIRST_COMPLETED)
                if cancel.is_set():
                    abandon.set()
                for fut in done:
                    index = running.pop(fut)
                    report = fut.result()
                    if abandon.is_set() and report.error and INTERRUPTED in report.error:
                        continue
                    yield index, report
        finally:
            abandon.set()  # a consumer that stops early does not wait for the deadline
