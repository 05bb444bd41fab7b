"""``keylife vault``: set up Vault / OpenBao for keylife and print least-privilege policies.

hvac and requests are imported only inside the commands (CLI start-up time is benchmarked).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from keylife.policy import Purpose

from .context import Obj, emit, errors, fail, pass_obj
from .render import pending_schedule

if TYPE_CHECKING:
    from keylife.vault import TransitKeyView, TransitRings, VaultKeyStore


def _url(obj: Obj) -> str:
    url = obj.store
    if not url or not url.startswith(("vault://", "vaults://", "http://", "https://")):
        fail(
            obj,
            "`keylife vault` needs a Vault store: --store vaults://HOST:PORT/MOUNT "
            "(or KEYLIFE_STORE); hosts may be left out to use VAULT_ADDR",
            2,
        )
    return url


def _open(obj: Obj) -> VaultKeyStore:
    from keylife.vault import VaultKeyStore

    return VaultKeyStore.from_url(_url(obj))


def _with_transit(obj: Obj, action: Callable[[TransitRings], Any]) -> Any:
    """Run ``action`` on the store's transit-resident rings, with the actor, clock and policy
    of ``keylife`` (``--actor``, ``--policy``)."""
    from keylife.vault import VaultKeyStore

    _url(obj)
    with errors(obj), obj.manager() as manager:
        store = manager.store
        assert isinstance(store, VaultKeyStore)
        rings = store.transit_rings(actor=manager.actor, clock=manager.clock, policy=manager.policy)
        return action(rings)


@click.group()
def vault() -> None:
    """HashiCorp Vault / OpenBao: mounts, the Transit wrapping key, policies."""


@vault.command()
@click.option(
    "--ring",
    "rings",
    multiple=True,
    help="Also write the read-only service policy of this ring (repeatable).",
)
@pass_obj
def setup(obj: Obj, rings: tuple[str, ...]) -> None:
    """Enable the KV v2 (cas_required) and Transit mounts, create the non-exportable wrapping
    key, and write the operator policy (for `keylife rotate`) and service policies."""
    from keylife.vault.setup import setup as do_setup

    with errors(obj):
        store = _open(obj)
        try:
            policies = do_setup(store, rings=rings)
        finally:
            store.close()
    doc = {
        "store": store.url,
        "kv_mount": store.mount,
        "transit_mount": store.transit_mount,
        "wrapping_key": store.key_name,
        "policies": sorted(policies),
    }
    emit(
        obj,
        doc,
        lambda: click.echo(
            f"Vault ready for keylife: KV v2 {store.mount}/ (cas_required), Transit "
            f"{store.transit_mount}/keys/{store.key_name} (non-exportable)\n"
            + "".join(f"policy written: {name}\n" for name in sorted(policies)),
            nl=False,
        ),
    )


@vault.command()
@pass_obj
def status(obj: Obj) -> None:
    """How keylife reaches Vault: address, TLS verification and CA file, the token's accessor
    and display name, the server's version, seal and HA state."""
    from keylife.vault.status import vault_status

    with errors(obj):
        store = _open(obj)
        try:
            doc = vault_status(store.client)
        finally:
            store.close()

    def text() -> None:
        tls, tok, srv, ha = doc["tls"], doc["token"], doc["server"], doc["ha"]
        click.echo(f"address: {doc['address']} (of {', '.join(doc['addresses'])})")
        verify = "on" if tls["verify"] else "off"
        click.echo(
            f"TLS: {'https' if tls['https'] else 'plain http'}, verify {verify}, "
            f"trust {tls['trust']}"
        )
        click.echo(f"token: accessor {tok['accessor']}, display name {tok['display_name']}")
        click.echo(
            f"server: version {srv['version']}, sealed {srv['sealed']}, standby {srv['standby']}"
        )
        click.echo(f"HA: enabled {ha['enabled']}, leader {ha['leader_address'] or '-'}")

    emit(obj, doc, text)


@vault.command()
@pass_obj
def reindex(obj: Obj) -> None:
    """Rebuild the ring index shards (ix/00..ff) from the ring documents. Safe at any time:
    the index is a hint that readers check against each ring's KV version."""
    with errors(obj):
        store = _open(obj)
        try:
            doc = store.reindex()
        finally:
            store.close()
    emit(
        obj,
        doc,
        lambda: click.echo(f"index rebuilt: {doc['rings']} rings in {doc['shards']} shards"),
    )


