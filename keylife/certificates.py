"""Certificates as key versions: the pure timing rules and the attribute names they use.

A certificate is a key version whose attributes hold the certificate, its chain and what the CA
said about renewal. This module knows those attribute names and when a certificate is due for
renewal (ACME Renewal Information, RFC 9773, or a share of its lifetime). It does no I/O, never
sleeps and never draws random numbers: the planner imports it without loading any ACME,
HTTP or OpenSSL module.

The RFC asks clients to pick a random time inside the CA's window; here the caller passes
``spread`` (``0 <= spread < 1``), and :func:`spread_for` derives a stable one from the
certificate serial, so a fleet spreads out while every run of ``keylife rotate`` agrees on the
same instant.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING

from .clock import as_utc

if TYPE_CHECKING:
    from .lifecycle import KeyVersion, Ring

__all__ = [
    "ACME_ACCOUNT",
    "ACME_SETTINGS",
    "ARI_RETRY_AFTER",
    "ARI_SPREAD",
    "ARI_WINDOW_END",
    "ARI_WINDOW_START",
    "CERTIFICATE_PEM",
    "CERTIFICATE_REVOKED",
    "CHAIN_PEM",
    "SHORT_LIFETIME",
    "ari_check_due",
    "certificate_due",
    "is_account_ring",
    "is_certificate_ring",
    "lifetime_due",
    "renewal_due",
    "spread_for",
]

#: Ring attribute holding a certificate ring's ACME settings (JSON).
ACME_SETTINGS = "acme"
#: Ring attribute marking an ACME account key ring (JSON with the directory URL).
ACME_ACCOUNT = "acme_account"
#: Version attributes.
CERTIFICATE_PEM = "certificate_pem"
CHAIN_PEM = "chain_pem"
#: Set once a compromised version's certificate is revoked at its CA.
CERTIFICATE_REVOKED = "certificate_revoked_at"
ARI_WINDOW_START = "ari_window_start"
ARI_WINDOW_END = "ari_window_end"
ARI_RETRY_AFTER = "ari_retry_after"
ARI_SPREAD = "ari_spread"

#: Lifetimes under this renew at half the lifetime instead of a third.
SHORT_LIFETIME = dt.timedelta(days=10)


def is_certificate_ring(ring: Ring) -> bool:
    return ACME_SETTINGS in ring.attributes


def is_account_ring(ring: Ring) -> bool:
    """An ACME account key: replaced only through the CA's keyChange, never by a fresh key."""
    return ACME_ACCOUNT in ring.attributes


def lifetime_due(not_before: dt.datetime, not_after: dt.datetime) -> dt.datetime:
    """When a third of the lifetime remains (half, for lifetimes under ten days)."""
    not_before, not_after = as_utc(not_before), as_utc(not_after)
    lifetime = not_after - not_before
    if lifetime <= dt.timedelta(0):
        return not_before
    share = 2 if lifetime < SHORT_LIFETIME else 3
    return not_after - lifetime / share


def renewal_due(
    not_before: dt.datetime,
    not_after: dt.datetime,
    now: dt.datetime,
    ari_window: tuple[dt.datetime, dt.datetime] | None = None,
    ari_retry_after: dt.datetime | None = None,
    *,
    spread: float = 0.0,
) -> dt.datetime:
    """The instant at which the certificate should be renewed (due when ``<= now``).

    - With an ARI window ``(start, end)``, the time ``start + spread * (end - start)``, never
      later than notAfter. If that window is stale (``now`` is at or past ``ari_retry_after``,
      when the CA asked to be asked again), the earlier of it and the lifetime rule is used,
      so a CA that cannot be reached never delays renewal past the lifetime rule.
    - Without a window: when a third of the lifetime remains, or half of it if the lifetime is
      under ten days.
    """
    if not 0.0 <= spread < 1.0:
        raise ValueError("spread must be in [0, 1)")
    now = as_utc(now)
    by_lifetime = lifetime_due(not_before, not_after)
    if ari_window is None:
        return by_lifetime
    start, end = as_utc(ari_window[0]), as_utc(ari_window[1])
    if end < start:
        start, end = end, start
    chosen = min(start + (end - start) * spread, as_utc(not_after))
    if ari_retry_after is not None and now >= as_utc(ari_retry_after):
        return min(chosen, by_lifetime)
    return chosen


def ari_check_due(ari_retry_after: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether renewal information should be fetched again (never fetched, or Retry-After
    passed)."""
    return ari_retry_after is None or as_utc(now) >= as_utc(ari_retry_after)


def spread_for(serial: int) -> float:
    """A stable number in [0, 1) from a certificate serial, to place renewal in the window."""
    digest = hashlib.sha256(str(serial).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return as_utc(dt.datetime.fromisoformat(text))
    except ValueError:
        return None


def retry_after(version: KeyVersion) -> dt.datetime | None:
    """When the CA asked to be asked again about this certificate's renewal window."""
    return _time(version.attributes.get(ARI_RETRY_AFTER))


def certificate_due(version: KeyVersion, now: dt.datetime) -> dt.datetime | None:
    """When ``version``'s certificate is due for renewal, or None if it has no dates."""
    if version.activation is None or version.deactivation is None:
        return None
    attrs = version.attributes
    start, end = _time(attrs.get(ARI_WINDOW_START)), _time(attrs.get(ARI_WINDOW_END))
    window = (start, end) if start is not None and end is not None else None
    try:
        spread = float(attrs.get(ARI_SPREAD, "0") or 0)
    except ValueError:
        spread = 0.0
    if not 0.0 <= spread < 1.0:
        spread = 0.0
    return renewal_due(
        version.activation,
        version.deactivation,
        now,
        window,
        retry_after(version),
        spread=spread,
    )
