"""Certificates as key versions: issue into a ring, renew a ring, revoke a version.

A certificate ring has purpose ``tls-server`` and its ACME settings as JSON in the ring
attribute :data:`~keylife.certificates.ACME_SETTINGS` (:class:`CertSettings`). Each certificate
is one version: the private key is the version's material, its activation is notBefore and its
deactivation ``min(notAfter, notBefore + the policy's tls-server cryptoperiod)``; the version's
attributes hold the certificate (:data:`~keylife.certificates.CERTIFICATE_PEM`), its chain,
``order_url``, ``acme_account``, ``acme_directory``, ``serial``, ``domains`` and, when the CA
offers ARI, the window and Retry-After (``ARI_*``); ``ari_spread`` places renewal inside the
window.

Order of work, so that nothing is ever half-stored: names are checked before any order is
sent; the certificate is obtained completely (issued, downloaded, checked against the request,
the key, the trusted roots and sane dates) before anything is written; then one
``add_version`` writes key, certificate and dates in a single store transaction; files are
deployed afterwards from what was stored.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keylife.acme.account import open_account, rollover_account
from keylife.acme.client import AcmeClient, IssuedCertificate
from keylife.acme.csr import CertificateKey, private_key_pem
from keylife.acme.deploy import DeployedFiles, deploy_files, run_deploy_hook
from keylife.acme.renewal import ari_cert_id, fetch_renewal_info, spread_for
from keylife.acme.revoke import parse_reason, revoke_certificate
from keylife.acme.settings import CertSettings, account_ring_for, settings_of
from keylife.certificates import (
    ACME_SETTINGS,
    ARI_RETRY_AFTER,
    ARI_SPREAD,
    ARI_WINDOW_END,
    ARI_WINDOW_START,
    CERTIFICATE_PEM,
    CERTIFICATE_REVOKED,
    CHAIN_PEM,
)
from keylife.errors import AcmeError, NotFoundError
from keylife.names import check_ring_name
from keylife.writer import RingWriter

if TYPE_CHECKING:
    from keylife.lifecycle import KeyVersion, Ring
    from keylife.manager import KeyManager

log = logging.getLogger(__name__)

CERT_PURPOSE = "tls-server"


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


def check_certificate_ring(ring: Ring) -> None:
    """Refuse to put a certificate into a ring that is not a certificate ring."""
    if ring.purpose != CERT_PURPOSE or ACME_SETTINGS not in ring.attributes:
        raise AcmeError(
            f"ring {ring.name} has purpose {ring.purpose}"
            + ("" if ring.purpose != CERT_PURPOSE else " but no ACME settings")
            + "; certificates go only into certificate rings (tls-server, made by "
            "`keylife cert issue`): choose a new ring name"
        )


def _prepare(
    manager: KeyManager, ring_name: str, settings: CertSettings | None
) -> tuple[Ring | None, CertSettings]:
    """The ring (or None) and the settings to use; every name checked, nothing sent yet."""
    check_ring_name(ring_name)
    try:
        ring: Ring | None = manager.load(ring_name)
    except NotFoundError:
        ring = None
    if ring is not None:
        check_certificate_ring(ring)
        stored = settings_of(manager, ring_name)
        if settings is not None and settings.to_json() != stored.to_json():
            log.info(
                "ring %s keeps its stored ACME settings; new ones apply on creation", ring_name
            )
        settings = stored
    elif settings is None:
        raise AcmeError(f"ring {ring_name} does not exist; give the ACME settings to create it")
    check_ring_name(settings.account_ring_name)
    return ring, settings


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

    For an existing certificate ring, ``settings`` may be omitted (the ring's own are used);
    renewal of an existing certificate sends ARI ``replaces`` when the CA offers ARI.
    """
    from keylife.keygen import generate_private_key as core_generate
    from keylife.keygen import private_key_material
    from keylife.policy import Purpose
    from keylife.specs import parse_spec

    ring, settings = _prepare(manager, ring_name, settings)
    when = now or manager.now()
    spec = parse_spec(settings.key_type)
    manager.policy.check(spec, Purpose.parse(CERT_PURPOSE), when)
    key = core_generate(spec)
    if not isinstance(key, CertificateKey):
        raise AcmeError(f"{spec.name} keys cannot hold a public certificate")
    previous = _current_certificate(ring, when) if ring is not None else None
    with open_account(
        manager, settings, agree_tos=agree_tos, eab_kid=eab_kid, eab_hmac_key=eab_hmac_key
    ) as client:
        issued, attributes = _obtain(client, settings, key, previous, when)

    # Everything is in hand and checked; now store it, in one transaction per step.
    cryptoperiod = manager.policy.rules(Purpose.TLS_SERVER).cryptoperiod
    deactivate_at = min(issued.not_after, issued.not_before + cryptoperiod)
    reason = f"ACME certificate {issued.serial_hex}" + (
        f" replacing v{previous.number}" if previous is not None else ""
    )
    material = private_key_material(key, spec)
    if ring is None:
        version = manager.create_ring(
            ring_name,
            spec.name,
            CERT_PURPOSE,
            activate_at=issued.not_before,
            deactivate_at=deactivate_at,
            attributes={ACME_SETTINGS: settings.to_json()},
            material=material,
            version_attributes=attributes,
            reason=reason,
        )
    else:
        version = manager.add_version(
            ring_name,
            material,
            activate_at=issued.not_before,
            deactivate_at=deactivate_at,
            attributes=attributes,
            reason=reason,
        )
    deployed = deploy_version(manager, ring_name, version.number, settings)
    return IssueResult(ring_name, version.number, issued, deployed)


