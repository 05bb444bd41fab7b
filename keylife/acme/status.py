"""What ``keylife cert list`` / ``cert show`` report about a certificate ring, like
``certbot certificates``: the certificate in use, where it is deployed, and when and why it will
be renewed (the planner's own timing, :func:`keylife.certificates.certificate_due`).

Read-only and offline: the ring, its stored certificate and the deployed files; the CA is not
asked. The JSON shape (:meth:`CertificateStatus.to_dict`) is documented in docs/acme.md.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keylife.acme.settings import CertSettings
from keylife.certificates import (
    ACME_SETTINGS,
    ARI_RETRY_AFTER,
    ARI_WINDOW_END,
    ARI_WINDOW_START,
    CERTIFICATE_PEM,
    CERTIFICATE_REVOKED,
    SHORT_LIFETIME,
    certificate_due,
    retry_after,
)
from keylife.changes import RETIRED
from keylife.errors import AcmeError
from keylife.lifecycle import State

if TYPE_CHECKING:
    from keylife.lifecycle import KeyVersion, Ring

#: The files ``--deploy-to`` writes, by role.
DEPLOYED_FILES = ("privkey", "cert", "chain", "fullchain")
#: A deployed certificate file is read up to this size to compare it with the stored one.
DEPLOYED_READ_LIMIT = 1 << 20


@dataclass(frozen=True)
class Renewal:
    """When the ring's certificate will be renewed (``due``; None: never by itself) and why."""

    due: dt.datetime | None
    reason: str
    due_now: bool


