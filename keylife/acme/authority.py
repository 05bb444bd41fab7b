"""The ACME package as the manager's :class:`~keylife.manager.CertificateAuthority`."""

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
from keylife.errors import KeylifeError

if TYPE_CHECKING:
    from keylife.lifecycle import KeyVersion
    from keylife.manager import KeyManager


class AcmeAuthority:
    """Renews, revokes and rolls over through the CA named in each ring's ACME settings."""

    def renew(self, manager: KeyManager, ring: str, now: dt.datetime) -> KeyVersion:
        return renew_ring(manager, ring, now=now)

    def revoke(self, manager: KeyManager, ring: str, version: int, reason: str) -> None:
        revoke_version(manager, ring, version, reason=reason)

    def refresh_renewal_info(
        self, manager: KeyManager, ring: str, version: int, now: dt.datetime
    ) -> None:
        refresh_renewal_info(manager, ring, version, now=now)

    def rollover_account(self, manager: KeyManager, ring: str) -> int:
        """keyChange for an account ring, with the settings of a certificate ring using it."""
        for other in manager.rings():
            raw = other.attributes.get(ACME_SETTINGS)
            if raw:
                settings = CertSettings.from_json(raw)
                if settings.account_ring_name == ring:
                    return rollover_account(manager, settings)
        raise KeylifeError(
            f"{ring} is an ACME account key but no certificate ring uses it; roll it over with "
            "`keylife cert account rollover --directory URL`"
        )
