"""ACME Renewal Information (RFC 9773): fetching and parsing the CA's suggested window.

The timing rules themselves (:func:`renewal_due`, :func:`lifetime_due`, :func:`spread_for`)
are pure and live in :mod:`keylife.certificates`; they are re-exported here.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509

from keylife.acme.wire import decode_json, parse_retry_after
from keylife.certificates import ari_check_due, lifetime_due, renewal_due, spread_for
from keylife.clock import as_utc
from keylife.errors import AcmeError, AcmeResponseError

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


def parse_renewal_info(
    body: Any, retry_after_header: str | None, now: dt.datetime, *, url: str = "renewalInfo"
) -> RenewalInfo:
    """Parse a renewalInfo response body (RFC 9773 §4.2) and its Retry-After header."""
    if isinstance(body, bytes | str):
        body = decode_json(url, body.encode() if isinstance(body, str) else body)
    window = body.get("suggestedWindow") if isinstance(body, Mapping) else None
    try:
        if not isinstance(window, Mapping):
            raise TypeError("no window")
        start = _parse_time(window.get("start"))
        end = _parse_time(window.get("end"))
    except (TypeError, ValueError, OverflowError) as exc:
        raise AcmeResponseError(
            f"the CA's renewal information from {url} has no valid suggestedWindow",
            url=url,
            field="suggestedWindow",
        ) from exc
    if end < start:
        raise AcmeResponseError(
            f"the CA's renewal window from {url} ends before it starts",
            url=url,
            field="suggestedWindow",
        )
    now = as_utc(now)
    retry = parse_retry_after(retry_after_header, now) or now + DEFAULT_ARI_RETRY
    retry = min(max(retry, now + MIN_ARI_RETRY), now + MAX_ARI_RETRY)
    explanation = body.get("explanationURL")
    if not isinstance(explanation, str) or not explanation.lower().startswith("https://"):
        explanation = None
    return RenewalInfo(start, end, retry, explanation[:2048] if explanation else None)


def _parse_time(text: Any) -> dt.datetime:
    if not isinstance(text, str) or len(text) > 64:
        raise TypeError("not a time")
    return as_utc(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))


def fetch_renewal_info(
    client: AcmeClient, certificate_pem: str, now: dt.datetime
) -> RenewalInfo | None:
    """GET the certificate's renewal information; ``None`` when the CA offers no ARI."""
    from keylife.acme.problems import translated

    base = client.directory.renewal_info
    if not base:
        return None
    cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    url = f"{base.rstrip('/')}/{ari_cert_id(cert)}"
    with client.operation(), translated("fetching renewal information", url):
        response = client.get(url)
        body = client.json(response)
    return parse_renewal_info(body, response.headers.get("Retry-After"), now, url=url)


__all__ = [
    "DEFAULT_ARI_RETRY",
    "RenewalInfo",
    "ari_cert_id",
    "ari_check_due",
    "fetch_renewal_info",
    "lifetime_due",
    "parse_renewal_info",
    "parse_retry_after",
    "renewal_due",
    "spread_for",
]
