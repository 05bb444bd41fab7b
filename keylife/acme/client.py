"""An ACME (RFC 8555) client built on ``acme.client.ClientNetwork`` (JWS signing and nonces).

The flow is driven here, not by ``acme.client.ClientV2``: our own polling loop honours
Retry-After with a configurable first interval, exponential back-off and an overall deadline (no
fixed sleeps), ``badNonce`` is retried many times (``acme`` retries once), newOrder can carry
IP identifiers, wildcards and ARI's ``replaces``, and the certificate download can pick a
preferred chain among the alternates. Everything the CA or the network throws comes out as a
:class:`keylife.errors.AcmeError` subclass.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from acme import client as acme_client
from acme import jws as acme_jws
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.b64 import b64decode, b64encode
from josepy.interfaces import JSONDeSerializable
from josepy.jwa import ES256, ES384, ES512, HS256, RS256
from josepy.jwk import JWKEC, JWKRSA, JWKOct
from requests.utils import parse_header_links

from keylife.acme.challenges import ChallengeSolver, ChallengeTask
from keylife.acme.csr import CertificateKey, Identifier, build_csr, parse_identifiers
from keylife.acme.problems import ChallengeFailures, parse_retry_after, translated
from keylife.errors import AcmeError

log = logging.getLogger(__name__)

USER_AGENT = "keylife-acme/0.1"
JOSE = "application/jose+json"
PEM_CHAIN = "application/pem-certificate-chain"


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE and ACME use it."""
    return b64encode(data).decode("ascii")


@dataclass(frozen=True)
class PollSettings:
    """How to poll authorizations and orders: first wait, back-off cap, overall deadline.

    Retry-After from the CA always wins over the back-off (bounded by the deadline).
    """

    interval: float = 0.05
    max_interval: float = 5.0
    timeout: float = 120.0

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.max_interval < self.interval or self.timeout <= 0:
            raise AcmeError("poll interval, max interval and timeout must be positive")


class _Payload(JSONDeSerializable):
    """A plain JSON object as a JWS payload."""

    def __init__(self, jobj: Mapping[str, Any]) -> None:
        self.jobj = dict(jobj)

    def to_partial_json(self) -> dict[str, Any]:
        return self.jobj

    @classmethod
    def from_json(cls, jobj: Any) -> _Payload:
        return cls(jobj)


def jwk_and_alg(key: CertificateKey) -> tuple[Any, Any]:
    """The josepy JWK and JWS algorithm for an account (or certificate) key."""
    if isinstance(key, rsa.RSAPrivateKey):
        return JWKRSA(key=key), RS256
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = {256: ES256, 384: ES384, 521: ES512}.get(key.curve.key_size)
        if alg is None:
            raise AcmeError(f"unsupported EC curve {key.curve.name} for an ACME key")
        return JWKEC(key=key), alg
    raise AcmeError("ACME keys must be RSA or ECDSA")


def key_authorization(token: str, jwk: Any) -> str:
    """RFC 8555 §8.1: token || '.' || base64url(JWK thumbprint)."""
    return f"{token}.{b64url(jwk.thumbprint())}"


class _Network(acme_client.ClientNetwork):
    """ClientNetwork that retries badNonce many times and remembers Retry-After on problems."""

    def __init__(
        self,
        key: CertificateKey,
        *,
        verify: bool | str,
        timeout: float,
        bad_nonce_attempts: int,
        account_url: str | None = None,
    ) -> None:
        jwk, alg = jwk_and_alg(key)
        super().__init__(key=jwk, alg=alg, user_agent=USER_AGENT, timeout=math.ceil(timeout))
        # ClientNetwork passes this to requests as ``verify``; a path selects a CA bundle.
        setattr(self, "verify_ssl", verify)  # noqa: B010 - typed bool upstream, str works
        self.bad_nonce_attempts = bad_nonce_attempts
        self.set_account(account_url)

    def set_account(self, account_url: str | None) -> None:
        if account_url is None:
            self.account = None
        else:
            self.account = messages.RegistrationResource(
                body=messages.Registration(), uri=account_url
            )

    @classmethod
    def _check_response(
        cls, response: requests.Response, content_type: str | None = None
    ) -> requests.Response:
        try:
            return super()._check_response(response, content_type=content_type)
        except messages.Error as problem:
            problem.keylife_retry_after = parse_retry_after(
                response.headers.get("Retry-After"), dt.datetime.now(dt.UTC)
            )
            raise

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        # Each ``super().post`` already tries twice on badNonce.
        rounds = max(1, math.ceil(self.bad_nonce_attempts / 2))
        for attempt in range(1, rounds + 1):
            try:
                response: requests.Response = super().post(*args, **kwargs)
                return response
            except messages.Error as problem:
                if problem.code != "badNonce" or attempt == rounds:
                    raise
                log.debug("badNonce from the CA, retrying (round %d of %d)", attempt, rounds)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.session.close()


