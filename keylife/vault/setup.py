"""``keylife vault setup``: mounts, the Transit wrapping key, policies; and opening a store.

This module imports the store, never the reverse: :func:`open_store` is how a store is opened
with ``create=True`` (``keylife init``, :func:`keylife.store.registry.open_remote`).
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import StoreError, VaultPermissionError
from .policy import operator_policy, operator_policy_name, service_policy, service_policy_name
from .store import VaultKeyStore

__all__ = ["KV_MAX_VERSIONS", "open_store", "setup"]

KV_MAX_VERSIONS = 10


def open_store(url: str, *, create: bool = False) -> VaultKeyStore:
    """Open the Vault store at ``url``; with ``create``, set Vault up for it first (idempotent).

    Setting up needs an administrator's token (mounts, policies). A token refused that (the
    operator's) passes when the store is set up already: its wrapping key exists and is sound.
    """
    store = VaultKeyStore.from_url(url)
    if create:
        try:
            try:
                setup(store)
            except VaultPermissionError as exc:
                if not _set_up_already(store):
                    raise VaultPermissionError(
                        f"{exc}; setting up a Vault store (mounts, wrapping key, policies) "
                        "needs an administrator's token once: run `keylife vault setup` with "
                        "one, then this token can use the store",
                        path=exc.path,
                        address=exc.address,
                    ) from exc
        except BaseException:
            store.close()
            raise
    return store


def _set_up_already(store: VaultKeyStore) -> bool:
    """Whether ``vault setup`` ran for this store: its wrapping key exists, derived, not
    exportable (setup creates the mounts first, the key last but for the policies)."""
    try:
        key = store.transit.key(store.key_name)
    except VaultPermissionError:
        return False
    return key is not None and key.derived and not key.exportable and not key.allow_plaintext_backup


def _post(store: VaultKeyStore, path: str, body: dict[str, Any], what: str) -> None:
    store.client.request("POST", path, json=body, what=what)


def _enable(store: VaultKeyStore, path: str, body: dict[str, Any], what: str) -> None:
    try:
        _post(store, f"sys/mounts/{path}", body, what)
    except StoreError as exc:
        if "already in use" not in str(exc) and "existing mount" not in str(exc):
            raise


def setup(store: VaultKeyStore, *, rings: tuple[str, ...] = ()) -> dict[str, str]:
    """Enable the mounts, create the wrapping key, write policies. Idempotent.

    Returns ``{policy name: hcl}`` of the policies written.
    """
    _enable(
        store,
        store.mount,
        {"type": "kv", "options": {"version": "2"}, "description": "keylife rings"},
        f"enable the KV v2 mount {store.mount}",
    )
    _enable(store, store.transit_mount, {"type": "transit"}, "enable Transit")
    # A new kv-v2 mount is not writable at once (and later still on Raft standbys): the
    # client retries the "upgrading" answers; config is the first write.
    _post(
        store,
        f"{store.mount}/config",
        {"cas_required": True, "max_versions": KV_MAX_VERSIONS},
        "configure cas_required on the KV mount",
    )
    key = store.transit.key(store.key_name)
    if key is None:
        store.transit.create_key(store.key_name, "aes256-gcm96", derived=True)
        key = store.transit.key(store.key_name)
    if key is None or key.exportable or key.allow_plaintext_backup or not key.derived:
        raise StoreError(
            f"Transit key {store.transit_mount}/keys/{store.key_name} is exportable, allows "
            "plaintext backup or is not derived; keylife needs a non-exportable derived key "
            "(choose another key name)"
        )
    policies = {operator_policy_name(store): operator_policy(store)}
    for ring in rings:
        policies[service_policy_name(store, ring)] = service_policy(store, ring)
    for name, hcl in policies.items():
        _post(store, f"sys/policies/acl/{name}", {"policy": hcl}, f"write policy {name}")
    _wait_writable(store)
    return policies


def _wait_writable(store: VaultKeyStore) -> None:
    """Until the new mount answers reads (the client retries transient answers)."""
    end = time.monotonic() + store.client.settings.deadline
    while True:
        try:
            if store.list_ring_names():  # a store from before the marker existed
                store.mark_has_rings()
            else:  # a new store binds its blobs to its id (an old one: `keylife store rekey`)
                store.identity.create(bound=True)
            return
        except StoreError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)