@vault.command()
@click.option("--apply", "apply_", is_flag=True, help="Erase them (default: only list them).")
@click.option(
    "--min-age",
    default=3600,
    show_default=True,
    type=click.IntRange(60, None),
    help="Seconds a blob must have existed unreferenced (writes in flight are younger).",
)
@pass_obj
def gc(obj: Obj, apply_: bool, min_age: int) -> None:
    """List (with --apply: erase) material blobs that no ring references: left by crashes,
    kills, lost check-and-sets or ring documents deleted outside keylife."""
    import datetime as dt

    from keylife.clock import SystemClock
    from keylife.vault.gc import collect

    with errors(obj):
        store = _open(obj)
        try:
            report = collect(
                store.kv,
                now=SystemClock().now(),
                min_age=dt.timedelta(seconds=min_age),
                apply=apply_,
            )
        finally:
            store.close()
    doc = report.to_dict()

    def text() -> None:
        verb = "removed" if apply_ else "would remove (dry run; --apply erases)"
        click.echo(f"{len(report.orphans)} unreferenced blobs older than {min_age} s, {verb}")
        for o in report.orphans:
            click.echo(f"  {o.ring} v{o.version} {o.blob} (created {o.created})")
        if report.young:
            click.echo(f"{len(report.young)} younger unreferenced blobs kept (writes in flight?)")

    emit(obj, doc, text)


@vault.command()
@click.argument("ring", required=False)
@click.option("--operator", is_flag=True, help="Print the operator policy instead.")
@click.option(
    "--verify-only",
    is_flag=True,
    help="RING's public keys and nothing secret (asymmetric rings; reads the ring from Vault).",
)
@pass_obj
def policy(obj: Obj, ring: str | None, operator: bool, verify_only: bool) -> None:
    """Print the HCL of RING's read-only service policy (or of the operator policy).

    With --verify-only: a policy that reads RING's published public keys (what `keylife key
    public RING` needs) and nothing else. Write it with `bao policy write NAME -` /
    `vault policy write NAME -`.
    """
    from keylife.vault.policy import (
        operator_policy,
        operator_policy_name,
        service_policy,
        service_policy_name,
        verify_only_policy,
        verify_only_policy_name,
    )

    if operator and verify_only:
        fail(obj, "give --operator or --verify-only, not both", 2)
    if not operator and not ring:
        fail(obj, "give a RING, or --operator", 2)
    with errors(obj):
        store = _open(obj)
        try:
            if operator or ring is None:
                name, hcl = operator_policy_name(store), operator_policy(store)
            elif verify_only:
                name, hcl = verify_only_policy_name(store, ring), verify_only_policy(store, ring)
            else:
                name, hcl = service_policy_name(store, ring), service_policy(store, ring)
        finally:
            store.close()
    emit(obj, {"name": name, "policy": hcl}, lambda: click.echo(hcl, nl=False))


# ---- transit-resident keys ---------------------------------------------------------------------


def _transit_doc(view: TransitKeyView) -> None:
    d = view.to_dict()
    click.echo(
        f"{d['name']}: Transit key {d['key']} ({d['key_type']}), newest v{d['latest_version']}, "
        f"min_encryption_version {d['min_encryption_version']}, "
        f"min_decryption_version {d['min_decryption_version']}"
    )
    for v in d["versions"]:
        dates = ", ".join(
            f"{k} {v[k]}" for k in ("created", "deactivated", "compromised", "destroyed") if v[k]
        )
        reason = f" ({v['reason']})" if v["reason"] else ""
        held = view.ring.get(v["number"])
        schedule = None if held is None else pending_schedule(held)
        if schedule is not None:
            dates += f", destruction scheduled {schedule.due.isoformat()}"
        click.echo(f"  v{v['number']}: {v['state']}{reason}; {dates}")


@vault.group()
def transit() -> None:
    """Transit-resident keys: keys that never leave Vault, versions under the lifecycle."""


def _transit_cmd(obj: Obj, action: Callable[[TransitRings], TransitKeyView]) -> None:
    view: TransitKeyView = _with_transit(obj, action)
    emit(obj, view.to_dict(), lambda: _transit_doc(view))


@transit.command("create")
@click.argument("name")
@click.option("--type", "key_type", default="aes256-gcm96", show_default=True)
@click.option(
    "--purpose",
    type=click.Choice([p.value for p in Purpose]),
    default=Purpose.DATA_ENCRYPTION.value,
    show_default=True,
)
@pass_obj
def transit_create(obj: Obj, name: str, key_type: str, purpose: str) -> None:
    """Create the non-exportable Transit key kl-NAME and its version record. The type and its
    strength must be allowed for the purpose today, as for `keylife key create`."""
    _transit_cmd(obj, lambda tk: tk.create(name, key_type, purpose=purpose))


