"""A certificate ring's ACME settings (:class:`CertSettings`), stored as JSON in the ring
attribute :data:`keylife.certificates.ACME_SETTINGS`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keylife.acme.challenges import ChallengeSolver, DnsHook01, StandaloneHttp01, WebrootHttp01
from keylife.acme.csr import parse_identifiers
from keylife.acme.jose import check_directory_url
from keylife.acme.network import DEFAULT_TIMEOUT
from keylife.acme.tlsalpn import StandaloneTlsAlpn01
from keylife.certificates import ACME_SETTINGS
from keylife.errors import AcmeError, LifecycleError
from keylife.names import check_ring_name

if TYPE_CHECKING:
    from keylife.manager import KeyManager


_TEXT = ("directory", "challenge", "http_address", "tls_address", "key_type")
_OPTIONAL_TEXT = (
    "webroot",
    "dns_hook",
    "dns_cleanup_hook",
    "ca_bundle",
    "trust_roots",
    "preferred_chain",
    "account_ring",
    "deploy_to",
    "deploy_hook",
)
#: The challenge types keylife can answer.
CHALLENGES = ("http-01", "dns-01", "tls-alpn-01")


@dataclass(frozen=True)
class CertSettings:
    """How a ring gets its certificates.

    Never holds a secret: the EAB HMAC key is used once at registration and not kept.
    ``ca_bundle`` verifies the CA's HTTPS endpoint; ``trust_roots`` (a PEM file) holds the roots
    an issued certificate's chain must verify to (default: the system trust store).
    ``timeout`` is the overall deadline of each ACME operation, in seconds.
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
    trust_roots: str | None = None
    preferred_chain: str | None = None
    account_ring: str | None = None
    deploy_to: str | None = None
    deploy_hook: str | None = None
    tls_port: int = 443
    tls_address: str = ""
    poll_interval: float = 0.05
    timeout: float = DEFAULT_TIMEOUT
    agree_tos: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_types()
        check_directory_url(self.directory)
        if self.challenge not in CHALLENGES:
            raise AcmeError(
                f"unknown challenge {self.challenge!r}; use one of {', '.join(CHALLENGES)}"
            )
        if self.challenge == "dns-01" and not self.dns_hook:
            raise AcmeError("dns-01 needs a hook command that publishes the TXT record")
        idents = parse_identifiers(list(self.domains))
        if self.challenge != "dns-01" and any(i.wildcard for i in idents):
            raise AcmeError("wildcard names can only be validated with dns-01")
        for port in (self.http_port, self.tls_port):
            if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
                raise AcmeError("the http-01 and tls-alpn-01 ports must be 0 to 65535")
        for number in (self.timeout, self.poll_interval, self.propagation_wait):
            if not isinstance(number, int | float) or not math.isfinite(number) or number < 0:
                raise AcmeError("timeout, poll interval and propagation wait must be >= 0")
        if self.timeout <= 0 or self.poll_interval <= 0:
            raise AcmeError("the timeout and the poll interval must be positive")
        if self.account_ring is not None:
            try:
                check_ring_name(self.account_ring)
            except LifecycleError as exc:
                raise AcmeError(f"account ring: {exc}") from None

    def _check_types(self) -> None:
        """Settings come back from the store as JSON: every field must have its type."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _TEXT:
                ok = isinstance(value, str)
            elif f.name in _OPTIONAL_TEXT:
                ok = value is None or isinstance(value, str)
            elif f.name in ("domains", "contact"):
                ok = isinstance(value, tuple) and all(isinstance(v, str) for v in value)
            elif f.name == "agree_tos":
                ok = isinstance(value, bool)
            elif f.name == "extra":
                ok = isinstance(value, dict)
            else:  # ports and numbers: checked with their ranges below
                ok = not isinstance(value, bool) and isinstance(value, int | float)
            if not ok:
                raise AcmeError(
                    f"ACME setting {f.name!r} has the wrong type ({type(value).__name__})"
                )

    @property
    def identifiers(self) -> tuple[str, ...]:
        """The domains as the CA sees them (IDNA A-labels, lower case, de-duplicated)."""
        return tuple(i.value for i in parse_identifiers(list(self.domains)))

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["domains"] = list(self.domains)
        data["contact"] = list(self.contact)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CertSettings:
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            known = {f.name for f in dataclasses.fields(cls)}
            extra = {k: v for k, v in data.items() if k not in known}
            kwargs = {k: v for k, v in data.items() if k in known and k != "extra"}
            kwargs["domains"] = tuple(kwargs.get("domains", ()))
            kwargs["contact"] = tuple(kwargs.get("contact", ()))
            return cls(**kwargs, extra=extra)
        except (ValueError, TypeError, RecursionError) as exc:
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
        if self.challenge == "tls-alpn-01":
            return StandaloneTlsAlpn01(self.tls_port, self.tls_address)
        if self.webroot:
            return WebrootHttp01(self.webroot)
        return StandaloneHttp01(self.http_port, self.http_address)


def account_ring_for(directory: str) -> str:
    """The default account ring for a directory URL."""
    return "acme-account-" + hashlib.sha256(directory.encode()).hexdigest()[:12]


def settings_of(manager: KeyManager, ring_name: str) -> CertSettings:
    ring = manager.load(ring_name)
    raw = ring.attributes.get(ACME_SETTINGS)
    if not raw:
        raise AcmeError(
            f"ring {ring_name} (purpose {ring.purpose}) is not a certificate ring: it has no "
            "ACME settings"
        )
    return CertSettings.from_json(raw)


__all__ = ["CHALLENGES", "CertSettings", "account_ring_for", "settings_of"]