def _obtain(
    client: AcmeClient,
    settings: CertSettings,
    key: CertificateKey,
    previous: KeyVersion | None,
    when: dt.datetime,
) -> tuple[IssuedCertificate, dict[str, str]]:
    """Issue (checked by the client) and gather the version attributes, ARI included."""
    replaces = None
    if previous is not None and client.directory.renewal_info:
        replaces = ari_cert_id(_load_cert(previous.attributes[CERTIFICATE_PEM]))
    issued = client.issue(
        list(settings.domains),
        key,
        settings.solver(),
        preferred_chain=settings.preferred_chain,
        replaces=replaces,
    )
    attributes = {
        CERTIFICATE_PEM: issued.certificate_pem,
        CHAIN_PEM: issued.chain_pem,
        "order_url": issued.order_url,
        "acme_account": client.account_url or "",
        "acme_directory": settings.directory,
        "serial": issued.serial_hex,
        "domains": " ".join(issued.identifiers),
        ARI_SPREAD: repr(spread_for(issued.serial)),
    }
    try:
        info = fetch_renewal_info(client, issued.certificate_pem, when)
    except AcmeError as exc:
        log.warning("could not fetch renewal information: %s", exc)
        info = None
    if info is not None:
        attributes[ARI_WINDOW_START] = info.start.isoformat()
        attributes[ARI_WINDOW_END] = info.end.isoformat()
        attributes[ARI_RETRY_AFTER] = info.retry_after.isoformat()
    return issued, attributes


def _load_cert(pem: str) -> Any:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem.encode("ascii"))


def _current_certificate(ring: Ring, now: dt.datetime) -> KeyVersion | None:
    primary: KeyVersion | None = ring.primary(now)
    if primary is not None and CERTIFICATE_PEM in primary.attributes:
        return primary
    certified = [v for v in ring.versions if CERTIFICATE_PEM in v.attributes]
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
            certificate_pem=attrs[CERTIFICATE_PEM],
            chain_pem=attrs.get(CHAIN_PEM, ""),
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


def _certified(manager: KeyManager, ring_name: str, number: int) -> tuple[KeyVersion, str]:
    version = manager.load(ring_name).get(number)
    if version is None:
        raise NotFoundError(f"ring {ring_name} has no version {number}")
    pem = version.attributes.get(CERTIFICATE_PEM)
    if not pem:
        raise AcmeError(f"{ring_name} v{number} has no certificate")
    return version, pem


