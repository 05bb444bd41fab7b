"""The roll-up of a fleet run (``tls check --summary``), built one report at a time.

Counts are of endpoints: how many got each verdict, how many broke each rule, how many accept
each protocol version and each suite (over the endpoints that were judged: verdict pass or
fail), and which leaf certificates expire within the window (already expired ones included,
with a negative ``days_left``). Memory stays flat whatever the number of endpoints, except for
the list of expiring certificates.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from keylife.tls.report import TlsReport, Verdict, overall_verdict

__all__ = ["DEFAULT_EXPIRING", "ExpiringCertificate", "FleetSummary"]

DEFAULT_EXPIRING = dt.timedelta(days=30)
_VERDICTS: tuple[Verdict, ...] = ("pass", "fail", "error")
_PROTOCOLS = ("SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")


@dataclass(frozen=True)
class ExpiringCertificate:
    target: str
    server_name: str | None
    subject: str
    not_after: str
    days_left: int


@dataclass
class FleetSummary:
    """Add each report with :meth:`add`; :meth:`to_dict` is the JSON roll-up."""

    now: dt.datetime
    expiring_within: dt.timedelta = DEFAULT_EXPIRING
    verdicts: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    protocols: Counter[str] = field(default_factory=Counter)
    suites: Counter[str] = field(default_factory=Counter)
    expiring: list[ExpiringCertificate] = field(default_factory=list)
    targets: int = 0

    def add(self, report: TlsReport) -> None:
        self.verdicts[report.verdict] += 1
        self.rules.update({f.rule_id for f in report.findings})
        if report.verdict == "error":
            return
        self.protocols.update(p.version for p in report.protocols if p.accepted)
        self.suites.update({s.name for s in report.suites})
        if report.certificates:
            self._leaf(report)

    def _leaf(self, report: TlsReport) -> None:
        leaf = report.certificates[0]
        not_after = dt.datetime.fromisoformat(leaf.not_after)
        if not_after.tzinfo is None:
            not_after = not_after.replace(tzinfo=dt.UTC)
        left = not_after - self.now
        if left <= self.expiring_within:
            self.expiring.append(
                ExpiringCertificate(
                    report.target, report.server_name, leaf.subject, leaf.not_after, left.days
                )
            )

    @property
    def endpoints(self) -> int:
        return sum(self.verdicts.values())

    def to_dict(self, *, interrupted: bool = False) -> dict[str, Any]:
        """The roll-up; ``not_checked`` counts targets given but not reported."""
        days = self.expiring_within.total_seconds() / 86400
        return {
            "kind": "summary",
            "verdict": overall_verdict([v for v in _VERDICTS if self.verdicts[v]]),
            "endpoints": self.endpoints,
            "not_checked": max(0, self.targets - self.endpoints),
            "interrupted": interrupted,
            "verdicts": {v: self.verdicts[v] for v in _VERDICTS},
            "rules": dict(sorted(self.rules.items())),
            "expiring": {
                "within_days": int(days) if days == int(days) else days,
                "count": len(self.expiring),
                "certificates": [
                    asdict(c) for c in sorted(self.expiring, key=lambda c: (c.not_after, c.target))
                ],
            },
            "protocols": {p: self.protocols[p] for p in _PROTOCOLS if self.protocols[p]},
            "suites": dict(sorted(self.suites.items(), key=lambda kv: (-kv[1], kv[0]))),
        }
