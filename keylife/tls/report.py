"""Results of TLS checks: frozen dataclasses and their JSON rendering.

The JSON form is a published contract, described by ``schema.json`` next to this module and
versioned with :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "SCHEMA_VERSION",
    "CertificateInfo",
    "ContextReport",
    "Finding",
    "ProtocolSupport",
    "SuiteResult",
    "TlsReport",
    "Verdict",
    "json_lines_schema",
    "json_schema",
    "overall_verdict",
    "render_json",
    "render_json_line",
]

SCHEMA_VERSION = "1.1"
"""1.1 added the fleet roll-up (``summary``), JSON Lines, and port 0 for unparsed targets."""

Verdict = Literal["pass", "fail", "error"]
Severity = Literal["fail", "warn"]


@dataclass(frozen=True)
class Finding:
    """One violated rule: what was seen, and what the policy allows."""

    rule_id: str
    severity: Severity
    title: str
    observed: str
    allowed: str


@dataclass(frozen=True)
class ProtocolSupport:
    version: str  # "SSL 3.0" ... "TLS 1.3"
    accepted: bool


@dataclass(frozen=True)
class SuiteResult:
    """A cipher suite the peer accepts (or a context enables), with its real strength."""

    code: str  # "0xC02F"
    name: str  # IANA name
    protocol: str
    strength: int
    key_exchange: str
    forward_secrecy: bool
    anonymous: bool
    export: bool
    dh_bits: int | None = None
    group: str | None = None


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    serial: str
    sha256: str
    key_type: str  # "RSA", "EC", "Ed25519", "Ed448", "DSA"
    key_bits: int
    signature_hash: str | None  # "sha256", "sha1", ... None for Ed25519/Ed448
    not_before: str  # ISO 8601, UTC
    not_after: str
    names: tuple[str, ...]  # subjectAltName DNS and IP entries
    self_signed: bool
    is_ca: bool


@dataclass(frozen=True)
class TlsReport:
    """The verdict on one endpoint."""

    host: str
    port: int
    server_name: str | None
    policy: str
    verdict: Verdict
    findings: tuple[Finding, ...] = ()
    error: str | None = None
    protocols: tuple[ProtocolSupport, ...] = ()
    suites: tuple[SuiteResult, ...] = ()
    groups: tuple[str, ...] = ()
    certificates: tuple[CertificateInfo, ...] = ()
    trusted: bool | None = None
    handshakes: int = 0
    duration_ms: int = 0

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = "endpoint"
        out["target"] = self.target
        return out

    def to_json(self) -> str:
        return render_json([self])


@dataclass(frozen=True)
class ContextReport:
    """The verdict on an in-process ``ssl.SSLContext`` or ``OpenSSL.SSL.Context``."""

    context_type: str
    role: Literal["client", "server"]
    policy: str
    verdict: Verdict
    findings: tuple[Finding, ...] = ()
    min_version: str | None = None
    max_version: str | None = None
    suites: tuple[SuiteResult, ...] = field(default_factory=tuple)
    certificates: tuple[CertificateInfo, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = "context"
        return out

    def to_json(self) -> str:
        return render_json([self])


def overall_verdict(verdicts: list[Verdict]) -> Verdict:
    """error beats fail beats pass: a gate cannot pass what it could not check."""
    if "error" in verdicts:
        return "error"
    if "fail" in verdicts:
        return "fail"
    return "pass"


def render_json(
    reports: list[TlsReport] | list[ContextReport],
    *,
    policy: str = "",
    summary: dict[str, Any] | None = None,
) -> str:
    """One JSON document for a run: ``schema_version``, overall verdict, one entry per target.

    ``summary`` (a fleet roll-up, ``FleetSummary.to_dict()``) is added when given.
    """
    policies = {r.policy for r in reports}
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": "keylife",
        "policy": policy or (policies.pop() if len(policies) == 1 else "mixed"),
        "verdict": overall_verdict([r.verdict for r in reports]),
        "results": [r.to_dict() for r in reports],
    }
    if summary is not None:
        doc["summary"] = summary
    return json.dumps(doc, indent=2, sort_keys=False)


def render_json_line(entry: TlsReport | dict[str, Any]) -> str:
    """One line of ``--jsonl`` output (no newline): an endpoint's report or the roll-up."""
    body = entry.to_dict() if isinstance(entry, TlsReport) else entry
    return json.dumps({"schema_version": SCHEMA_VERSION, **body}, separators=(",", ":"))


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of :func:`render_json` documents (``keylife/tls/schema.json``)."""
    from importlib.resources import files

    loaded: dict[str, Any] = json.loads(
        files("keylife.tls").joinpath("schema.json").read_text(encoding="utf-8")
    )
    return loaded


def json_lines_schema() -> dict[str, Any]:
    """The JSON Schema of one ``--jsonl`` line: an endpoint report or the fleet summary."""
    doc = json_schema()
    line = {"type": "object", "required": ["schema_version"]}
    return {
        "$schema": doc["$schema"],
        "$id": doc["$id"].replace(".json", "-line.json"),
        "title": "keylife TLS check JSON Lines entry",
        "$defs": doc["$defs"],
        "oneOf": [
            {"allOf": [line, {"$ref": "#/$defs/endpoint"}]},
            {"allOf": [line, {"$ref": "#/$defs/summary"}]},
        ],
    }
