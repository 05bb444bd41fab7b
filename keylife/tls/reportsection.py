"""``keylife report --tls TARGETS_FILE``: run the TLS fleet check and hand the report its
per-endpoint verdicts (:class:`keylife.report.sections.TlsResults`).

The targets file is the one ``keylife tls check --targets`` reads (same format, same limits);
a line that does not parse is that target's ``error`` verdict, as there.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from keylife.report.sections import TlsEndpoint, TlsResults
from keylife.tls.fleet import check_fleet, read_targets, unique_targets
from keylife.tls.policy import TlsPolicy, load_policy
from keylife.tls.report import TlsReport

__all__ = ["check_targets_file", "endpoint_entry"]


def endpoint_entry(report: TlsReport) -> TlsEndpoint:
    """The report's view of one endpoint's verdict (no handshake details)."""
    not_after = None
    if report.certificates:
        not_after = dt.datetime.fromisoformat(report.certificates[0].not_after)
        if not_after.tzinfo is None:
            not_after = not_after.replace(tzinfo=dt.UTC)
    return TlsEndpoint(
        target=report.target,
        server_name=report.server_name,
        verdict=report.verdict,
        findings=tuple(f.rule_id for f in report.findings),
        error=report.error or "",
        not_after=not_after,
        trusted=report.trusted,
    )


def check_targets_file(
    path: str | Path,
    *,
    now: dt.datetime,
    policy: TlsPolicy | str | Path | None = None,
    ca_file: str | Path | None = None,
) -> TlsResults:
    """Check every target of ``path`` (in file order in the result); :class:`TlsError` when
    the file cannot be read."""
    targets = unique_targets(read_targets(path))
    pol = load_policy(policy)
    found: dict[int, TlsEndpoint] = {}
    for index, report in check_fleet(targets, pol, ca_file=ca_file, now=now):
        found[index] = endpoint_entry(report)
    return TlsResults(str(path), pol.name, tuple(found[i] for i in sorted(found)))
