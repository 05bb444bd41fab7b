"""The compliance report as data: frozen dataclasses built by a pure function.

:func:`build_report` turns rings, a policy, the audit state, certificate facts and ``now`` into
a :class:`Report`. It reads no clock, store or file: the same inputs give the same report.
Renderers (:mod:`keylife.report.html`, :mod:`keylife.report.markdown`,
:mod:`keylife.report.jsonout`) only format a :class:`Report`. Nothing here holds key material:
versions contribute their metadata (spec, dates, state, public attributes) only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..audit import AuditRecord, ChainReport
from ..auditstate import StateFinding
from ..certificates import CERTIFICATE_PEM, is_account_ring, is_certificate_ring
from ..errors import KeylifeError
from ..lifecycle import KeyVersion, Ring, State
from ..limits import POLICY_EXCEPTION
from ..policy import Policy, Purpose
from ..specs import KeySpec
from .events import Event, upcoming_events
from .sections import AuditedAct, RunEntry, TlsResults, audited_acts, last_runs

__all__ = [
    "PROMISES",
    "AuditState",
    "CertificateEntry",
    "CertificateFacts",
    "ExceptionEntry",
    "Report",
    "RingEntry",
    "VersionEntry",
    "build_report",
    "compliance_counts",
]

#: How many failed audit records the report lists (newest first).
FAILURES_SHOWN = 50

#: The promises the report gives evidence for, and the section holding it.
PROMISES: tuple[tuple[str, str, str], ...] = (
    ("approved-lengths", "Approved algorithms and key lengths", "inventory"),
    ("dates", "Activation, deactivation and destruction dates", "inventory"),
    ("history", "Full history of every version", "inventory"),
    ("revocation", "Revocation and compromise handling", "exceptions"),
    ("storage", "Keys stored apart from the data they protect", "storage"),
    ("access", "Who acted, authenticated and on whose behalf", "audit"),
    ("audit", "Tamper-evident audit trail", "audit"),
    (
        "certificates",
        "TLS certificates renewed before they expire, from a known root",
        "certificates",
    ),
    ("rotation", "Keys rotated on schedule, under a recorded policy", "runs"),
    ("tls", "TLS endpoints configured as the policy requires (with --tls)", "tls"),
)


@dataclass(frozen=True)
class CertificateFacts:
    """What the certificate of one version says (read from its PEM by the caller)."""

    issuer: str = ""
    serial: str = ""
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    problem: str = ""
    #: The top of the stored chain: its subject when it is self-issued (a root), else the
    #: issuer it names (the root is then not in the chain, ``root_in_chain`` False).
    root_subject: str = ""
    #: ``sha256:`` + hex of the root certificate's DER, when the chain holds it.
    root_fingerprint: str = ""
    root_in_chain: bool | None = None


@dataclass(frozen=True)
class VersionEntry:
    number: int
    state: str
    spec: str
    strength: int
    created: dt.datetime
    age_days: int
    activation: dt.datetime | None
    deactivation: dt.datetime | None
    destroyed: dt.datetime | None
    compromised: dt.datetime | None
    grace_end: dt.datetime | None
    #: It was active at some point (its history says so), so it has an active span.
    activated: bool
    primary: bool
    compliant: bool
    problems: tuple[str, ...]
    compliant_as_of: bool | None
    problems_as_of: tuple[str, ...]
    exception: str


@dataclass(frozen=True)
class RingEntry:
    name: str
    kind: str  # "key", "certificate", "acme-account"
    purpose: str
    spec: str
    strength: int
    created: dt.datetime
    damage: str
    next_due: dt.datetime | None
    versions: tuple[VersionEntry, ...]

    @property
    def compliant(self) -> bool:
        return all(v.compliant for v in self.versions)


@dataclass(frozen=True)
class ExceptionEntry:
    ring: str
    version: int | None
    # "policy-exception", "compromised", "recovery", "non-compliant", "non-compliant-as-of",
    # "damaged"
    kind: str
    detail: str
    #: When and by whom (authenticated identity), for acts the audit log records.
    at: str = ""
    by: str = ""


@dataclass(frozen=True)
class CertificateEntry:
    ring: str
    version: int
    state: str
    domains: tuple[str, ...]
    issuer: str
    serial: str
    not_after: dt.datetime | None
    days_left: int | None
    directory: str
    problem: str
    root_subject: str = ""
    root_fingerprint: str = ""
    root_in_chain: bool | None = None
    #: When the ring last got a new certificate (its newest certificate version, if not its
    #: first); None when it was never renewed.
    last_renewal: dt.datetime | None = None


@dataclass(frozen=True)
class AuditState:
    """The audit log as the report sees it: the verification result and the records."""

    verification: ChainReport
    head: tuple[int, str] | None
    records: Sequence[AuditRecord]
    #: Rings that differ from what the log last recorded (:func:`keylife.auditstate.check_state`).
    state: Sequence[StateFinding] = ()


@dataclass(frozen=True)
class Report:
    generated_at: dt.datetime
    as_of: dt.datetime | None
    window_days: int
    store: str
    policy: Mapping[str, object]
    rings: tuple[RingEntry, ...]
    exceptions: tuple[ExceptionEntry, ...]
    events: tuple[Event, ...]
    certificates: tuple[CertificateEntry, ...]
    audit_ok: bool  # the hash chain verifies (see ``state`` for the log against the rings)
    audit_records: int
    audit_head_seq: int | None
    audit_head_hash: str
    audit_first_bad_seq: int | None
    audit_problem: str
    actors: tuple[tuple[str, str, int], ...]  # (identity, on behalf of, records)
    failures: tuple[AuditRecord, ...]
    state: tuple[StateFinding, ...] = ()
    #: The newest ``keylife audit checkpoint`` record, if any.
    last_checkpoint: AuditRecord | None = None
    #: The newest rotation runs, newest first.
    runs: tuple[RunEntry, ...] = ()
    #: The TLS fleet check (``--tls``), when one was run.
    tls: TlsResults | None = None

    def events_by_ring(self) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = {}
        for e in self.events:
            out.setdefault(e.ring, []).append(e)
        return out

    def counts(self) -> dict[str, int]:
        all_versions = [v for r in self.rings for v in r.versions]
        return {
            "rings": len(self.rings),
            "versions": len(all_versions),
            "compliant": sum(v.compliant for v in all_versions),
            "non_compliant": sum(not v.compliant for v in all_versions),
            "non_compliant_as_of": sum(v.compliant_as_of is False for v in all_versions),
            "compromised": sum(
                v.state in (State.COMPROMISED.value, State.DESTROYED_COMPROMISED.value)
                for v in all_versions
            ),
            "exceptions": len(self.exceptions),
            "events": len(self.events),
            "certificates": len(self.certificates),
            "failures": len(self.failures),
            "state_findings": len(self.state),
            "runs": len(self.runs),
            "failed_runs": sum(not r.ok for r in self.runs),
            "tls_endpoints": 0 if self.tls is None else len(self.tls.endpoints),
            "tls_not_passing": 0
            if self.tls is None
            else sum(e.verdict != "pass" for e in self.tls.endpoints),
        }


class _Checker:
    """``policy.check`` of each (spec, purpose, date) once: 10,000 rings share a few specs."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.seen: dict[tuple[str, Purpose, dt.datetime], str] = {}

    def spec_problem(self, spec: KeySpec, purpose: Purpose, at: dt.datetime) -> str:
        key = (spec.name, purpose, at)
        if key not in self.seen:
            try:
                self.policy.check(spec, purpose, at)
                self.seen[key] = ""
            except KeylifeError as exc:
                self.seen[key] = str(exc).split(". Allowed")[0].split("; allowed")[0]
        return self.seen[key]