@dataclass(frozen=True)
class CertificateStatus:
    ring: str
    settings: CertSettings
    version: KeyVersion | None
    certificate: Any  # cryptography.x509.Certificate | None
    renewal: Renewal
    deployed_current: bool | None
    now: dt.datetime
    #: Whether the ring has a certificate in use now: its primary holds one, not revoked.
    valid: bool
    #: When and why the ring was retired (it gains no new certificates), or None.
    retired: str | None = None

    def days_left(self) -> int | None:
        if self.certificate is None:
            return None
        left = float((self.certificate.not_valid_after_utc - self.now).total_seconds())
        return math.floor(left / 86400)

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape (docs/acme.md, *keylife cert list*)."""
        s, v, cert = self.settings, self.version, self.certificate
        deploy = None
        if s.deploy_to:
            files = {role: str(Path(s.deploy_to) / f"{role}.pem") for role in DEPLOYED_FILES}
            deploy = {"directory": s.deploy_to, "files": files, "current": self.deployed_current}
        ari = None
        if v is not None and v.attributes.get(ARI_WINDOW_START):
            ari = {
                "window_start": v.attributes.get(ARI_WINDOW_START),
                "window_end": v.attributes.get(ARI_WINDOW_END),
                "retry_after": v.attributes.get(ARI_RETRY_AFTER),
            }
        return {
            "ring": self.ring,
            "domains": list(s.identifiers),
            "valid": self.valid,
            "retired": self.retired,
            "version": None if v is None else v.number,
            "state": None if v is None else v.state.value,
            "revoked": None if v is None else _revoked(v),
            "serial": None if cert is None else format(cert.serial_number, "x"),
            "issuer": None if cert is None else cert.issuer.rfc4514_string(),
            "not_before": None if cert is None else cert.not_valid_before_utc.isoformat(),
            "not_after": None if cert is None else cert.not_valid_after_utc.isoformat(),
            "days_left": self.days_left(),
            "key_deactivation": _iso(None if v is None else v.deactivation),
            "directory": s.directory,
            "account_ring": s.account_ring_name,
            "challenge": s.challenge,
            "key_type": s.key_type,
            "deploy": deploy,
            "deploy_hook": s.deploy_hook,
            "ari": ari,
            "next_renewal": _iso(self.renewal.due),
            "renewal_due": self.renewal.due_now,
            "renewal_reason": self.renewal.reason,
        }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _revoked(v: KeyVersion) -> str | None:
    """The revocation reason (or "revoked at the CA") of a version, None if not revoked."""
    if v.revocation_reason is not None:
        return v.revocation_reason.value
    return "revoked at the CA" if CERTIFICATE_REVOKED in v.attributes else None


def current_certificate(ring: Ring, now: dt.datetime) -> KeyVersion | None:
    """The version to report: the primary if it holds a certificate, else the newest version
    holding one (revoked, deactivated or compromised), else None."""
    primary = ring.primary(now)
    if primary is not None and CERTIFICATE_PEM in primary.attributes:
        return primary
    certified = [v for v in ring.versions if CERTIFICATE_PEM in v.attributes]
    return certified[-1] if certified else None


def renewal(ring: Ring, now: dt.datetime) -> Renewal:
    """When and why the ring's certificate is renewed, by the rules ``keylife rotate`` plans
    with (:mod:`keylife.rotation.plan`, rule 5)."""
    if RETIRED in ring.attributes:
        return Renewal(None, f"never: the ring is retired ({ring.attributes[RETIRED]})", False)
    primary = ring.primary(now)
    waiting = [
        v
        for v in ring.versions
        if v.state is State.PRE_ACTIVE
        and CERTIFICATE_PEM in v.attributes
        and (primary is None or v.number > primary.number)
    ]
    if waiting:
        nxt = waiting[-1]
        starts = nxt.activation.isoformat() if nxt.activation else "when activated"
        return Renewal(
            None, f"not while v{nxt.number}'s certificate waits to go into use ({starts})", False
        )
    if primary is None:
        return Renewal(now, "now: the ring has no valid certificate", True)
    if CERTIFICATE_PEM not in primary.attributes:
        return Renewal(now, f"now: the current key v{primary.number} has no certificate", True)
    due = certificate_due(primary, now)
    if due is None:
        return Renewal(None, "never: the certificate has no validity dates", False)
    attrs = primary.attributes
    retry = retry_after(primary)
    if attrs.get(ARI_WINDOW_START) and attrs.get(ARI_WINDOW_END):
        why = (
            f"inside the CA's renewal window {attrs[ARI_WINDOW_START]} .. {attrs[ARI_WINDOW_END]}"
            " (ACME Renewal Information)"
        )
        if retry is not None and retry <= now:
            why += ", or by the lifetime rule if earlier: the CA is due to be asked again"
        elif retry is not None:
            why += f"; the CA is asked again after {retry.isoformat()}"
    else:
        activation, deactivation = primary.activation, primary.deactivation
        assert activation is not None and deactivation is not None
        share = "half" if deactivation - activation < SHORT_LIFETIME else "a third"
        why = (
            f"{share} of the key's use left (use ends {deactivation.isoformat()}: notAfter or "
            "the tls-server cryptoperiod, whichever is first); the CA gives no ARI window"
        )
    return Renewal(due, ("now: " if due <= now else "") + why, due <= now)


def _deployed_current(settings: CertSettings, version: KeyVersion | None) -> bool | None:
    """Whether ``deploy_to/cert.pem`` is the version's certificate (None: nothing to compare)."""
    if not settings.deploy_to or version is None:
        return None
    path = Path(settings.deploy_to) / "cert.pem"
    try:
        with open(path, "rb") as handle:
            data = handle.read(DEPLOYED_READ_LIMIT + 1)
    except OSError:
        return False
    stored = version.attributes.get(CERTIFICATE_PEM, "")
    return len(data) <= DEPLOYED_READ_LIMIT and data == stored.encode("ascii", "replace")


def certificate_status(ring: Ring, now: dt.datetime) -> CertificateStatus:
    """The report of certificate ring ``ring`` at ``now`` (no network)."""
    from cryptography import x509

    raw = ring.attributes.get(ACME_SETTINGS)
    if not raw:
        raise AcmeError(
            f"ring {ring.name} (purpose {ring.purpose}) is not a certificate ring; "
            "`keylife cert list` shows the certificate rings"
        )
    settings = CertSettings.from_json(raw)
    version = current_certificate(ring, now)
    primary = ring.primary(now)
    valid = (
        version is not None
        and primary is not None
        and primary.number == version.number
        and version.state is State.ACTIVE
        and _revoked(version) is None
    )
    cert = None
    if version is not None:
        try:
            cert = x509.load_pem_x509_certificate(version.attributes[CERTIFICATE_PEM].encode())
        except ValueError as exc:
            raise AcmeError(
                f"{ring.name} v{version.number}: the stored certificate is unreadable ({exc})"
            ) from None
    return CertificateStatus(
        ring=ring.name,
        settings=settings,
        version=version,
        certificate=cert,
        renewal=renewal(ring, now),
        deployed_current=_deployed_current(settings, version),
        now=now,
        valid=valid,
        retired=ring.attributes.get(RETIRED),
    )


__all__ = [
    "DEPLOYED_FILES",
    "CertificateStatus",
    "Renewal",
    "certificate_status",
    "current_certificate",
    "renewal",
]
