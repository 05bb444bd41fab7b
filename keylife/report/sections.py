"""Report sections read from the audit log and from outside checks: the last rotation runs,
audited recoveries and policy exceptions, and TLS endpoint results.

Everything here is pure: records and results in, frozen dataclasses out. A record whose text
does not have the expected shape (an older format, a damaged row) still gives an entry, with
the fields it lacks left empty, never an exception.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..audit import AuditRecord

__all__ = [
    "RUNS_SHOWN",
    "AuditedAct",
    "RunEntry",
    "TlsEndpoint",
    "TlsResults",
    "audited_acts",
    "last_runs",
]

#: How many rotation runs the report lists (newest first).
RUNS_SHOWN = 20

#: The reason of a ``rotate-run`` record, as :meth:`keylife.rotation.runner.Runner` writes it.
_RUN = re.compile(
    r"^policy (?P<source>.*) (?P<digest>sha256:[0-9a-f]{64}): (?P<succeeded>\d+) succeeded, "
    r"(?P<failed>\d+) failed, (?P<skipped>\d+) skipped$"
)


@dataclass(frozen=True)
class RunEntry:
    """One ``keylife rotate`` run, from its audit record."""

    seq: int
    at: str
    identity: str
    actor: str
    policy_source: str
    #: ``sha256:`` + hex of the effective policy (:func:`keylife.auditstate.policy_digest`).
    policy_sha256: str
    succeeded: int | None
    failed: int | None
    skipped: int | None
    outcome: str
    #: Rings whose rotation failure the log records since the previous run.
    failed_rings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.outcome == "success"


def last_runs(records: Sequence[AuditRecord], shown: int = RUNS_SHOWN) -> tuple[RunEntry, ...]:
    """The newest ``shown`` rotation runs, newest first."""
    runs: list[RunEntry] = []
    failing: dict[str, None] = {}
    for r in records:
        if r.damage:
            continue
        if r.action == "rotate" and r.outcome.startswith("failure") and r.ring:
            failing[r.ring] = None
            continue
        if r.action != "rotate-run":
            continue
        m = _RUN.match(r.reason)
        runs.append(
            RunEntry(
                seq=r.seq,
                at=r.at,
                identity=r.identity or r.actor,
                actor=r.actor,
                policy_source=m["source"] if m else "",
                policy_sha256=m["digest"] if m else "",
                succeeded=int(m["succeeded"]) if m else None,
                failed=int(m["failed"]) if m else None,
                skipped=int(m["skipped"]) if m else None,
                outcome=r.outcome,
                failed_rings=tuple(failing),
            )
        )
        failing = {}
    return tuple(reversed(runs[-shown:])) if shown > 0 else ()


@dataclass(frozen=True)
class AuditedAct:
    """Who did an exceptional act, and when: a recovery of a compromised key or a recorded
    policy exception."""

    action: str
    ring: str
    version: int | None
    at: str
    identity: str
    actor: str
    reason: str


def audited_acts(records: Sequence[AuditRecord]) -> list[AuditedAct]:
    """Every successful ``recover`` and ``policy-exception`` record, oldest first."""
    return [
        AuditedAct(r.action, r.ring, r.version, r.at, r.identity or r.actor, r.actor, r.reason)
        for r in records
        if r.action in ("recover", "policy-exception")
        and r.ring
        and not r.damage
        and r.outcome == "success"
    ]


@dataclass(frozen=True)
class TlsEndpoint:
    """The verdict on one endpoint of a ``--tls`` targets file."""

    target: str
    server_name: str | None
    verdict: str  # "pass", "fail", "error"
    #: Rule ids that failed, e.g. ``protocol.tls10``.
    findings: tuple[str, ...] = ()
    error: str = ""
    #: The leaf certificate's notAfter, when the handshake got that far.
    not_after: dt.datetime | None = None
    trusted: bool | None = None


@dataclass(frozen=True)
class TlsResults:
    """Results of the TLS fleet check the report ran (``keylife report --tls FILE``)."""

    source: str
    policy: str
    endpoints: tuple[TlsEndpoint, ...]

    def verdicts(self) -> dict[str, int]:
        counts = Counter(e.verdict for e in self.endpoints)
        return {v: counts.get(v, 0) for v in ("pass", "fail", "error")}

    def rules(self) -> list[tuple[str, int]]:
        """Failed rules by how many endpoints break them, most first."""
        counts = Counter(rule for e in self.endpoints for rule in set(e.findings))
        return sorted(counts.items(), key=lambda t: (-t[1], t[0]))

    def expiring(self, now: dt.datetime, within: dt.timedelta) -> list[TlsEndpoint]:
        """Endpoints whose leaf certificate ends before ``now + within``, soonest first."""
        soon = [e for e in self.endpoints if e.not_after and e.not_after <= now + within]
        return sorted(soon, key=lambda e: (e.not_after or now, e.target))
