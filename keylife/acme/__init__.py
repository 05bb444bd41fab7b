"""ACME certificates for keylife (RFC 8555, RFC 8738 IP identifiers, RFC 9773 ARI).

Protocol layer (plain ``cryptography`` keys)::

    from keylife.acme import AcmeClient, StandaloneHttp01, generate_private_key
    with AcmeClient(directory_url, account_key, ca_bundle=...) as client:
        client.register(agree_tos=True, contact=["ops@example.com"])
        issued = client.issue(["example.com"], generate_private_key(), StandaloneHttp01(80))

Challenge solvers: :class:`StandaloneHttp01`, :class:`WebrootHttp01`, :class:`DnsHook01` and
:class:`StandaloneTlsAlpn01` (RFC 8737).

Lifecycle layer (certificates as key versions of a ring): :func:`issue_certificate`,
:func:`renew_ring` (``keylife rotate``), :func:`revoke_version` (``keylife key compromise``),
:func:`rollover_account`; :func:`certificate_status` reports on a ring (``keylife cert show``).
:class:`AcmeAuthority` offers these to the manager as its
``CertificateAuthority`` (injected by ``keylife.open()``; the manager never imports this package).
"""

from keylife.acme.account import open_account, rollover_account
from keylife.acme.authority import AcmeAuthority
from keylife.acme.challenges import (
    ChallengeSolver,
    ChallengeTask,
    DnsHook01,
    StandaloneHttp01,
    WebrootHttp01,
)
from keylife.acme.client import AcmeClient, IssuedCertificate, Order, PollSettings
from keylife.acme.csr import (
    KEY_TYPES,
    Identifier,
    build_csr,
    generate_private_key,
    parse_identifier,
    parse_identifiers,
)
from keylife.acme.deploy import DeployedFiles, deploy_files, run_deploy_hook
from keylife.acme.problems import ChallengeFailures
from keylife.acme.renewal import RenewalInfo, ari_cert_id, fetch_renewal_info, renewal_due
from keylife.acme.revoke import SUBSCRIBER_REASONS, parse_reason, revoke_certificate
from keylife.acme.rings import (
    IssueResult,
    deploy_version,
    issue_certificate,
    refresh_renewal_info,
    renew_ring,
    revoke_version,
)
from keylife.acme.rollover import rollover_account_key
from keylife.acme.settings import CertSettings, account_ring_for
from keylife.acme.status import CertificateStatus, certificate_status
from keylife.acme.tlsalpn import StandaloneTlsAlpn01

__all__ = [
    "KEY_TYPES",
    "SUBSCRIBER_REASONS",
    "AcmeAuthority",
    "AcmeClient",
    "CertSettings",
    "CertificateStatus",
    "ChallengeFailures",
    "ChallengeSolver",
    "ChallengeTask",
    "DeployedFiles",
    "DnsHook01",
    "Identifier",
    "IssueResult",
    "IssuedCertificate",
    "Order",
    "PollSettings",
    "RenewalInfo",
    "StandaloneHttp01",
    "StandaloneTlsAlpn01",
    "WebrootHttp01",
    "account_ring_for",
    "ari_cert_id",
    "build_csr",
    "certificate_status",
    "deploy_files",
    "deploy_version",
    "fetch_renewal_info",
    "generate_private_key",
    "issue_certificate",
    "open_account",
    "parse_identifier",
    "parse_identifiers",
    "parse_reason",
    "refresh_renewal_info",
    "renew_ring",
    "renewal_due",
    "revoke_certificate",
    "revoke_version",
    "rollover_account",
    "rollover_account_key",
    "run_deploy_hook",
]
