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
from keylife.tls.policy import PROFILES, RULES, TlsPolicy, load_policy
from keylife.tls.report import (
    SCHEMA_VERSION,
    CertificateInfo,
    ContextReport,
    Finding,
    ProtocolSupport,
    SuiteResult,
    TlsReport,
    json_schema,
    render_json,
)

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUT",
    "MAX_CERTIFICATES",
    "MAX_FLIGHT_BYTES",
    "PROFILES",
    "RULES",
    "SCHEMA_VERSION",
    "CertificateInfo",
    "CipherSuite",
    "ContextReport",
    "Finding",
    "FlightLimitError",
    "HelloParseError",
    "ProbeError",
    "ProtocolSupport",
    "SuiteResult",
    "TlsPolicy",
    "TlsPolicyError",
    "TlsReport",
    "TlsTargetError",
    "TlsVersion",
    "check_context",
    "check_endpoint",
    "check_endpoints",
    "cipher_string",
    "client_context",
    "json_schema",
    "load_policy",
    "parse_target",
    "render_json",
    "server_context",
    "suite_by_code",
    "suite_by_name",
]