def _problems(ring: Ring, v: KeyVersion, checker: _Checker, at: dt.datetime) -> tuple[str, ...]:
    """Why ``v`` falls outside the policy at ``at`` (empty: compliant). Versions without
    material have nothing left to protect or process, so only their history is shown."""
    if not v.has_material:
        return ()
    policy = checker.policy
    problems: list[str] = []
    try:
        purpose = Purpose(ring.purpose)
    except ValueError:
        return (f"unknown purpose {ring.purpose!r}",)
    spec_problem = checker.spec_problem(v.spec, purpose, at)
    if spec_problem:
        problems.append(spec_problem)
    rules = policy.rules(purpose)
    if (
        v.activation is not None
        and v.deactivation is not None
        and v.deactivation - v.activation > rules.cryptoperiod
        and POLICY_EXCEPTION not in v.attributes
    ):
        days = (v.deactivation - v.activation).days
        problems.append(
            f"cryptoperiod of {days} days exceeds the {purpose.value} limit of "
            f"{rules.cryptoperiod.days} days"
        )
    return tuple(problems)


def compliance_counts(rings: Sequence[Ring], policy: Policy, now: dt.datetime) -> tuple[int, int]:
    """(compliant, non-compliant) versions of ``rings`` under ``policy`` at ``now``, as the
    report's inventory counts them (versions without material are compliant history)."""
    checker = _Checker(policy)
    bad = sum(bool(_problems(r, v, checker, now)) for r in rings for v in r.versions)
    return sum(len(r.versions) for r in rings) - bad, bad


