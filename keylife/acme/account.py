"""The ACME account: its key is the primary version of a ``signing`` ring of its own (default
name ``acme-account-<hash of the directory URL>``, marked by the ring attribute
:data:`keylife.certificates.ACME_ACCOUNT`), replaced only through the CA's keyChange."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keylife.acme.client import AcmeClient, PollSettings
from keylife.acme.csr import CertificateKey
from keylife.acme.settings import CertSettings
from keylife.certificates import ACME_ACCOUNT
from keylife.errors import AcmeError, NotFoundError

if TYPE_CHECKING:
    from keylife.manager import KeyManager

ACCOUNT_PURPOSE = "signing"
_PLACEHOLDER_DELAY = dt.timedelta(days=3650)


def account_key(manager: KeyManager, settings: CertSettings, *, create: bool) -> CertificateKey:
    """The account ring's primary key (the ring is created when missing and ``create``)."""
    name = settings.account_ring_name
    try:
        manager.load(name)
    except NotFoundError:
        if not create:
            raise
        manager.create_ring(
            name,
            "ec-p256",
            ACCOUNT_PURPOSE,
            attributes={ACME_ACCOUNT: json.dumps({"directory": settings.directory})},
        )
    key = manager.ring(name).primary().key
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise AcmeError(f"account ring {name} does not hold an RSA or ECDSA key")
    return key


def open_account(
    manager: KeyManager,
    settings: CertSettings,
    *,
    agree_tos: bool = False,
    eab_kid: str | None = None,
    eab_hmac_key: str | None = None,
    create: bool = True,
    sleep: Callable[[float], None] | None = None,
    timeout: float | None = None,
) -> AcmeClient:
    """An :class:`AcmeClient` signed by the ring-held account key, registered at the CA.

    Its overall deadline (``timeout``, default the settings' ``timeout``) starts now and covers
    everything done with it until it is closed.
    """
    key = account_key(manager, settings, create=create)
    client = AcmeClient(
        settings.directory,
        key,
        ca_bundle=settings.ca_bundle,
        trust_roots=settings.trust_roots,
        poll=PollSettings(
            interval=settings.poll_interval,
            max_interval=max(5.0, settings.poll_interval),
            timeout=timeout or settings.timeout,
        ),
        timeout=timeout or settings.timeout,
        clock=manager.now,
        sleep=sleep or time.sleep,
    )
    try:
        client.start_operation()
        try:
            client.register(only_existing=True)
        except AcmeError as exc:
            if type(exc) is not AcmeError:
                raise  # timeouts and malformed answers are not "no such account"
            client.register(
                contact=settings.contact,
                agree_tos=agree_tos or settings.agree_tos,
                eab_kid=eab_kid,
                eab_hmac_key=eab_hmac_key,
            )
    except BaseException:
        client.close()
        raise
    return client


def rollover_account(
    manager: KeyManager, settings: CertSettings, *, timeout: float | None = None
) -> int:
    """keyChange to a fresh key held as a new version of the account ring.

    The new version is stored pre-active first, then the CA is told, then it is activated (which
    deactivates the old one in the same write): a crash leaves either the old key working or
    both stored.
    """
    from keylife.acme.rollover import rollover_account_key
    from keylife.keygen import generate_private_key as core_generate
    from keylife.keygen import private_key_material
    from keylife.specs import parse_spec

    name = settings.account_ring_name
    spec = parse_spec("ec-p256")
    new_key = core_generate(spec)
    assert isinstance(new_key, CertificateKey)
    with open_account(manager, settings, create=False, timeout=timeout) as client:
        old = manager.ring(name).primary()
        staged = manager.add_version(
            name,
            private_key_material(new_key, spec),
            activate_at=manager.now() + _PLACEHOLDER_DELAY,
            reason="ACME account key rollover (staged)",
            attributes={ACME_ACCOUNT: json.dumps({"directory": settings.directory})},
        )
        rollover_account_key(client, new_key)
    # Activation supersedes the old key: it is deactivated in the same write.
    manager.activate(name, staged.number, reason=f"ACME keyChange accepted; replaces v{old.number}")
    return staged.number


__all__ = ["ACCOUNT_PURPOSE", "account_key", "open_account", "rollover_account"]
