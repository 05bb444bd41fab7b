"""Certificates as key versions: issue into a ring, renew a ring, revoke a version.

A certificate ring has purpose ``tls-server`` and its ACME settings as JSON in the ring
attribute ``acme`` (:class:`CertSettings`). Each certificate is one version: the private key is
the version's material, its activation/deactivation are notBefore/notAfter, and the version's
attributes hold ``certificate_pem``, ``chain_pem``, ``order_url``, ``acme_account``,
``acme_directory``, ``serial`` and, when the CA offers ARI, ``ari_window_start``,
``ari_window_end``, ``ari_retry_after``; ``ari_spread`` places renewal inside the window.

The ACME account key is a ``signing`` ring of its own (default name
``acme-account-<hash of the directory URL>``), with the directory in its ``acme_account``
attribute.

Order of work, so that nothing is ever half-stored: the certificate is obtained completely
(issued, downloaded, checked against the key) before anything is written; then one
``add_version`` writes key, certificate and dates in a single store transaction; files are
deployed afterwards from what was stored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keylife.acme.challenges import ChallengeSolver, DnsHook01, StandaloneHttp01, WebrootHttp01
from keylife.acme.client import AcmeClient, IssuedCertificate, PollSettings
from keylife.acme.csr import CertificateKey, parse_identifiers, private_key_pem
from keylife.acme.deploy import DeployedFiles, deploy_files, run_deploy_hook
from keylife.acme.renewal import ari_cert_id, fetch_renewal_info, spread_for
from keylife.acme.revoke import REASONS, parse_reason, revoke_certificate
from keylife.errors import AcmeError, NotFoundError

if TYPE_CHECKING:
    from keylife.lifecycle import KeyVersion
    from keylife.manager import KeyManager

log = logging.getLogger(__name__)

ACCOUNT_PURPOSE = "signing"
CERT_PURPOSE = "tls-server"
_PLACEHOLDER_DELAY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class CertSettings:
    """How a ring gets its certificates; stored as JSON in the ring attribute ``acme``.

    Never holds a secret: the EAB HMAC key is used once at registration and not kept.
    """

    directory: str
    domains: tuple[str, ...]
    challenge: str = "http-01"
    http_port: int = 80
    http_address: str = ""
    webroot: str | None = None
    dns_hook: str | None = None
    dns_cleanup_hook: str | None = None
    propagation_wait: float = 0.0
    key_type: str = "ec-p256"
    contact: tuple[str, ...] = ()
    ca_bundle: str | None = None
    preferred_chain: str | None = None
    account_ring: str | None = None
    deploy_to: str | None = None
    deploy_hook: str | None = None
    poll_interval: float = 0.05
    timeout: float = 120.0
    agree_tos: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.challenge not in ("http-01", "dns-01"):
            raise AcmeError(f"unknown challenge {self.challenge!r}; use http-01 or dns-01")
        if self.challenge == "dns-01" and not self.dns_hook:
            raise AcmeError("dns-01 needs a hook command that publishes the TXT record")
        idents = parse_identifiers(list(self.domains))
        if self.challenge == "http-01" and any(i.wildcard for i in idents):
            raise AcmeError("wildcard names can only be validated with dns-01")

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["domains"] = list(self.domains)
        data["contact"] = list(self.contact)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CertSettings:
        try:
            data = json.loads(text)
            known = {f.name for f in dataclasses.fields(cls)}
            extra = {k: v for k, v in data.items() if k not in known}
            kwargs = {k: v for k, v in data.items() if k in known and k != "extra"}
            kwargs["domains"] = tuple(kwargs.get("domains", ()))
            kwargs["contact"] = tuple(kwargs.get("contact", ()))
            return cls(**kwargs, extra=extra)
        except (ValueError, TypeError) as exc:
            raise AcmeError(f"the ring's ACME settings are not valid: {exc}") from exc

    @property
    def account_ring_name(self) -> str:
        return self.account_ring or account_ring_for(self.directory)

    def solver(self) -> ChallengeSolver:
        if self.challenge == "dns-01":
            assert self.dns_hook is not None
            return DnsHook01(
                self.dns_hook, self.dns_cleanup_hook, propagation_wait=self.propagation_wait
            )
        if self.webroot:
            return WebrootHttp01(self.webroot)
        return StandaloneHttp01(self.http_port, self.http_address)


def account_ring_for(directory: str) -> str:
    """The default account ring for a directory URL."""
    return "acme-account-" + hashlib.sha256(directory.encode()).hexdigest()[:12]


def settings_of(manager: KeyManager, ring_name: str) -> CertSettings:
    ring = manager.load(ring_name)
    raw = ring.attributes.get("acme")
    if not raw:
        raise AcmeError(f"ring {ring_name} is not a certificate ring (no ACME settings)")
    return CertSettings.from_json(raw)


# -- the account ----------------------------------------------------------------------------


def _account_key(manager: KeyManager, settings: CertSettings, *, create: bool) -> CertificateKey:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    name = settings.account_ring_name
    try:
        manager.load(name)
    except NotFoundError:
        if not create:
            raise
        manager.create_ring(
            name,
            "ec-p256",
            ACCOUNT_PURPOSE,
            attributes={"acme_account": json.dumps({"directory": settings.directory})},
        )
    key = manager.ring(name).primary().key
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise AcmeError(f"account ring {name} does not hold an RSA or ECDSA key")
    return key


def open_account(
    manager: KeyManager,
    settings: CertSettings,
    *,
    agree_tos: bool = False,
    eab_kid: str | None = None,
    eab_hmac_key: str | None = None,
    create: bool = True,
    sleep: Any = None,
) -> AcmeClient:
    """An :class:`AcmeClient` signed by the ring-held account key, registered at the CA."""
    key = _account_key(manager, settings, create=create)
    kwargs: dict[str, Any] = {}
    if sleep is not None:
        kwargs["sleep"] = sleep
    client = AcmeClient(
        settings.directory,
        key,
        ca_bundle=settings.ca_bundle,
        poll=PollSettings(
            interval=settings.poll_interval,
            max_interval=max(5.0, settings.poll_interval),
            timeout=settings.timeout,
        ),
        **kwargs,
    )
    try:
        try:
            client.register(only_existing=True)
        except AcmeError:
            client.register(
                contact=settings.contact,
                agree_tos=agree_tos or settings.agree_tos,
                eab_kid=eab_kid,
                eab_hmac_key=eab_hmac_key,
            )
    except BaseException:
        client.close()
        raise
    return client


# -- issuing into a ring --------------------------------------------------------------------


@dataclass(frozen=True)
class IssueResult:
    ring: str
    version: int
    certificate: IssuedCertificate
    deployed: DeployedFiles | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ring": self.ring,
            "version": self.version,
            "serial": self.certificate.serial_hex,
            "domains": list(self.certificate.identifiers),
            "not_before": self.certificate.not_before.isoformat(),
            "not_after": self.certificate.not_after.isoformat(),
            "order_url": self.certificate.order_url,
            "deployed_to": str(self.deployed.directory) if self.deployed else None,
        }


def issue_certificate(
    manager: KeyManager,
    ring_name: str,
    settings: CertSettings | None = None,
    *,
    agree_tos: bool = False,
    eab_kid: str | None = None,
    eab_hmac_key: str | None = None,
    now: dt.datetime | None = None,
) -> IssueResult:
    """Issue a certificate into ``ring_name`` (created if needed with ``settings``).

    For an existing ring, ``settings`` may be omitted (the ring's own are used); renewal of an
    existing certificate sends ARI ``replaces`` when the CA offers ARI.
    """
    from keylife.keygen import generate_private_key as core_generate
    from keylife.keygen import private_key_material
    from keylife.policy import Purpose
    from keylife.specs import parse_spec

    exists = True
    try:
        ring = manager.load(ring_name)
    except NotFoundError:
        exists = False
        ring = None
    if settings is None:
        if ring is None:
            raise AcmeError(f"ring {ring_name} does not exist; give the ACME settings to create it")
        settings = settings_of(manager, ring_name)
    elif ring is not None and ring.attributes.get("acme") not in (None, settings.to_json()):
        log.info("ring %s keeps its stored ACME settings; new ones apply on creation", ring_name)
    when = now or manager.now()

    spec = parse_spec(settings.key_type)
    manager.policy.check(spec, Purpose.parse(CERT_PURPOSE), when)
    key = core_generate(spec)
    if not isinstance(key, CertificateKey):
        raise AcmeError(f"{spec.name} keys cannot hold a public certificate")

    replaces = None
    previous = _current_certificate(ring, when) if ring is not None else None

    with open_account(
        manager, settings, agree_tos=agree_tos, eab_kid=eab_kid, eab_hmac_key=eab_hmac_key
    ) as client:
        if previous is not None and client.directory.get("renewalInfo"):
            replaces = ari_cert_id(_load_cert(previous.attributes["certificate_pem"]))
        issued = client.issue(
            list(settings.domains),
            key,
            settings.solver(),
            preferred_chain=settings.preferred_chain,
            replaces=replaces,
        )
        attributes = {
            "certificate_pem": issued.certificate_pem,
            "chain_pem": issued.chain_pem,
            "order_url": issued.order_url,
            "acme_account": client.account_url or "",
            "acme_directory": settings.directory,
            "serial": issued.serial_hex,
            "domains": " ".join(issued.identifiers),
            "ari_spread": repr(spread_for(issued.serial)),
        }
        try:
            info = fetch_renewal_info(client, issued.certificate_pem, when)
        except AcmeError as exc:
            log.warning("could not fetch renewal information: %s", exc)
            info = None
        if info is not None:
            attributes.update(
                ari_window_start=info.start.isoformat(),
                ari_window_end=info.end.isoformat(),
                ari_retry_after=info.retry_after.isoformat(),
            )

    # Everything is in hand; now store it, in one transaction per step.
    reason = f"ACME certificate {issued.serial_hex}" + (
        f" replacing v{previous.number}" if previous is not None else ""
    )
    if not exists:
        version = manager.create_ring(
            ring_name,
            spec.name,
            CERT_PURPOSE,
            activate_at=issued.not_before,
            deactivate_at=issued.not_after,
            attributes={"acme": settings.to_json()},
            material=private_key_material(key, spec),
            version_attributes=attributes,
            reason=reason,
        )
    else:
        version = manager.add_version(
            ring_name,
            private_key_material(key, spec),
            activate_at=issued.not_before,
            deactivate_at=issued.not_after,
            attributes=attributes,
            reason=reason,
        )
    deployed = deploy_version(manager, ring_name, version.number, settings)
    return IssueResult(ring_name, version.number, issued, deployed)


def _load_cert(pem: str) -> Any:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem.encode("ascii"))


def _current_certificate(ring: Any, now: dt.datetime) -> KeyVersion | None:
    primary: KeyVersion | None = ring.primary(now)
    if primary is not None and "certificate_pem" in primary.attributes:
        return primary
    certified = [v for v in ring.versions if "certificate_pem" in v.attributes]
    return certified[-1] if certified else None


def deploy_version(
    manager: KeyManager, ring_name: str, number: int, settings: CertSettings | None = None
) -> DeployedFiles | None:
    """Write the version's files to ``deploy_to`` and run ``deploy_hook``, if configured."""
    settings = settings or settings_of(manager, ring_name)
    if not settings.deploy_to and not settings.deploy_hook:
        return None
    loaded = manager.ring(ring_name).version(number)
    attrs = loaded.version.attributes
    files = None
    if settings.deploy_to:
        key = loaded.key
        if not isinstance(key, CertificateKey):
            raise AcmeError(f"{ring_name} v{number} does not hold a certificate key")
        files = deploy_files(
            settings.deploy_to,
            certificate_pem=attrs["certificate_pem"],
            chain_pem=attrs.get("chain_pem", ""),
            private_key_pem=private_key_pem(key),
        )
    if settings.deploy_hook:
        run_deploy_hook(
            settings.deploy_hook,
            ring=ring_name,
            version=number,
            domains=attrs.get("domains", "").split(),
            files=files,
        )
    return files


def renew_ring(
    manager: KeyManager, ring_name: str, *, now: dt.datetime | None = None
) -> KeyVersion:
    """Renew the ring's certificate with a new key (called by ``keylife rotate``)."""
    result = issue_certificate(manager, ring_name, now=now)
    version = manager.load(ring_name).get(result.version)
    assert version is not None
    return version


def refresh_renewal_info(
    manager: KeyManager, ring_name: str, number: int, *, now: dt.datetime | None = None
) -> bool:
    """Ask the CA again for version ``number``'s renewal window (RFC 9773 §4.3: after its
    Retry-After) and remember the answer on the version. Returns whether the CA offers ARI;
    when it no longer does, the stored window is dropped and the lifetime rule applies."""
    settings = settings_of(manager, ring_name)
    version = manager.load(ring_name).get(number)
    if version is None:
        raise NotFoundError(f"ring {ring_name} has no version {number}")
    pem = version.attributes.get("certificate_pem")
    if not pem:
        raise AcmeError(f"{ring_name} v{number} has no certificate")
    when = now or manager.now()
    with open_account(manager, settings, create=False) as client:
        info = fetch_renewal_info(client, pem, when)
    changes: dict[str, str | None]
    if info is None:
        changes = dict.fromkeys(("ari_window_start", "ari_window_end", "ari_retry_after"))
    else:
        changes = {
            "ari_window_start": info.start.isoformat(),
            "ari_window_end": info.end.isoformat(),
            "ari_retry_after": info.retry_after.isoformat(),
        }
    manager.update_attributes(
        ring_name, number, changes, reason="ACME renewal information refreshed"
    )
    return info is not None


# -- revocation -----------------------------------------------------------------------------


def revoke_version(
    manager: KeyManager,
    ring_name: str,
    version: int,
    reason: str | int = "unspecified",
    *,
    by_certificate_key: bool = False,
) -> bool:
    """Revoke the certificate of ``ring_name`` v``version`` at its CA.

    Signed by the account key, or by the version's own key with ``by_certificate_key`` (also
    the fallback when the account cannot be used). Returns ``False`` when already revoked.
    Only the CA side: the caller records the lifecycle change (``keylife cert revoke`` and
    ``keylife key compromise`` do).
    """
    ring = manager.load(ring_name)
    found = ring.get(version)
    if found is None:
        raise NotFoundError(f"ring {ring_name} has no version {version}")
    pem = found.attributes.get("certificate_pem")
    if not pem:
        raise AcmeError(f"{ring_name} v{version} has no certificate")
    settings = settings_of(manager, ring_name)
    code = parse_reason(reason)
    if not by_certificate_key:
        try:
            with open_account(manager, settings, create=False) as client:
                return revoke_certificate(client, pem, code)
        except NotFoundError as exc:
            log.warning("no ACME account key (%s); revoking with the certificate key", exc)
    cert_key = manager.material(found)
    from keylife.keygen import load_private_key

    key = load_private_key(cert_key)
    if not isinstance(key, CertificateKey):
        raise AcmeError(f"{ring_name} v{version} does not hold a certificate key")
    with AcmeClient(settings.directory, key, ca_bundle=settings.ca_bundle) as client:
        return revoke_certificate(client, pem, code, certificate_key=key)


def lifecycle_reason(reason: str | int) -> str:
    """The core's revocation reason name for an ACME/RFC 5280 reason."""
    code = parse_reason(reason)
    return next(name for name, value in REASONS.items() if value == code)


# -- account key rollover -------------------------------------------------------------------


def rollover_account(manager: KeyManager, settings: CertSettings) -> int:
    """keyChange to a fresh key held as a new version of the account ring.

    The new version is stored pre-active first, then the CA is told, then it is activated and
    the old one deactivated: a crash leaves either the old key working or both stored.
    """
    from keylife.acme.rollover import rollover_account_key
    from keylife.keygen import generate_private_key as core_generate
    from keylife.keygen import private_key_material
    from keylife.specs import parse_spec

    name = settings.account_ring_name
    spec = parse_spec("ec-p256")
    new_key = core_generate(spec)
    assert isinstance(new_key, CertificateKey)
    with open_account(manager, settings, create=False) as client:
        old = manager.ring(name).primary()
        staged = manager.add_version(
            name,
            private_key_material(new_key, spec),
            activate_at=manager.now() + _PLACEHOLDER_DELAY,
            reason="ACME account key rollover (staged)",
            attributes={"acme_account": json.dumps({"directory": settings.directory})},
        )
        rollover_account_key(client, new_key)
    # Activation supersedes the old key (deactivated in the same write).
    manager.activate(name, staged.number, reason=f"ACME keyChange accepted; replaces v{old.number}")
    return staged.number


def domains_of(version: KeyVersion) -> Sequence[str]:
    return version.attributes.get("domains", "").split()


__all__ = [
    "CertSettings",
    "IssueResult",
    "account_ring_for",
    "deploy_version",
    "issue_certificate",
    "lifecycle_reason",
    "open_account",
    "renew_ring",
    "revoke_version",
    "rollover_account",
    "settings_of",
]