def _grace_end(ring: Ring, v: KeyVersion, policy: Policy) -> dt.datetime | None:
    if v.deactivation is None:
        return None
    try:
        return v.deactivation + policy.rules(Purpose(ring.purpose)).grace_period
    except ValueError:
        return None


def _version(
    ring: Ring,
    v: KeyVersion,
    checker: _Checker,
    now: dt.datetime,
    as_of: dt.datetime | None,
    primary: KeyVersion | None,
) -> VersionEntry:
    problems = _problems(ring, v, checker, now)
    later = None if as_of is None else _problems(ring, v, checker, as_of)
    return VersionEntry(
        number=v.number,
        state=v.state.value,
        spec=v.spec.name,
        strength=v.spec.strength,
        created=v.created,
        age_days=max(0, (now - v.created).days),
        activation=v.activation,
        deactivation=v.deactivation,
        destroyed=v.destroy_date,
        compromised=v.compromise_occurred or v.compromise_date,
        grace_end=_grace_end(ring, v, checker.policy),
        activated=v.state in (State.ACTIVE, State.SUSPENDED, State.DEACTIVATED)
        or any(e.to_state == State.ACTIVE.value for e in v.events),
        primary=primary is not None and primary.number == v.number,
        compliant=not problems,
        problems=problems,
        compliant_as_of=None if later is None else not later,
        problems_as_of=later or (),
        exception=v.attributes.get(POLICY_EXCEPTION, ""),
    )


def _kind(ring: Ring) -> str:
    if is_certificate_ring(ring):
        return "certificate"
    if is_account_ring(ring):
        return "acme-account"
    if any(CERTIFICATE_PEM in v.attributes for v in ring.versions):
        return "certificate"
    return "key"


def _exceptions(
    rings: Sequence[Ring],
    entries: Sequence[RingEntry],
    acts: Sequence[AuditedAct],
    as_of: dt.datetime | None,
) -> list[ExceptionEntry]:
    out: list[ExceptionEntry] = []
    granted = {(a.ring, a.version): a for a in acts if a.action == "policy-exception"}
    recoveries: dict[str, list[AuditedAct]] = {}
    for a in acts:
        if a.action == "recover":
            recoveries.setdefault(a.ring, []).append(a)
    later = "" if as_of is None else f"on {as_of:%Y-%m-%d}: "
    for ring, entry in zip(rings, entries, strict=True):
        if ring.damage:
            out.append(ExceptionEntry(ring.name, None, "damaged", ring.damage))
        for v, e in zip(ring.versions, entry.versions, strict=True):
            if e.exception:
                act = granted.get((ring.name, v.number))
                at, by = (act.at, act.identity) if act else ("", "")
                out.append(
                    ExceptionEntry(ring.name, v.number, "policy-exception", e.exception, at, by)
                )
            if v.state in (State.COMPROMISED, State.DESTROYED_COMPROMISED):
                reason = v.revocation_reason.value if v.revocation_reason else "compromised"
                detail = reason + (f": {v.revocation_message}" if v.revocation_message else "")
                out.append(ExceptionEntry(ring.name, v.number, "compromised", detail))
            for problem in e.problems:
                out.append(ExceptionEntry(ring.name, v.number, "non-compliant", problem))
            for problem in e.problems_as_of:
                if problem not in e.problems:
                    kind = "non-compliant-as-of"
                    out.append(ExceptionEntry(ring.name, v.number, kind, later + problem))
        for a in recoveries.get(ring.name, ()):
            who = a.identity + ("" if a.actor == a.identity else f" on behalf of {a.actor}")
            detail = f"compromised key used to remove protection: {a.reason}"
            out.append(ExceptionEntry(ring.name, a.version, "recovery", detail, a.at, who))
    return out


