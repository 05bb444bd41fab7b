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
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from requests.utils import parse_header_links

from keylife.acme.challenges import ChallengeSolver, ChallengeTask
from keylife.acme.csr import CertificateKey, Identifier, build_csr, parse_identifiers
from keylife.acme.issued import IssuedCertificate, chain_matches, check_issued
from keylife.acme.jose import (
    Payload,
    PollSettings,
    b64url,
    check_directory_url,
    eab_binding,
    jwk_and_alg,
    key_authorization,
)
from keylife.acme.network import DEFAULT_TIMEOUT, AcmeNetwork, Deadline
from keylife.acme.problems import ChallengeFailures, translated
from keylife.acme.wire import (
    Authorization,
    Directory,
    Order,
    decode_json,
    parse_account,
    parse_authorization,
    parse_directory,
    parse_order,
    parse_retry_after,
)
from keylife.clock import SystemClock
from keylife.errors import AcmeError, AcmeTimeoutError, RateLimitedError

log = logging.getLogger(__name__)

JOSE = "application/jose+json"
PEM_CHAIN = "application/pem-certificate-chain"


class AcmeClient:
    """One ACME account at one CA.

    ``ca_bundle`` is a PEM file of CA certificates to trust for the CA's HTTPS endpoint; without
    it the system trust store is used. TLS verification is never turned off. ``trust_roots``
    is a PEM file of roots an issued certificate's chain must verify to (default: the system
    trust store). ``timeout`` is the overall deadline of each operation (:meth:`operation`),
    ``network_timeout`` the longest wait for any single read. ``sleep`` and ``clock`` are
    injectable for tests; nothing else waits.
    """

    def __init__(
        self,
        directory_url: str,
        account_key: CertificateKey,
        *,
        account_url: str | None = None,
        ca_bundle: str | None = None,
        trust_roots: str | None = None,
        poll: PollSettings | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        network_timeout: float = 30.0,
        bad_nonce_attempts: int = 20,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.directory_url = check_directory_url(directory_url)
        self.ca_bundle = ca_bundle
        self.trust_roots = trust_roots
        self.poll = poll or PollSettings()
        Deadline(timeout)  # validates
        self.timeout = timeout
        self.network_timeout = network_timeout
        self.bad_nonce_attempts = bad_nonce_attempts
        self._sleep = sleep
        self._clock = clock or SystemClock().now
        self._deadline: Deadline | None = None
        self._key = account_key
        self._jwk, _ = jwk_and_alg(account_key)
        self._net = self._network(account_key, account_url)
        self._directory: Directory | None = None
        self.account_url = account_url

    def __repr__(self) -> str:
        return f"AcmeClient(directory_url={self.directory_url!r}, account_url={self.account_url!r})"

    # -- plumbing ---------------------------------------------------------------------------

    def _network(self, key: CertificateKey, account_url: str | None) -> AcmeNetwork:
        jwk, alg = jwk_and_alg(key)
        return AcmeNetwork(
            jwk,
            alg,
            verify=self.ca_bundle or True,
            timeout=self.network_timeout,
            bad_nonce_attempts=self.bad_nonce_attempts,
            deadline=self.current_deadline,
            clock=self._clock,
            account_url=account_url,
        )

    def current_deadline(self) -> Deadline:
        """The running operation's deadline (a fresh one for a request outside any)."""
        return self._deadline or Deadline(self.timeout)

    @contextmanager
    def operation(self) -> Iterator[Deadline]:
        """Run a block under one overall deadline (``timeout``); nested blocks share it."""
        if self._deadline is not None:
            yield self._deadline
            return
        self._deadline = Deadline(self.timeout)
        try:
            yield self._deadline
        finally:
            self._deadline = None

    def start_operation(self) -> None:
        """Start the overall deadline now; it runs until :meth:`close`."""
        if self._deadline is None:
            self._deadline = Deadline(self.timeout)

    def close(self) -> None:
        self._deadline = None
        self._net.close()

    @contextmanager
    def network_for(self, key: CertificateKey) -> Iterator[AcmeNetwork]:
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

    def json(self, response: requests.Response) -> Any:
        """The decoded JSON body of a response (already read under the size cap)."""
        return decode_json(str(response.url), response.content)

    def __enter__(self) -> AcmeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def account_key(self) -> CertificateKey:
        return self._key

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            with translated("fetching the ACME directory", self.directory_url):
                response = self._net.get(self.directory_url)
                self._directory = parse_directory(self.directory_url, self.json(response))
        return self._directory

    def resource_url(self, name: str) -> str:
        url = self.directory.resource(name)
        if url is None:
            raise AcmeError(f"the ACME directory {self.directory_url} has no {name!r} resource")
        return url

    def post(
        self,
        url: str,
        payload: Mapping[str, Any] | Any | None,
        *,
        network: AcmeNetwork | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """POST a signed request (``payload=None`` is POST-as-GET). Raises acme errors raw;
        callers wrap with :func:`translated`."""
        net = network or self._net
        obj = payload
        if isinstance(payload, Mapping):
            obj = Payload(payload)
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
        return self.directory.terms_of_service

    @property
    def external_account_required(self) -> bool:
        return self.directory.external_account_required

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
        with self.operation():
            url = self.resource_url("newAccount")
            payload: dict[str, Any] = {}
            if only_existing:
                payload["onlyReturnExisting"] = True
            else:
                payload = self._new_account_payload(url, contact, agree_tos, eab_kid, eab_hmac_key)
            self._net.set_account(None)
            with translated("registering the ACME account", url):
                response = self.post(url, payload)
                location = response.headers.get("Location")
                if not location or not location.lower().startswith("https://"):
                    raise AcmeError(f"the CA did not return an https:// account URL from {url}")
                account = parse_account(url, self.json(response))
                if account.status != "valid":
                    raise AcmeError(f"the ACME account is {account.status!r}, not valid")
        self.account_url = str(location)
        self._net.set_account(self.account_url)
        return self.account_url

    def _new_account_payload(
        self,
        url: str,
        contact: Sequence[str],
        agree_tos: bool,
        eab_kid: str | None,
        eab_hmac_key: str | None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {}
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
        return payload

    def _eab(self, new_account_url: str, kid: str, hmac_key: str) -> dict[str, Any]:
        return eab_binding(self._jwk, new_account_url, kid, hmac_key)

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
                if isinstance(exc, RateLimitedError | AcmeTimeoutError):
                    raise
                log.info("the CA refused 'replaces' (%s); ordering without it", exc)
        with translated("creating the order", url):
            return self._post_order(url, payload)

    def _post_order(self, url: str, payload: Mapping[str, Any]) -> Order:
        response = self.post(url, payload)
        location = response.headers.get("Location")
        if not location:
            raise AcmeError(f"the CA did not return an order URL from {url}")
        return parse_order(str(location), self.json(response))

    def _wait(self, response: requests.Response, delay: float, deadline: float, what: str) -> None:
        now = time.monotonic()
        retry_at = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        wait = delay
        if retry_at is not None:
            wait = max(0.0, (retry_at - self._clock()).total_seconds())
        if now >= deadline:
            raise AcmeError(f"timed out after {self.poll.timeout:g} s waiting for {what}")
        self.current_deadline().check(f"waiting for {what}")
        left = min(deadline, now + self.current_deadline().remaining()) - now
        self._sleep(min(wait, max(0.0, left)))

    def _poll(
        self, url: str, parse: Callable[[str, Any], Any], done: Callable[[Any], bool], what: str
    ) -> Any:
        deadline = time.monotonic() + self.poll.timeout
        delay = self.poll.interval
        while True:
            with translated(f"polling {what}", url):
                response = self.post(url, None)
                message = parse(url, self.json(response))
            if done(message):
                return message
            self._wait(response, delay, deadline, what)
            delay = min(delay * 2, self.poll.max_interval)

    def _task(self, authz: Authorization, solver: ChallengeSolver) -> ChallengeTask | None:
        if authz.status == "valid":
            return None
        if authz.status != "pending":
            raise ChallengeFailures({authz.display: f"authorization is {authz.status}"})
        chall = next((c for c in authz.challenges if c.type == solver.challenge_type), None)
        if chall is None or chall.token is None:
            kinds = ", ".join(sorted({c.type for c in authz.challenges})) or "none"
            raise AcmeError(
                f"{authz.display}: the CA offers no {solver.challenge_type} challenge "
                f"(offered: {kinds})"
            )
        keyauth = key_authorization(chall.token, self._jwk)
        validation = keyauth
        if solver.challenge_type == "dns-01":
            validation = b64url(hashlib.sha256(keyauth.encode("ascii")).digest())
        return ChallengeTask(
            identifier=authz.identifier.value,
            identifier_type=authz.identifier.type,
            wildcard=authz.wildcard,
            token=chall.token,
            validation=validation,
            challenge_url=chall.url,
            authorization_url=authz.url,
        )

    def authorize(self, order: Order, solver: ChallengeSolver) -> None:
        """Answer every pending authorization of the order with ``solver``; wait for results."""
        tasks: list[ChallengeTask] = []
        for authz_url in order.authorizations:
            with translated("fetching an authorization", authz_url):
                authz = parse_authorization(authz_url, self.json(self.post(authz_url, None)))
            task = self._task(authz, solver)
            if task is not None:
                tasks.append(task)
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
                    parse_authorization,
                    lambda a: a.status not in ("pending", "processing"),
                    f"the authorization of {task.display}",
                )
                if authz.status != "valid":
                    failures[task.display] = authz.failure()
            if failures:
                raise ChallengeFailures(failures)
        finally:
            solver.cleanup(tasks)

    def finalize(self, order: Order, csr_pem: bytes) -> Order:
        """Send the CSR and wait until the order is valid (or failed)."""
        csr = x509.load_pem_x509_csr(csr_pem)
        payload = {"csr": b64url(csr.public_bytes(serialization.Encoding.DER))}
        with translated("finalizing the order", order.finalize):
            done = parse_order(order.url, self.json(self.post(order.finalize, payload)))
        if done.status not in ("valid", "invalid"):
            done = self._poll(
                order.url,
                parse_order,
                lambda o: o.status in ("valid", "invalid"),
                "the certificate to be issued",
            )
        if done.status == "invalid":
            reason = done.error.describe() if done.error is not None else "no reason given"
            raise AcmeError(f"the CA refused to issue the certificate: {reason}")
        return done

    def download(self, order: Order, *, preferred_chain: str | None = None) -> IssuedCertificate:
        """Fetch the certificate chain; with ``preferred_chain``, pick among alternates."""
        if not order.certificate:
            raise AcmeError(f"the order {order.url} has no certificate URL")
        with translated("downloading the certificate", order.certificate):
            response = self.post(order.certificate, None, headers={"Accept": PEM_CHAIN})
            chosen = _pem_text(response)
            alternates = [
                link["url"]
                for link in parse_header_links(response.headers.get("Link", ""))[:10]
                if link.get("rel") == "alternate" and link.get("url")
            ]
            if preferred_chain and not chain_matches(chosen, preferred_chain):
                for alt_url in alternates:
                    text = _pem_text(self.post(alt_url, None, headers={"Accept": PEM_CHAIN}))
                    if chain_matches(text, preferred_chain):
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
        """Order, validate, finalize, download and check a certificate for ``key``
        (:func:`keylife.acme.issued.check_issued`), all within one deadline."""
        ident_list = parse_identifiers([str(n) for n in names])
        csr_pem = build_csr(key, ident_list)
        with self.operation():
            order = self.new_order(ident_list, replaces=replaces, profile=profile)
            if order.status not in ("ready", "valid"):
                self.authorize(order, solver)
            order = self.finalize(order, csr_pem)
            issued = self.download(order, preferred_chain=preferred_chain)
        check_issued(issued, key, ident_list, self._clock(), trust_roots=self.trust_roots)
        return issued


def _pem_text(response: requests.Response) -> str:
    try:
        return response.content.decode("ascii")
    except UnicodeDecodeError:
        raise AcmeError(f"the certificate at {response.url} is not PEM text") from None


__all__ = [
    "AcmeClient",
    "IssuedCertificate",
    "Order",
    "PollSettings",
    "b64url",
    "check_directory_url",
    "jwk_and_alg",
    "key_authorization",
]