@transit.command("show")
@click.argument("name")
@pass_obj
def transit_show(obj: Obj, name: str) -> None:
    """Versions, their states and dates, and Transit's floors."""
    _transit_cmd(obj, lambda tk: tk.show(name))


@transit.command("rotate")
@click.argument("name")
@pass_obj
def transit_rotate(obj: Obj, name: str) -> None:
    """Add a new version, active at once (new encryptions use it); older versions stop
    encrypting (min_encryption_version) and still decrypt."""
    _transit_cmd(obj, lambda tk: tk.rotate(name))


@transit.command("deactivate")
@click.argument("name")
@click.argument("version", type=int)
@pass_obj
def transit_deactivate(obj: Obj, name: str, version: int) -> None:
    """VERSION (and older active versions) stop encrypting: raises min_encryption_version.
    Not the newest version (rotate instead)."""
    _transit_cmd(obj, lambda tk: tk.deactivate(name, version))


@transit.command("compromise")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", default="")
@pass_obj
def transit_compromise(obj: Obj, name: str, version: int, reason: str) -> None:
    """VERSION compromised: raises min_decryption_version above it and trims it (and older
    versions). Run `keylife vault rewrap --dry-run` first to see what would be lost."""
    _transit_cmd(obj, lambda tk: tk.compromise(name, version, reason=reason))


@transit.command("destroy")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", default="")
@click.option("--wait", metavar="DURATION", help="As for `keylife key destroy`.")
@pass_obj
def transit_destroy(obj: Obj, name: str, version: int, reason: str, wait: str | None) -> None:
    """Schedule the destruction of VERSION (and so of older versions) the policy's
    destroy_wait later; `keylife rotate` then raises min_decryption_version and trims."""
    from .destroy import parse_wait

    delay = parse_wait(wait)
    _transit_cmd(obj, lambda tk: tk.destroy(name, version, reason=reason, wait=delay))


@transit.command("cancel-destroy")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", default="")
@pass_obj
def transit_cancel_destroy(obj: Obj, name: str, version: int, reason: str) -> None:
    """Cancel the scheduled destruction of VERSION."""
    _transit_cmd(obj, lambda tk: tk.cancel_destroy(name, version, reason=reason))


@transit.command("approve")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", default="")
@pass_obj
def transit_approve(obj: Obj, name: str, version: int, reason: str) -> None:
    """Approve the scheduled destruction of VERSION as a second actor (two-person rule)."""
    _transit_cmd(obj, lambda tk: tk.approve_destroy(name, version, reason=reason))


@vault.command()
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, writable=True))
@click.option("--batch-size", default=100, show_default=True, type=click.IntRange(1, 10000))
@click.option("--dry-run", is_flag=True, help="List the ciphertexts still on older versions.")
@pass_obj
def rewrap(obj: Obj, name: str, file: str, batch_size: int, dry_run: bool) -> None:
    """Rewrap FILE's ciphertexts (one `vault:vN:...` per line) to NAME's newest version.

    The file is replaced atomically after each batch and a checkpoint (FILE.rewrap-checkpoint)
    records progress: an interrupted run resumes where it stopped.
    """
    from keylife.vault.rewrap import plan_rewrap, rewrap_file

    def run(rings: TransitRings) -> dict[str, Any]:
        if dry_run:
            return plan_rewrap(rings, name, file).to_dict()
        return rewrap_file(rings, name, file, batch_size=batch_size).to_dict()

    doc: dict[str, Any] = _with_transit(obj, run)

    def text() -> None:
        if not dry_run:
            click.echo(
                f"rewrapped {doc['rewrapped']} ciphertexts to v{doc['target_version']} "
                f"in {doc['batches']} batches"
                + (
                    f" (resumed at line {doc['resumed_from_line'] + 1})"
                    if doc["resumed_from_line"]
                    else ""
                )
            )
            return
        click.echo(
            f"{doc['to_rewrap']} of {doc['lines']} ciphertexts are not on v{doc['target_version']}"
        )
        for v in doc["versions"]:
            shown = ", ".join(str(n) for n in v["lines"][:20])
            more = " …" if len(v["lines"]) > 20 else ""
            click.echo(
                f"  v{v['version']} ({v['state']}): {v['ciphertexts']} ciphertexts, lines "
                f"{shown}{more}; lost if v{v['version']} is compromised, destroyed or trimmed"
            )
        if doc["unusable_lines"]:
            click.echo(
                "  already undecryptable (trimmed): lines "
                + ", ".join(str(n) for n in doc["unusable_lines"])
            )
        if doc["invalid_lines"]:
            click.echo(
                "  not Transit ciphertexts: lines "
                + ", ".join(str(n) for n in doc["invalid_lines"])
            )

    emit(obj, doc, text)