@dataclass(frozen=True)
class Order:
    """An ACME order as last seen."""

    url: str
    status: str
    identifiers: tuple[Identifier, ...]
    authorizations: tuple[str, ...]
    finalize: str
    certificate: str | None = None
    replaces: str | None = None

    @classmethod
    def from_json(cls, url: str, jobj: Mapping[str, Any]) -> Order:
        idents = tuple(
            Identifier("ip" if i["type"] == "ip" else "dns", str(i["value"]))
            for i in jobj.get("identifiers", ())
        )
        return cls(
            url=url,
            status=str(jobj["status"]),
            identifiers=idents,
            authorizations=tuple(jobj.get("authorizations", ())),
            finalize=str(jobj["finalize"]),
            certificate=jobj.get("certificate"),
            replaces=jobj.get("replaces"),
        )


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate as issued: PEM texts, validity and where the order lives. No private key."""

    certificate_pem: str
    chain_pem: str
    order_url: str
    identifiers: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int
    alternative_chains: int = 0

    @property
    def fullchain_pem(self) -> str:
        return self.certificate_pem + self.chain_pem

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")

    @classmethod
    def from_fullchain(
        cls, fullchain_pem: str, order_url: str, *, alternative_chains: int = 0
    ) -> IssuedCertificate:
        certs = split_pem_chain(fullchain_pem)
        if not certs:
            raise AcmeError("the CA returned no certificate")
        leaf = x509.load_pem_x509_certificate(certs[0].encode("ascii"))
        return cls(
            certificate_pem=certs[0],
            chain_pem="".join(certs[1:]),
            order_url=order_url,
            identifiers=tuple(_san_names(leaf)),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            serial=leaf.serial_number,
            alternative_chains=alternative_chains,
        )

    def load_certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode("ascii"))


def _san_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = list(san.get_values_for_type(x509.DNSName))
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return names


def split_pem_chain(text: str) -> list[str]:
    """Split a PEM bundle into normalised PEM certificates (each ending in a newline)."""
    end = "-----END CERTIFICATE-----"
    out = []
    for part in text.split(end):
        start = part.find("-----BEGIN CERTIFICATE-----")
        if start != -1:
            out.append(part[start:].strip() + "\n" + end + "\n")
    return out


def _chain_matches(fullchain_pem: str, preferred: str) -> bool:
    """certbot's rule: the topmost certificate's issuer CN or subject CN names the chain."""
    certs = split_pem_chain(fullchain_pem)
    if not certs:
        return False
    top = x509.load_pem_x509_certificate(certs[-1].encode("ascii"))
    names = set()
    for name in (top.issuer, top.subject):
        for attr in name.get_attributes_for_oid(x509.NameOID.COMMON_NAME):
            names.add(str(attr.value))
    return preferred in names


class AcmeClient:
    """One ACME account at one CA.

    ``ca_bundle`` is a PEM file of CA certificates to trust for the CA's HTTPS endpoint; without
    it the system trust store is used. TLS verification is never turned off.
    ``sleep`` and ``clock`` are injectable for tests; nothing else waits.
    """

    def __init__(
        self,
        directory_url: str,
        account_key: CertificateKey,
        *,
        account_url: str | None = None,
        ca_bundle: str | None = None,
        poll: PollSettings | None = None,
        network_timeout: float = 30.0,
        bad_nonce_attempts: int = 20,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.directory_url = directory_url
        self.ca_bundle = ca_bundle
        self.poll = poll or PollSettings()
        self.network_timeout = network_timeout
        self.bad_nonce_attempts = bad_nonce_attempts
        self._sleep = sleep
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._key = account_key
        self._jwk, _ = jwk_and_alg(account_key)
        self._net = self._network(account_key, account_url)
        self._directory: dict[str, Any] | None = None
        self.account_url = account_url

    def __repr__(self) -> str:
        return f"AcmeClient(directory_url={self.directory_url!r}, account_url={self.account_url!r})"

    # -- plumbing ---------------------------------------------------------------------------

    def _network(self, key: CertificateKey, account_url: str | None) -> _Network:
        return _Network(
            key,
            verify=self.ca_bundle or True,
            timeout=self.network_timeout,
            bad_nonce_attempts=self.bad_nonce_attempts,
            account_url=account_url,
        )

    def close(self) -> None:
        self._net.close()

    @contextmanager
    def network_for(self, key: CertificateKey) -> Iterator[_Network]:
        """A throw-away signer for another key (revocation by certificate key), no account."""
        net = self._network(key, None)
        try:
            yield net
        finally:
            net.close()

    def get(self, url: str) -> requests.Response:
        """An unauthenticated GET (directory, renewalInfo). Raises acme errors raw."""
        response: requests.Response = self._net.get(url)
        return response

    def __enter__(self) -> AcmeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def account_key(self) -> CertificateKey:
        return self._key

    @property
    def directory(self) -> Mapping[str, Any]:
        if self._directory is None:
            with translated("fetching the ACME directory", self.directory_url):
                jobj = self._net.get(self.directory_url).json()
                if not isinstance(jobj, dict) or "newNonce" not in jobj or "newOrder" not in jobj:
                    raise AcmeError(f"{self.directory_url} is not an ACME directory")
                self._directory = jobj
        return self._directory

    def resource_url(self, name: str) -> str:
        try:
            return str(self.directory[name])
        except KeyError:
            raise AcmeError(f"the ACME directory has no {name!r} resource") from None

    def post(
        self,
        url: str,
        payload: Mapping[str, Any] | Any | None,
        *,
        network: _Network | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """POST a signed request (``payload=None`` is POST-as-GET). Raises acme errors raw;
        callers wrap with :func:`translated`."""
        net = network or self._net
        obj = payload
        if isinstance(payload, Mapping):
            obj = _Payload(payload)
        kwargs: dict[str, Any] = {"new_nonce_url": self.resource_url("newNonce")}
        if headers:
            kwargs["headers"] = {"Content-Type": JOSE, **headers}
        response: requests.Response = net.post(url, obj, **kwargs)
        return response

    def require_account(self) -> str:
        if self.account_url is None:
            raise AcmeError("no ACME account: register first")
        return self.account_url

    # -- account ----------------------------------------------------------------------------

    @property
    def terms_of_service(self) -> str | None:
        meta = self.directory.get("meta") or {}
        tos = meta.get("termsOfService")
        return str(tos) if tos else None

    @property
    def external_account_required(self) -> bool:
        meta = self.directory.get("meta") or {}
        return bool(meta.get("externalAccountRequired"))

    def register(
        self,
        *,
        contact: Sequence[str] = (),
        agree_tos: bool = False,
        eab_kid: str | None = None,
        eab_hmac_key: str | None = None,
        only_existing: bool = False,
    ) -> str:
        """Create (or find) the account for this key; returns and remembers its URL.

        ``contact`` takes e-mail addresses (``mailto:`` is added when missing).
        """
        url = self.resource_url("newAccount")
        payload: dict[str, Any] = {}
        if only_existing:
            payload["onlyReturnExisting"] = True
        else:
            tos = self.terms_of_service
            if tos and not agree_tos:
                raise AcmeError(f"the CA's terms of service ({tos}) must be agreed to register")
            if agree_tos:
                payload["termsOfServiceAgreed"] = True
            if contact:
                payload["contact"] = [c if ":" in c else f"mailto:{c}" for c in contact]
            if (eab_kid is None) != (eab_hmac_key is None):
                raise AcmeError("External Account Binding needs both a key id and an HMAC key")
            if eab_kid is not None and eab_hmac_key is not None:
                payload["externalAccountBinding"] = self._eab(url, eab_kid, eab_hmac_key)
            elif self.external_account_required:
                raise AcmeError(
                    "this CA requires External Account Binding: give the key id and HMAC key "
                    "your CA issued (--eab-kid and --eab-hmac-key)"
                )
        self._net.set_account(None)
        with translated("registering the ACME account", url):
            response = self.post(url, payload)
            location = response.headers.get("Location")
            if not location:
                raise AcmeError("the CA did not return an account URL")
            status = response.json().get("status")
            if status != "valid":
                raise AcmeError(f"the ACME account is {status!r}, not valid")
        self.account_url = str(location)
        self._net.set_account(self.account_url)
        return self.account_url

    def _eab(self, new_account_url: str, kid: str, hmac_key: str) -> dict[str, Any]:
        try:
            mac_key = b64decode(hmac_key.strip())
        except (ValueError, TypeError) as exc:
            raise AcmeError("the EAB HMAC key is not base64url") from exc
        if not mac_key:
            raise AcmeError("the EAB HMAC key is empty")
        account_jwk = self._jwk.public_key().to_partial_json()
        eab = acme_jws.JWS.sign(
            json.dumps(account_jwk).encode(),
            JWKOct(key=mac_key),
            HS256,
            None,
            new_account_url,
            kid,
        )
        result: dict[str, Any] = eab.to_partial_json()
        return result

    def use_account_key(self, key: CertificateKey) -> None:
        """Switch to a new account key (after a successful keyChange)."""
        old = self._net
        self._key = key
        self._jwk, _ = jwk_and_alg(key)
        self._net = self._network(key, self.account_url)
        old.close()

    # -- orders -----------------------------------------------------------------------------

    def new_order(
        self,
        identifiers: Sequence[Identifier],
        *,
        replaces: str | None = None,
        profile: str | None = None,
    ) -> Order:
        """newOrder; with ``replaces`` (ARI) retried once without it if the CA refuses it."""
        self.require_account()
        url = self.resource_url("newOrder")
        payload: dict[str, Any] = {
            "identifiers": [{"type": i.type, "value": i.value} for i in identifiers]
        }
        if profile:
            payload["profile"] = profile
        if replaces:
            try:
                with translated("creating the order", url):
                    return self._post_order(url, {**payload, "replaces": replaces})
            except AcmeError as exc:
                if getattr(exc, "retry_after", None) is not None:
                    raise
                log.info("the CA refused 'replaces' (%s); ordering without it", exc)
        with translated("creating the order", url):
            return self._post_order(url, payload)

    def _post_order(self, url: str, payload: Mapping[str, Any]) -> Order:
        response = self.post(url, payload)
        location = response.headers.get("Location")
        if not location:
            raise AcmeError("the CA did not return an order URL")
        return Order.from_json(str(location), response.json())

    def _wait(self, response: requests.Response, delay: float, deadline: float, what: str) -> None:
        now = time.monotonic()
        retry_at = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        wait = delay
        if retry_at is not None:
            wait = max(0.0, (retry_at - self._clock()).total_seconds())
        if now >= deadline:
            raise AcmeError(f"timed out after {self.poll.timeout:g} s waiting for {what}")
        self._sleep(min(wait, max(0.0, deadline - now)))

    def _poll(
        self, url: str, done: Callable[[Mapping[str, Any]], bool], what: str
    ) -> Mapping[str, Any]:
        deadline = time.monotonic() + self.poll.timeout
        delay = self.poll.interval
        while True:
            with translated(f"polling {what}", url):
                response = self.post(url, None)
                jobj: Mapping[str, Any] = response.json()
            if done(jobj):
                return jobj
            self._wait(response, delay, deadline, what)
            delay = min(delay * 2, self.poll.max_interval)

    def authorize(self, order: Order, solver: ChallengeSolver) -> None:
        """Answer every pending authorization of the order with ``solver``; wait for results."""
        tasks: list[ChallengeTask] = []
        for authz_url in order.authorizations:
            with translated("fetching an authorization", authz_url):
                authz = self.post(authz_url, None).json()
            ident = authz["identifier"]["value"]
            display = f"*.{ident}" if authz.get("wildcard") else str(ident)
            status = authz.get("status")
            if status == "valid":
                continue
            if status != "pending":
                raise ChallengeFailures({display: f"authorization is {status}"})
            offered = [c for c in authz.get("challenges", ()) if c.get("type")]
            chall = next((c for c in offered if c["type"] == solver.challenge_type), None)
            if chall is None:
                kinds = ", ".join(sorted({str(c["type"]) for c in offered})) or "none"
                raise AcmeError(
                    f"{display}: the CA offers no {solver.challenge_type} challenge "
                    f"(offered: {kinds})"
                )
            keyauth = key_authorization(str(chall["token"]), self._jwk)
            if solver.challenge_type == "dns-01":
                validation = b64url(hashlib.sha256(keyauth.encode("ascii")).digest())
            else:
                validation = keyauth
            tasks.append(
                ChallengeTask(
                    identifier=str(ident),
                    identifier_type=str(authz["identifier"].get("type", "dns")),
                    wildcard=bool(authz.get("wildcard")),
                    token=str(chall["token"]),
                    validation=validation,
                    challenge_url=str(chall["url"]),
                    authorization_url=authz_url,
                )
            )
        if not tasks:
            return
        try:
            solver.prepare(tasks)
            for task in tasks:
                with translated(
                    f"answering the {solver.challenge_type} challenge", task.challenge_url
                ):
                    self.post(task.challenge_url, {})
            failures: dict[str, str] = {}
            for task in tasks:
                authz = self._poll(
                    task.authorization_url,
                    lambda j: j.get("status") not in ("pending", "processing"),
                    f"the authorization of {task.display}",
                )
                if authz.get("status") != "valid":
                    failures[task.display] = _authz_failure(authz)
            if failures:
                raise ChallengeFailures(failures)
        finally:
            solver.cleanup(tasks)

    def finalize(self, order: Order, csr_pem: bytes) -> Order:
        """Send the CSR and wait until the order is valid (or failed)."""
        csr = x509.load_pem_x509_csr(csr_pem)
        payload = {"csr": b64url(csr.public_bytes(serialization.Encoding.DER))}
        with translated("finalizing the order", order.finalize):
            jobj = self.post(order.finalize, payload).json()
        if jobj.get("status") not in ("valid", "invalid"):
            jobj = self._poll(
                order.url,
                lambda j: j.get("status") in ("valid", "invalid"),
                "the certificate to be issued",
            )
        if jobj.get("status") == "invalid":
            error = jobj.get("error")
            reason = _problem_text(error) if isinstance(error, Mapping) else "no reason given"
            raise AcmeError(f"the CA refused to issue the certificate: {reason}")
        with translated("reading the finalized order", order.url):
            return Order.from_json(order.url, jobj)

    def download(self, order: Order, *, preferred_chain: str | None = None) -> IssuedCertificate:
        """Fetch the certificate chain; with ``preferred_chain``, pick among alternates."""
        if not order.certificate:
            raise AcmeError("the order has no certificate URL")
        with translated("downloading the certificate", order.certificate):
            response = self.post(order.certificate, None, headers={"Accept": PEM_CHAIN})
            chains = [response.content.decode("ascii")]
            alternates = [
                link["url"]
                for link in parse_header_links(response.headers.get("Link", ""))
                if link.get("rel") == "alternate" and link.get("url")
            ]
            chosen = chains[0]
            if preferred_chain and not _chain_matches(chosen, preferred_chain):
                for alt_url in alternates:
                    alt = self.post(alt_url, None, headers={"Accept": PEM_CHAIN})
                    text = alt.content.decode("ascii")
                    if _chain_matches(text, preferred_chain):
                        chosen = text
                        break
                else:
                    log.info("no chain named %r; keeping the default chain", preferred_chain)
            return IssuedCertificate.from_fullchain(
                chosen, order.url, alternative_chains=len(alternates)
            )

    def issue(
        self,
        names: Sequence[str | Identifier],
        key: CertificateKey,
        solver: ChallengeSolver,
        *,
        preferred_chain: str | None = None,
        replaces: str | None = None,
        profile: str | None = None,
    ) -> IssuedCertificate:
        """Order, validate, finalize and download a certificate for ``key``."""
        ident_list = parse_identifiers([str(n) for n in names])
        csr_pem = build_csr(key, ident_list)
        order = self.new_order(ident_list, replaces=replaces, profile=profile)
        if order.status not in ("ready", "valid"):
            self.authorize(order, solver)
        order = self.finalize(order, csr_pem)
        issued = self.download(order, preferred_chain=preferred_chain)
        leaf_key = issued.load_certificate().public_key()
        if leaf_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise AcmeError("the CA returned a certificate for a different key")
        return issued

    # -- revocation and ARI live in revoke.py / renewal.py, using post() --------------------


def _problem_text(problem: Mapping[str, Any]) -> str:
    code = str(problem.get("type", "")).rsplit(":", 1)[-1] or "error"
    text = f"{code}: {problem.get('detail') or problem.get('title') or 'no detail'}"
    for sub in problem.get("subproblems") or ():
        ident = (sub.get("identifier") or {}).get("value", "?")
        text += f"; {ident}: {sub.get('detail', '')}"
    return text


def _authz_failure(authz: Mapping[str, Any]) -> str:
    for chall in authz.get("challenges", ()):
        error = chall.get("error")
        if isinstance(error, Mapping):
            return _problem_text(error)
    return f"authorization is {authz.get('status')}"


__all__ = [
    "AcmeClient",
    "IssuedCertificate",
    "Order",
    "PollSettings",
    "b64url",
    "jwk_and_alg",
    "key_authorization",
    "split_pem_chain",
]