def refresh_renewal_info(
    manager: KeyManager, ring_name: str, number: int, *, now: dt.datetime | None = None
) -> bool:
    """Ask the CA again for version ``number``'s renewal window (RFC 9773 §4.3: after its
    Retry-After) and remember the answer on the version. Returns whether the CA offers ARI;
    when it no longer does, the stored window is dropped and the lifetime rule applies."""
    settings = settings_of(manager, ring_name)
    _, pem = _certified(manager, ring_name, number)
    when = now or manager.now()
    with open_account(manager, settings, create=False) as client:
        info = fetch_renewal_info(client, pem, when)
    changes: dict[str, str | None]
    if info is None:
        changes = dict.fromkeys((ARI_WINDOW_START, ARI_WINDOW_END, ARI_RETRY_AFTER))
    else:
        changes = {
            ARI_WINDOW_START: info.start.isoformat(),
            ARI_WINDOW_END: info.end.isoformat(),
            ARI_RETRY_AFTER: info.retry_after.isoformat(),
        }
    manager.update_attributes(
        ring_name, number, changes, reason="ACME renewal information refreshed"
    )
    return info is not None


def revoke_version(
    manager: KeyManager,
    ring_name: str,
    version: int,
    reason: str | int = "unspecified",
    *,
    by_certificate_key: bool = False,
    timeout: float | None = None,
) -> bool:
    """Revoke the certificate of ``ring_name`` v``version`` at its CA.

    Signed by the account key, or by the version's own key with ``by_certificate_key`` (also
    the fallback when the account cannot be used). Returns ``False`` when already revoked.
    Only the CA side: the caller records the lifecycle change (``keylife cert revoke`` and
    ``keylife key compromise`` do).
    """
    found, pem = _certified(manager, ring_name, version)
    settings = settings_of(manager, ring_name)
    code = parse_reason(reason)
    if not by_certificate_key:
        try:
            with open_account(manager, settings, create=False, timeout=timeout) as client:
                return revoke_certificate(client, pem, code)
        except NotFoundError as exc:
            log.warning("no ACME account key (%s); revoking with the certificate key", exc)
    from keylife.keygen import load_private_key as load_material_key

    key = load_material_key(RingWriter.material(manager, found))
    if not isinstance(key, CertificateKey):
        raise AcmeError(f"{ring_name} v{version} does not hold a certificate key")
    with AcmeClient(
        settings.directory,
        key,
        ca_bundle=settings.ca_bundle,
        timeout=timeout or settings.timeout,
        clock=manager.now,
    ) as client:
        return revoke_certificate(client, pem, code, certificate_key=key)


def record_revocation(manager: KeyManager, ring_name: str, number: int, reason: str) -> KeyVersion:
    """The lifecycle side of a revocation made at the CA (``keylife cert revoke``).

    A compromise reason makes the version ``compromised`` (never used again); any other
    deactivates an active or suspended version (on a deactivated one it records the reason),
    and schedules the destruction of a pre-active one (held back from use until ``keylife
    rotate`` carries it out), whose revoked certificate must never go into use. Either way
    the version is marked revoked at the CA, so ``keylife rotate`` never revokes it again.
    """
    from keylife.lifecycle import RevocationReason, State

    version = manager.load(ring_name).get(number)
    if version is None:
        raise NotFoundError(f"ring {ring_name} has no version {number}")
    why = RevocationReason.parse(reason)
    message = "certificate revoked at the CA"
    usable = (State.ACTIVE, State.SUSPENDED, State.DEACTIVATED)
    if version.state in usable or (why.compromise and version.state is State.PRE_ACTIVE):
        manager.revoke(ring_name, number, why, message=message)
    elif version.state is State.PRE_ACTIVE:
        manager.destroy(ring_name, number, reason=f"{message} ({why.value}) before use")
    return manager.update_attributes(
        ring_name,
        number,
        {CERTIFICATE_REVOKED: manager.now().isoformat()},
        reason=f"certificate revoked at the CA ({why.value})",
    )


__all__ = [
    "CERT_PURPOSE",
    "CertSettings",
    "IssueResult",
    "account_ring_for",
    "check_certificate_ring",
    "deploy_version",
    "issue_certificate",
    "open_account",
    "record_revocation",
    "renew_ring",
    "revoke_version",
    "rollover_account",
    "settings_of",
]
