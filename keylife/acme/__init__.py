"""ACME certificates for keylife (RFC 8555, 8738, 9773) on top of the ``acme`` package."""

from keylife.acme.challenges import ChallengeTask, DnsHook01, StandaloneHttp01, WebrootHttp01
from keylife.acme.client import AcmeClient, IssuedCertificate, Order, PollSettings
from keylife.acme.csr import KEY_TYPES, build_csr, generate_private_key, parse_identifier

__all__ = [
    "KEY_TYPES",
    "AcmeClient",
    "ChallengeTask",
    "DnsHook01",
    "IssuedCertificate",
    "Order",
    "PollSettings",
    "StandaloneHttp01",
    "WebrootHttp01",
    "build_csr",
    "generate_private_key",
    "parse_identifier",
]
