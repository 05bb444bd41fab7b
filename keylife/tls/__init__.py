"""TLS validation: endpoints, in-process contexts, and contexts compliant by construction.

>>> from keylife import tls
>>> tls.load_policy("default").min_version.label
'TLS 1.2'
"""

from __future__ import annotations

from keylife.errors import (
    FlightLimitError,
    HelloParseError,
    ProbeError,
    TlsPolicyError,
    TlsTargetError,
)
from keylife.tls.ciphersuites import CipherSuite, suite_by_code, suite_by_name
from keylife.tls.clienthello import MAX_CERTIFICATES, MAX_FLIGHT_BYTES, TlsVersion
from keylife.tls.context import check_context, cipher_string, client_context, server_context
from keylife.tls.endpoint import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    check_endpoint,
    check_endpoints,
    parse_target,
)
from keylife.tls.fleet import (
    DEFAULT_CONNECTIONS,
    DEFAULT_PER_ENDPOINT,
    MAX_TARGETS,
    MAX_TARGETS_FILE_BYTES,
    Target,
    check_fleet,
    parse_target_line,
    read_targets,
    unique_targets,
)
from keylife.tls.gate import ConnectionGate
from keylife.tls.policy import PROFILES, RULES, TlsPolicy, load_policy
from keylife.tls.report import (
    SCHEMA_VERSION,
    CertificateInfo,
    ContextReport,
    Finding,
    ProtocolSupport,
    SuiteResult,
    TlsReport,
    json_lines_schema,
    json_schema,
    render_json,
    render_json_line,
)
from keylife.tls.summary import DEFAULT_EXPIRING, ExpiringCertificate, FleetSummary

__all__ = [
    "DEFAULT_CONNECTIONS",
    "DEFAULT_DEADLINE",
    "DEFAULT_EXPIRING",
    "DEFAULT_PER_ENDPOINT",
    "DEFAULT_TIMEOUT",
    "MAX_CERTIFICATES",
    "MAX_FLIGHT_BYTES",
    "MAX_TARGETS",
    "MAX_TARGETS_FILE_BYTES",
    "PROFILES",
    "RULES",
    "SCHEMA_VERSION",
    "CertificateInfo",
    "CipherSuite",
    "ConnectionGate",
    "ContextReport",
    "ExpiringCertificate",
    "Finding",
    "FleetSummary",
    "FlightLimitError",
    "HelloParseError",
    "ProbeError",
    "ProtocolSupport",
    "SuiteResult",
    "Target",
    "TlsPolicy",
    "TlsPolicyError",
    "TlsReport",
    "TlsTargetError",
    "TlsVersion",
    "check_context",
    "check_endpoint",
    "check_endpoints",
    "check_fleet",
    "cipher_string",
    "client_context",
    "json_lines_schema",
    "json_schema",
    "load_policy",
    "parse_target",
    "parse_target_line",
    "read_targets",
    "render_json",
    "render_json_line",
    "server_context",
    "suite_by_code",
    "suite_by_name",
    "unique_targets",
]
