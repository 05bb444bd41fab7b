"""The ACME package as the manager's ``CertificateAuthority``.

``keylife.open()`` injects an :class:`AcmeAuthority` into the :class:`~keylife.manager.KeyManager`;
the manager (and the rotation runner through it) reaches the CA only through these four methods
and never imports :mod:`keylife.acme`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from keylife.acme.rings import (
    CertSettings,
    refresh_renewal_info,
    renew_ring,
    revoke_version,
    rollover_account,
)
from keylife.certificates import ACME_SETTINGS
from keylife.errors import AcmeError

if TYPE_CHECKING:
    from keylife.lifecycle import KeyVersion
    from keylife.manager import KeyManager


class AcmeAuthority:
    """Certificates from the ACME CA named in each certificate ring's settings."""

    def renew(self, manager: KeyManager, ring: str, now: dt.datetime) -> KeyVersion:
        """A new key and certificate for ``ring``, stored as a new version."""
        return renew_ring(manager, ring, now=now)

    def revoke(self, manager: KeyManager, ring: str, version: int, reason: str) -> None:
        """Revoke ``ring`` v``version``'s certificate at its CA (already revoked is fine)."""
        revoke_version(manager, ring, version, reason)

    def refresh_renewal_info(
        self, manager: KeyManager, ring: str, version: int, now: dt.datetime
    ) -> None:
        """Ask the CA again for the version's ARI renewal window and store it."""
        refresh_renewal_info(manager, ring, version, now=now)

    def rollover_account(self, manager: KeyManager, ring: str) -> int:
        """keyChange for the ACME account ring ``ring``, with the settings of a certificate ring
        that uses it; returns the new version's number."""
        for other in manager.rings():
            raw = other.attributes.get(ACME_SETTINGS)
            if raw:
                settings = CertSettings.from_json(raw)
                if settings.account_ring_name == ring:
                    return rollover_account(manager, settings)
        raise AcmeError(
            f"{ring} is an ACME account key but no certificate ring uses it; roll it over with "
            "`keylife cert account rollover --directory URL`"
        )


__all__ = ["AcmeAuthority"]
