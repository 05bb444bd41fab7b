"""ACME Renewal Information (RFC 9773): fetching and parsing the CA's suggested window.

The timing rules themselves (:func:`renewal_due`, :func:`lifetime_due`, :func:`spread_for`)
are pure and live in :mod:`keylife.certificates`; they are re-exported here.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509

from keylife.certificates import ari_check_due, lifetime_due, renewal_due, spread_for
from keylife.clock import as_utc
from keylife.errors import AcmeError

if TYPE_CHECKING:
    from keylife.acme.client import AcmeClient

#: Without a Retry-After, RFC 9773 §4.3 suggests checking again in six hours.
DEFAULT_ARI_RETRY = dt.timedelta(hours=6)
#: Retry-After values are clamped into this range.
MIN_ARI_RETRY = dt.timedelta(minutes=1)
MAX_ARI_RETRY = dt.timedelta(days=7)


def ari_cert_id(cert: x509.Certificate) -> str:
    """RFC 9773 §4.1 certificate identifier: base64url(AKI keyIdentifier) '.' base64url(serial)."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound as exc:
        raise AcmeError("the certificate has no authority key identifier; no ARI") from exc
    if aki.key_identifier is None:
        raise AcmeError("the certificate's authority key identifier has no key id; no ARI")
    serial = cert.serial_number
    serial_bytes = serial.to_bytes(math.ceil((serial.bit_length() + 1) / 8), "big", signed=True)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")

    return f"{b64(aki.key_identifier)}.{b64(serial_bytes)}"


@dataclass(frozen=True)
class RenewalInfo:
    """The CA's suggested window and when to ask again."""

    start: dt.datetime
    end: dt.datetime
    retry_after: dt.datetime
    explanation_url: str | None = None

    @property
    def window(self) -> tuple[dt.datetime, dt.datetime]:
        return (self.start, self.end)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "retry_after": self.retry_after.isoformat(),
        }
        if self.explanation_url:
            out["explanation_url"] = self.explanation_url
        return out

    @classmethod
    def from_json(cls, data: Any) -> RenewalInfo:
        return cls(
            start=dt.datetime.fromisoformat(data["start"]),
            end=dt.datetime.fromisoformat(data["end"]),
            retry_after=dt.datetime.fromisoformat(data["retry_after"]),
            explanation_url=data.get("explanation_url"),
        )


def parse_renewal_info(body: Any, retry_after_header: str | None, now: dt.datetime) -> RenewalInfo:
    """Parse a renewalInfo response body (RFC 9773 §4.2) and its Retry-After header."""
    from keylife.acme.problems import parse_retry_after

    if isinstance(body, bytes | str):
        body = json.loads(body)
    try:
        window = body["suggestedWindow"]
        start = _parse_time(window["start"])
        end = _parse_time(window["end"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AcmeError("the CA's renewal information has no valid suggestedWindow") from exc
    if end < start:
        raise AcmeError("the CA's renewal window ends before it starts")
    now = as_utc(now)
    retry = parse_retry_after(retry_after_header, now) or now + DEFAULT_ARI_RETRY
    retry = min(max(retry, now + MIN_ARI_RETRY), now + MAX_ARI_RETRY)
    explanation = body.get("explanationURL")
    return RenewalInfo(start, end, retry, str(explanation) if explanation else None)


def _parse_time(text: str) -> dt.datetime:
    return as_utc(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))


def fetch_renewal_info(
    client: AcmeClient, certificate_pem: str, now: dt.datetime | None = None
) -> RenewalInfo | None:
    """GET the certificate's renewal information; ``None`` when the CA offers no ARI."""
    from keylife.acme.problems import translated

    base = client.directory.get("renewalInfo")
    if not base:
        return None
    cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    url = f"{str(base).rstrip('/')}/{ari_cert_id(cert)}"
    with translated("fetching renewal information", url):
        response = client.get(url)
        body = response.json()
    return parse_renewal_info(
        body, response.headers.get("Retry-After"), now or dt.datetime.now(dt.UTC)
    )


__all__ = [
    "DEFAULT_ARI_RETRY",
    "RenewalInfo",
    "ari_cert_id",
    "ari_check_due",
    "fetch_renewal_info",
    "lifetime_due",
    "parse_renewal_info",
    "renewal_due",
    "spread_for",
]
