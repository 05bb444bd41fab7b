"""TLS validation: endpoints, in-process contexts, and contexts compliant by construction.

>>> from keylife import tls
>>> tls.load_policy("default").min_version.label
'TLS 1.2'
"""

from __future__ import annotations

from keylife.tls.ciphersuites import CipherSuite, suite_by_code, suite_by_name
from keylife.tls.clienthello import TlsVersion
from keylife.tls.context import check_context, cipher_string, client_context, server_context
from keylife.tls.endpoint import DEFAULT_TIMEOUT, check_endpoint, check_endpoints, parse_target
from keylife.tls.policy import PROFILES, RULES, TlsPolicy, TlsPolicyError, load_policy
from keylife.tls.probe import ProbeError
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
    "DEFAULT_TIMEOUT",
    "PROFILES",
    "RULES",
    "SCHEMA_VERSION",
    "CertificateInfo",
    "CipherSuite",
    "ContextReport",
    "Finding",
    "ProbeError",
    "ProtocolSupport",
    "SuiteResult",
    "TlsPolicy",
    "TlsPolicyError",
    "TlsReport",
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
