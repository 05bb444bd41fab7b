"""``keylife vault``: set up Vault / OpenBao for keylife and print least-privilege policies.

hvac and requests are imported only inside the commands (CLI start-up time is benchmarked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .context import Obj, emit, errors, fail, pass_obj

if TYPE_CHECKING:
    from keylife.store.vault import VaultKeyStore


def _open(obj: Obj) -> VaultKeyStore:
    url = obj.store
    if not url or not url.startswith(("vault://", "vaults://", "http://", "https://")):
        fail(
            obj,
            "`keylife vault` needs a Vault store: --store vaults://HOST:PORT/MOUNT "
            "(or KEYLIFE_STORE); hosts may be left out to use VAULT_ADDR",
            2,
        )
    from keylife.store.vault import VaultKeyStore

    return VaultKeyStore.from_url(url)


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
    from keylife.store.vault_policy import setup as do_setup

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
@click.argument("ring", required=False)
@click.option("--operator", is_flag=True, help="Print the operator policy instead.")
@pass_obj
def policy(obj: Obj, ring: str | None, operator: bool) -> None:
    """Print the HCL of RING's read-only service policy (or of the operator policy).

    Write it with `bao policy write NAME -` / `vault policy write NAME -`.
    """
    from keylife.store.vault_policy import (
        operator_policy,
        operator_policy_name,
        service_policy,
        service_policy_name,
    )

    if not operator and not ring:
        fail(obj, "give a RING, or --operator", 2)
    with errors(obj):
        store = _open(obj)
        try:
            if operator or ring is None:
                name, hcl = operator_policy_name(store), operator_policy(store)
            else:
                name, hcl = service_policy_name(store, ring), service_policy(store, ring)
        finally:
            store.close()
    emit(obj, {"name": name, "policy": hcl}, lambda: click.echo(hcl, nl=False))