def _certificates(
    rings: Sequence[Ring], facts: Mapping[tuple[str, int], CertificateFacts], now: dt.datetime
) -> list[CertificateEntry]:
    out: list[CertificateEntry] = []
    for ring in rings:
        held = [v for v in ring.versions if CERTIFICATE_PEM in v.attributes]
        renewed = held[-1].created if len(held) > 1 else None
        for v in held:
            f = facts.get((ring.name, v.number), CertificateFacts())
            not_after = f.not_after or v.deactivation
            out.append(
                CertificateEntry(
                    ring=ring.name,
                    version=v.number,
                    state=v.state.value,
                    domains=tuple(v.attributes.get("domains", "").split()),
                    issuer=f.issuer,
                    serial=v.attributes.get("serial", "") or f.serial,
                    not_after=not_after,
                    days_left=None if not_after is None else (not_after - now).days,
                    directory=v.attributes.get("acme_directory", ""),
                    problem=f.problem,
                    root_subject=f.root_subject,
                    root_fingerprint=f.root_fingerprint,
                    root_in_chain=f.root_in_chain,
                    last_renewal=renewed,
                )
            )
    return out


def _actors(records: Sequence[AuditRecord]) -> list[tuple[str, str, int]]:
    counts: dict[tuple[str, str], int] = {}
    for r in records:
        if r.damage:
            continue
        identity = getattr(r, "identity", "") or r.actor
        key = (identity, r.actor)
        counts[key] = counts.get(key, 0) + 1
    return sorted(((i, a, n) for (i, a), n in counts.items()), key=lambda t: (-t[2], t[0], t[1]))


def build_report(
    rings: Sequence[Ring],
    policy: Policy,
    now: dt.datetime,
    *,
    audit: AuditState,
    store: str = "",
    certificates: Mapping[tuple[str, int], CertificateFacts] | None = None,
    as_of: dt.datetime | None = None,
    window: dt.timedelta = dt.timedelta(days=90),
    tls: TlsResults | None = None,
) -> Report:
    """The report for ``rings`` under ``policy`` at ``now`` (pure)."""
    rings = sorted(rings, key=lambda r: r.name)
    events: list[Event] = []
    entries: list[RingEntry] = []
    checker = _Checker(policy)
    for ring in rings:
        ring_events, next_due = upcoming_events(ring, policy, now, window)
        primary = ring.primary(now)
        events.extend(ring_events)
        entries.append(
            RingEntry(
                name=ring.name,
                kind=_kind(ring),
                purpose=ring.purpose,
                spec=ring.spec.name,
                strength=ring.spec.strength,
                created=ring.created,
                damage=ring.damage,
                next_due=next_due,
                versions=tuple(
                    _version(ring, v, checker, now, as_of, primary) for v in ring.versions
                ),
            )
        )
    events.sort(key=lambda e: (e.due, e.ring, e.version or 0, e.kind))
    verification = audit.verification
    failures = [r for r in audit.records if r.outcome.startswith("failure")]
    return Report(
        generated_at=now,
        as_of=as_of,
        window_days=window.days,
        store=store,
        policy={
            "source": policy.source,
            "profile": policy.profile,
            "min_strength": policy.minimum_strength(now),
            "min_strength_as_of": None if as_of is None else policy.minimum_strength(as_of),
        },
        rings=tuple(entries),
        exceptions=tuple(_exceptions(rings, entries, audited_acts(audit.records), as_of)),
        events=tuple(events),
        certificates=tuple(_certificates(rings, certificates or {}, now)),
        audit_ok=verification.ok,
        audit_records=verification.records,
        audit_head_seq=None if audit.head is None else audit.head[0],
        audit_head_hash="" if audit.head is None else audit.head[1],
        audit_first_bad_seq=verification.first_bad_seq,
        audit_problem=verification.problem,
        actors=tuple(_actors(audit.records)),
        failures=tuple(reversed(failures[-FAILURES_SHOWN:])),
        state=tuple(audit.state),
        last_checkpoint=next(
            (r for r in reversed(audit.records) if r.action == "checkpoint" and not r.damage),
            None,
        ),
        runs=last_runs(audit.records),
        tls=tls,
    )
