"""``keylife cert ...``: ACME certificates kept as key versions.

Heavy modules (acme, josepy, cryptography, requests) are imported inside the commands only, so
``keylife --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

import click

from keylife.certificates import CERTIFICATE_PEM
from keylife.lifecycle import RevocationReason

from .context import Obj, emit, errors, pass_obj

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
#: The reasons a subscriber may send a CA: the lifecycle's enum without the CA's own
#: ``ca-compromise`` (the rule of ``keylife.acme.revoke.SUBSCRIBER_REASONS``).
REVOKE_REASONS = tuple(r.value for r in RevocationReason if r is not RevocationReason.CA_COMPROMISE)
DEFAULT_TIMEOUT = 300.0
LE_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


@click.group()
def cert() -> None:
    """ACME certificates: issue, revoke, account."""


@cert.command()
@click.argument("ring")
@click.option(
    "--domain", "domains", multiple=True, required=True, help="DNS name, *.wildcard or IP."
)
@click.option("--directory", required=True, help=f"ACME directory URL (e.g. {LE_STAGING}).")
@click.option("--challenge", type=click.Choice(["http-01", "dns-01"]), default="http-01")
@click.option("--http-port", type=int, default=80, show_default=True, help="Standalone port.")
@click.option("--http-address", default="", help="Standalone listen address (default: all).")
@click.option("--webroot", help="Serve http-01 from this directory instead (existing server).")
@click.option("--dns-hook", help="Command publishing the TXT record (KEYLIFE_ACME_TXT_NAME/VALUE).")
@click.option("--dns-cleanup-hook", help="Command removing the TXT record.")
@click.option(
    "--propagation-wait", type=float, default=0.0, help="Seconds to wait after dns hooks."
)
@click.option("--key-type", type=click.Choice(KEY_TYPES), default="ec-p256", show_default=True)
@click.option("--email", "contact", multiple=True, help="Account contact address.")
@click.option("--agree-tos", is_flag=True, help="Agree to the CA's terms of service.")
@click.option("--eab-kid", help="External Account Binding key id.")
@click.option("--eab-hmac-key", envvar="KEYLIFE_EAB_HMAC_KEY", help="EAB HMAC key (base64url).")
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    help="CA bundle for the ACME server's HTTPS (verification is never off).",
)
@click.option(
    "--trust-roots",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM roots the issued chain must verify to (default: the system trust store).",
)
@click.option("--preferred-chain", help="Issuer CN of the preferred alternate chain.")
@click.option("--account-ring", help="Ring holding the account key (default: per directory).")
@click.option("--deploy-to", type=click.Path(file_okay=False), help="Write PEM files here.")
@click.option(
    "--deploy-hook", help="Command run after issue/renewal (e.g. systemctl reload nginx)."
)
@click.option(
    "--poll-interval",
    type=float,
    default=0.05,
    show_default=True,
    help="First poll wait (s); doubles up to 5 s.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Overall deadline of the ACME operation (s).",
)
@pass_obj
def issue(obj: Obj, /, ring: str, **opts: Any) -> None:
    """Issue a certificate for RING (created as a tls-server ring if new) and store it as a
    new key version."""
    from keylife.acme.rings import CertSettings, issue_certificate
    from keylife.names import check_ring_name

    agree_tos = bool(opts.pop("agree_tos"))
    eab_kid = opts.pop("eab_kid")
    eab_hmac_key = opts.pop("eab_hmac_key")
    with errors(obj):
        check_ring_name(ring)  # before anything is opened, created or sent
        settings = CertSettings(
            directory=opts["directory"],
            domains=tuple(opts["domains"]),
            challenge=opts["challenge"],
            http_port=opts["http_port"],
            http_address=opts["http_address"],
            webroot=opts["webroot"],
            dns_hook=opts["dns_hook"],
            dns_cleanup_hook=opts["dns_cleanup_hook"],
            propagation_wait=opts["propagation_wait"],
            key_type=opts["key_type"],
            contact=tuple(opts["contact"]),
            ca_bundle=opts["ca_bundle"],
            trust_roots=opts["trust_roots"],
            preferred_chain=opts["preferred_chain"],
            account_ring=opts["account_ring"],
            deploy_to=opts["deploy_to"],
            deploy_hook=opts["deploy_hook"],
            poll_interval=opts["poll_interval"],
            timeout=opts["timeout"],
            agree_tos=agree_tos,
        )
        with obj.manager(create=True) as manager:
            result = issue_certificate(
                manager,
                ring,
                settings,
                agree_tos=agree_tos,
                eab_kid=eab_kid,
                eab_hmac_key=eab_hmac_key,
            )
        doc = result.to_dict()
        emit(
            obj,
            doc,
            f"{ring} v{doc['version']}: certificate {doc['serial']} for "
            f"{', '.join(doc['domains'])}, valid until {doc['not_after']}"
            + (f", deployed to {doc['deployed_to']}" if doc["deployed_to"] else ""),
        )


@cert.command()
@click.argument("ring")
@click.option("--version", "number", type=int, help="Version (default: the current one).")
@click.option("--reason", type=click.Choice(REVOKE_REASONS), required=True)
@click.option("--by-certificate-key", is_flag=True, help="Sign with the certificate's key.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Overall deadline of the ACME operation (s).",
)
@pass_obj
def revoke(
    obj: Obj,
    ring: str,
    number: int | None,
    reason: str,
    by_certificate_key: bool,
    timeout: float,
) -> None:
    """Revoke RING's certificate at the CA and record the revocation in the lifecycle."""
    from keylife.acme.rings import revoke_version
    from keylife.errors import AcmeError

    with errors(obj), obj.manager() as manager:
        if number is None:
            certified = [v for v in manager.load(ring).versions if CERTIFICATE_PEM in v.attributes]
            primary = manager.load(ring).primary(manager.now())
            chosen = primary if primary is not None and primary in certified else None
            if chosen is None and certified:
                chosen = certified[-1]
            if chosen is None:
                raise AcmeError(f"ring {ring} has no certificate")
            number = chosen.number
        revoked_now = revoke_version(
            manager, ring, number, reason, by_certificate_key=by_certificate_key, timeout=timeout
        )
        version = manager.load(ring).get(number)
        assert version is not None
        state = version.state.value
        compromise = reason == "key-compromise" and state in ("active", "suspended", "deactivated")
        if compromise or state in ("active", "suspended"):
            # compromise -> compromised (never used again); other reasons -> deactivated
            manager.revoke(ring, number, reason, message="certificate revoked at the CA")
        doc = {
            "ring": ring,
            "version": number,
            "serial": version.attributes.get("serial"),
            "reason": reason,
            "revoked": True,
            "already_revoked": not revoked_now,
        }
        emit(
            obj,
            doc,
            f"{ring} v{number}: certificate {doc['serial']} revoked ({reason})"
            + ("" if revoked_now else "; the CA had already revoked it"),
        )


@cert.group()
def account() -> None:
    """The ACME account."""


@account.command()
@click.option("--directory", required=True, help="ACME directory URL of the account.")
@click.option("--account-ring", help="Ring holding the account key (default: per directory).")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Overall deadline of the ACME operation (s).",
)
@pass_obj
def rollover(
    obj: Obj, directory: str, account_ring: str | None, ca_bundle: str | None, timeout: float
) -> None:
    """Replace the account key at the CA (keyChange) with a new version of the account ring."""
    from keylife.acme import CertSettings, rollover_account

    with errors(obj), obj.manager() as manager:
        settings = CertSettings(
            directory=directory,
            domains=("placeholder.invalid",),
            account_ring=account_ring,
            ca_bundle=ca_bundle,
        )
        number = rollover_account(manager, settings, timeout=timeout)
        doc = {"account_ring": settings.account_ring_name, "version": number}
        emit(obj, doc, f"account key rolled over: {settings.account_ring_name} v{number}")
