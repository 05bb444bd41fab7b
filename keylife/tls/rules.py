"""Policy rules over observed protocol versions, cipher suites and key-exchange groups.

Pure functions: they take what a probe or a context inspection saw and return findings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from keylife.tls.ciphersuites import CipherSuite, group_by_code
from keylife.tls.clienthello import TlsVersion
from keylife.tls.policy import RULES, TlsPolicy
from keylife.tls.report import Finding, SuiteResult

__all__ = [
    "FindingCollector",
    "SeenSuite",
    "evaluate_groups",
    "evaluate_protocols",
    "evaluate_suites",
]


class FindingCollector:
    """Collects findings, applying the policy's action (fail, warn, off) for each rule."""

    def __init__(self, policy: TlsPolicy) -> None:
        self.policy = policy
        self._findings: dict[str, Finding] = {}

    def add(self, rule_id: str, observed: str, allowed: str) -> None:
        action = self.policy.action(rule_id)
        if action == "off":
            return
        if rule_id in self._findings:  # one finding per rule: merge what was seen
            old = self._findings[rule_id]
            if observed in old.observed:
                return
            observed = f"{old.observed}; {observed}"
        self._findings[rule_id] = Finding(
            rule_id=rule_id,
            severity=action,
            title=RULES[rule_id][0],
            observed=observed,
            allowed=allowed,
        )

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(self._findings[k] for k in sorted(self._findings))


@dataclass(frozen=True)
class SeenSuite:
    version: TlsVersion
    suite: CipherSuite
    dh_bits: int | None = None
    group: int | None = None

    def result(self) -> SuiteResult:
        """The report's view of this suite."""
        group = group_by_code(self.group) if self.group is not None else None
        return SuiteResult(
            code=self.suite.hex,
            name=self.suite.name,
            protocol=self.version.label,
            strength=self.suite.strength,
            key_exchange=self.suite.key_exchange,
            forward_secrecy=self.suite.forward_secrecy,
            anonymous=self.suite.anonymous,
            export=self.suite.export,
            dh_bits=self.dh_bits,
            group=group.name if group else None,
        )


def _names(suites: Iterable[SeenSuite], limit: int = 6) -> str:
    names = sorted({f"{s.suite.name} ({s.suite.strength} bits)" for s in suites})
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def evaluate_protocols(
    accepted: Iterable[TlsVersion], policy: TlsPolicy, out: FindingCollector, *, what: str
) -> None:
    versions = sorted(set(accepted))
    low = [v for v in versions if v < policy.min_version]
    if low:
        out.add(
            "tls.protocol.min-version.v1",
            f"{what} " + ", ".join(v.label for v in low),
            f"{policy.min_version.label} or newer",
        )
    if policy.require_tls13 and TlsVersion.TLS1_3 not in versions:
        out.add(
            "tls.protocol.tls13-required.v1",
            "highest version " + (versions[-1].label if versions else "none"),
            "TLS 1.3 supported",
        )


def evaluate_suites(suites: Sequence[SeenSuite], policy: TlsPolicy, out: FindingCollector) -> None:
    weak = [s for s in suites if s.suite.strength < policy.min_cipher_bits]
    if weak:
        out.add(
            "tls.cipher.min-strength.v1",
            _names(weak),
            f"at least {policy.min_cipher_bits}-bit cipher strength",
        )
    checks: tuple[tuple[str, Callable[[SeenSuite], bool], str], ...] = (
        ("tls.cipher.null.v1", lambda s: s.suite.null_cipher, "no NULL encryption"),
        ("tls.cipher.anonymous.v1", lambda s: s.suite.anonymous, "authenticated key exchange"),
        ("tls.cipher.export.v1", lambda s: s.suite.export, "no EXPORT suites"),
        ("tls.cipher.rc4.v1", lambda s: s.suite.rc4, "no RC4"),
    )
    for rule_id, pred, allowed in checks:
        hits = [s for s in suites if pred(s)]
        if hits:
            out.add(rule_id, _names(hits), allowed)
    outside = [s for s in suites if not policy.allows_suite(s.suite.name, s.suite.cipher)]
    if outside:
        out.add("tls.cipher.allowlist.v1", _names(outside), f"suites of the {policy.name} policy")
    if policy.forward_secrecy:
        no_fs = [s for s in suites if not s.suite.forward_secrecy and not s.suite.anonymous]
        if no_fs:
            out.add("tls.kex.forward-secrecy.v1", _names(no_fs), "ephemeral (EC)DHE key exchange")
    small_dh = sorted({s.dh_bits for s in suites if s.dh_bits and s.dh_bits < policy.min_dh_bits})
    if small_dh:
        out.add(
            "tls.kex.dh-size.v1",
            "DH group of " + ", ".join(f"{b}" for b in small_dh) + " bits",
            f"at least {policy.min_dh_bits} bits",
        )


def evaluate_groups(groups: Iterable[int], policy: TlsPolicy, out: FindingCollector) -> None:
    bad: list[str] = []
    small_ff: list[str] = []
    for code in groups:
        group = group_by_code(code)
        if group is None:
            continue
        if group.kind == "ffdhe" and group.bits < policy.min_dh_bits:
            small_ff.append(group.name)
        elif (group.kind == "ec" and group.strength < policy.min_group_strength) or (
            policy.allowed_groups is not None and group.name not in policy.allowed_groups
        ):
            bad.append(group.name)
    if small_ff:
        out.add("tls.kex.dh-size.v1", ", ".join(small_ff), f"at least {policy.min_dh_bits} bits")
    if bad:
        allowed = (
            ", ".join(sorted(policy.allowed_groups))
            if policy.allowed_groups is not None
            else f"EC groups of at least {policy.min_group_strength}-bit strength"
        )
        out.add("tls.kex.group.v1", ", ".join(bad), allowed)
