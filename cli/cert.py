"""``keylife cert ...``: ACME certificates kept as key versions.

Heavy modules (acme, josepy, cryptography, requests) are imported inside the commands only, so
``keylife --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from keylife.errors import AcmeError
from keylife.lifecycle import RevocationReason

from .context import Obj, emit, errors, pass_obj

if TYPE_CHECKING:
    from keylife.acme.status import CertificateStatus
    from keylife.lifecycle import KeyVersion
    from keylife.manager import KeyManager

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
#: The reasons a subscriber may send a CA: the lifecycle's enum without the CA's own
#: ``ca-compromise`` (the rule of ``keylife.acme.revoke.SUBSCRIBER_REASONS``).
REVOKE_REASONS = tuple(r.value for r in RevocationReason if r is not RevocationReason.CA_COMPROMISE)
DEFAULT_TIMEOUT = 300.0
LE_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
PORT = click.IntRange(0, 65535)


@click.group()
def cert() -> None:
    """ACME certificates: issue, list, show, renew, revoke, account."""


@cert.command()
@click.argument("ring")
@click.option(
    "--domain", "domains", multiple=True, required=True, help="DNS name, *.wildcard or IP."
)
@click.option("--directory", required=True, help=f"ACME directory URL (e.g. {LE_STAGING}).")
@click.option(
    "--challenge", type=click.Choice(["http-01", "dns-01", "tls-alpn-01"]), default="http-01"
)
@click.option(
    "--http-port", type=PORT, default=80, show_default=True, help="http-01 standalone port."
)
@click.option("--http-address", default="", help="http-01 listen address (default: all).")
@click.option(
    "--tls-port",
    type=PORT,
    default=443,
    show_default=True,
    help="tls-alpn-01 port (the CA connects to 443; forward it here if it differs).",
)
@click.option("--tls-address", default="", help="tls-alpn-01 listen address (default: all).")
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
            tls_port=opts["tls_port"],
            tls_address=opts["tls_address"],
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
    "--renew", is_flag=True, help="Then issue the replacement key and certificate at once."
)
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
    renew: bool,
    timeout: float,
) -> None:
    """Revoke RING's certificate; say what comes next.

    The certificate is revoked at the CA and in the key's lifecycle; the next step is printed,
    or, with --renew, the replacement is issued at once."""
    from keylife.acme.rings import record_revocation, revoke_version
    from keylife.acme.status import certificate_status

    if renew and reason == "cessation-of-operation":
        raise click.BadParameter(
            "cessation-of-operation retires the ring, which then gains no new certificate; "
            "revoke with superseded to replace it",
            param_hint="--renew",
        )
    with errors(obj), obj.manager() as manager:
        before = certificate_status(manager.load(ring), manager.now())
        if number is None:
            if before.version is None:
                raise AcmeError(f"ring {ring} has no certificate to revoke")
            number = before.version.number
        revoked_now = revoke_version(
            manager, ring, number, reason, by_certificate_key=by_certificate_key, timeout=timeout
        )
        record_revocation(manager, ring, number, reason)
        renewed = _renew_after_revoke(manager, ring, number, reason) if renew else None
        after = certificate_status(manager.load(ring), manager.now())
        version = manager.load(ring).get(number)
        assert version is not None
        doc = {
            "ring": ring,
            "version": number,
            "serial": version.attributes.get("serial"),
            "reason": reason,
            "revoked": True,
            "already_revoked": not revoked_now,
            "state": version.state.value,
            "renewed_version": None if renewed is None else renewed.number,
            "valid_certificate": after.valid,
            "current_version": after.version.number if after.valid and after.version else None,
            "next_step": _next_step(ring, number, reason, renewed, after),
        }
        emit(
            obj,
            doc,
            f"{ring} v{number}: certificate {doc['serial']} revoked ({reason})"
            + ("" if revoked_now else "; the CA had already revoked it")
            + f"; v{number} is now {doc['state']}\nnext: {doc['next_step']}",
        )


def _renew_after_revoke(manager: KeyManager, ring: str, number: int, reason: str) -> KeyVersion:
    """``--renew``: the replacement; if the CA cannot issue it, say that the revocation stands
    and how to get the replacement."""
    from keylife.errors import KeylifeError

    try:
        return manager.renew_certificate(ring)
    except KeylifeError as exc:
        raise AcmeError(
            f"{ring} v{number}: certificate revoked ({reason}), but no replacement was issued: "
            f"{exc}; `keylife cert renew {ring}` tries again (the next `keylife rotate` does too)"
        ) from exc


def _next_step(
    ring: str, number: int, reason: str, renewed: KeyVersion | None, after: CertificateStatus
) -> str:
    """One sentence: what the operator does next after revoking ``ring`` v``number``."""
    if renewed is not None:
        where = after.settings.deploy_to
        return f"v{renewed.number} holds a new key and certificate " + (
            f"{renewed.attributes.get('serial')}" + (f", deployed to {where}" if where else "")
        )
    where = after.settings.deploy_to
    if after.retired is not None:
        return f"nothing: {ring} is retired ({after.retired}) and gains no new certificate" + (
            f"; take {where} out of your server's configuration" if where else ""
        )
    if after.valid and after.version is not None:
        return f"nothing: v{after.version.number} still holds the ring's valid certificate"
    head = f"{ring} has no valid certificate now; `keylife cert renew {ring}` issues a new key "
    head += "and certificate at once, otherwise the next `keylife rotate` run does"
    if where:
        head += f"; until then {where} still holds the revoked certificate"
    if reason == "key-compromise":
        return head + " and the compromised key"
    if reason in ("affiliation-changed", "privilege-withdrawn"):
        head += f"; if the service is gone, `keylife key retire {ring}` stops renewal instead"
    return head


@cert.command("list")
@pass_obj
def list_(obj: Obj) -> None:
    """Every certificate ring, like certbot certificates.

    Domains, issuer, serial, validity and days left, CA, account, deployed files, and when and
    why each is renewed."""
    from keylife.acme.status import certificate_status
    from keylife.certificates import is_certificate_ring

    with errors(obj), obj.manager() as manager:
        now = manager.now()
        found = [certificate_status(r, now) for r in manager.rings() if is_certificate_ring(r)]
    docs = [status.to_dict() for status in found]

    def text() -> None:
        if not docs:
            click.echo("no certificate rings (`keylife cert issue` makes one)")
        for doc in docs:
            print_certificate_status(doc)

    emit(obj, {"certificates": docs}, text)


@cert.command()
@click.argument("ring")
@pass_obj
def show(obj: Obj, ring: str) -> None:
    """One certificate ring in detail.

    Domains, issuer, serial, validity and days left, CA, account, deployed files, and when and
    why it is renewed."""
    from keylife.acme.status import certificate_status

    with errors(obj), obj.manager() as manager:
        doc = certificate_status(manager.load(ring), manager.now()).to_dict()
    emit(obj, doc, lambda: print_certificate_status(doc))


@cert.command()
@click.argument("ring")
@click.option("--force", is_flag=True, help="Renew even if the certificate is not due.")
@pass_obj
def renew(obj: Obj, ring: str, force: bool) -> None:
    """Renew RING's certificate if due (--force: now).

    A new key and certificate, the way `keylife rotate` renews; when not due, nothing changes
    and the command says when it will be."""
    from keylife.acme.status import certificate_status

    with errors(obj), obj.manager() as manager:
        status = certificate_status(manager.load(ring), manager.now())
        if status.retired is not None:
            raise AcmeError(
                f"ring {ring} is retired ({status.retired}) and gains no new certificate; "
                "issue into a new ring with `keylife cert issue NEW --domain ...`"
            )
        if not status.renewal.due_now and not force:
            due = status.renewal.due
            when = "" if due is None else f" until {due.isoformat()}"
            doc = {
                "ring": ring,
                "renewed": False,
                "version": None if status.version is None else status.version.number,
                "next_renewal": None if due is None else due.isoformat(),
                "renewal_reason": status.renewal.reason,
            }
            emit(
                obj,
                doc,
                f"{ring}: not due for renewal{when} ({status.renewal.reason}); "
                "`--force` renews now",
            )
            return
        previous = status.version.number if status.version is not None else None
        version = manager.renew_certificate(ring)
        after = certificate_status(manager.load(ring), manager.now()).to_dict()
    doc = {"ring": ring, "renewed": True, "previous_version": previous, **after}
    doc["version"] = version.number
    emit(
        obj,
        doc,
        f"{ring} v{version.number}: certificate {version.attributes.get('serial')} for "
        f"{', '.join(after['domains'])}, valid until {after['not_after']}"
        + (f", deployed to {after['deploy']['directory']}" if after["deploy"] else ""),
    )


def print_certificate_status(doc: dict[str, Any]) -> None:
    click.echo(f"Certificate ring: {doc['ring']}")
    rows: list[tuple[str, Any]] = [("Domains", " ".join(doc["domains"]))]
    if doc["retired"]:
        rows.append(("Retired", doc["retired"]))
    if doc["version"] is None:
        rows.append(("Certificate", "none yet"))
    else:
        revoked = f", revoked: {doc['revoked']}" if doc["revoked"] else ""
        rows += [
            ("Version", f"v{doc['version']} ({doc['state']}{revoked})"),
            ("Serial", doc["serial"]),
            ("Issuer", doc["issuer"]),
            ("Valid from", doc["not_before"]),
            ("Valid until", f"{doc['not_after']} ({doc['days_left']} days left)"),
            ("Key used until", doc["key_deactivation"]),
        ]
    rows += [
        ("CA directory", doc["directory"]),
        ("Account ring", doc["account_ring"]),
        ("Challenge", doc["challenge"]),
    ]
    deploy = doc["deploy"]
    if deploy:
        held = f"holds v{doc['version']}" + ("" if doc["valid"] else ", which is not valid")
        state = {True: held, False: f"does NOT hold v{doc['version']}", None: "nothing issued"}
        rows.append(("Deployed to", f"{deploy['directory']} ({state[deploy['current']]})"))
        rows += [(f"  {role}.pem", path) for role, path in deploy["files"].items()]
    if doc["deploy_hook"]:
        rows.append(("Deploy hook", doc["deploy_hook"]))
    rows.append(("Next renewal", doc["next_renewal"] or "never"))
    rows.append(("  because", doc["renewal_reason"]))
    for label, value in rows:
        click.echo(f"  {label + ':':<16} {value}")


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
