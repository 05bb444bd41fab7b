"""Vault setup for keylife: mounts, the Transit wrapping key, least-privilege policies (HCL)."""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any

from ..errors import StoreError

if TYPE_CHECKING:
    from .vault import VaultKeyStore

KV_MAX_VERSIONS = 10
TRANSIT_PREFIX = "kl-"  # keylife.store.transit_keys.KEY_PREFIX


def context_prefix(ring: str) -> bytes:
    """The Transit context of every version of ``ring`` starts with this (3-byte aligned, so its
    base64 is a fixed prefix that a policy can pin with ``allowed_parameters``)."""
    prefix = f"keylife:v1:{ring}:".encode()
    return prefix + b":" * (-len(prefix) % 3)


def context(ring: str, version: int) -> bytes:
    return context_prefix(ring) + str(version).encode()


def operator_policy_name(store: VaultKeyStore) -> str:
    return f"keylife-operator-{store.mount.replace('/', '-')}"


def service_policy_name(store: VaultKeyStore, ring: str) -> str:
    return f"keylife-{store.mount.replace('/', '-')}-ring-{ring}"


def operator_policy(store: VaultKeyStore) -> str:
    """What ``keylife rotate`` needs: the keylife KV mount, encrypt/decrypt with the key."""
    m, t, k = store.mount, store.transit_mount, store.key_name
    return f"""# keylife operator: runs `keylife rotate` and manages every ring under {m}/
path "{m}/data/*" {{
  capabilities = ["create", "read", "update"]
}}
path "{m}/metadata/*" {{
  capabilities = ["read", "list", "delete"]
}}
path "{t}/encrypt/{k}" {{
  capabilities = ["update"]
}}
path "{t}/decrypt/{k}" {{
  capabilities = ["update"]
}}
# transit-resident keys (kl-<ring>): create, rotate, raise floors, trim, rewrap; no export
path "{t}/keys/{TRANSIT_PREFIX}*" {{
  capabilities = ["create", "read", "update"]
}}
path "{t}/rewrap/{TRANSIT_PREFIX}*" {{
  capabilities = ["update"]
}}
"""


def service_policy(store: VaultKeyStore, ring: str) -> str:
    """Read-only access to one ring: its document, its material, and decryption bound to it."""
    from ..names import check_ring_name

    check_ring_name(ring)
    m, t, k = store.mount, store.transit_mount, store.key_name
    prefix = base64.b64encode(context_prefix(ring)).decode()
    return f"""# keylife service policy for ring {ring!r}: read its versions, nothing else
path "{m}/data/rings/{ring}" {{
  capabilities = ["read"]
}}
path "{m}/data/m/{ring}/*" {{
  capabilities = ["read"]
}}
path "{t}/decrypt/{k}" {{
  capabilities = ["update"]
  # the Transit context binds ciphertext to ring and version: only this ring's contexts
  allowed_parameters = {{
    "context"    = ["{prefix}*"]
    "ciphertext" = []
  }}
}}
"""


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
    key_path = f"{store.transit_mount}/keys/{store.key_name}"
    status, body, _ = store.client.request("GET", key_path, what="read the wrapping key")
    if status == 404:
        _post(
            store,
            key_path,
            {
                "type": "aes256-gcm96",
                "derived": True,
                "exportable": False,
                "allow_plaintext_backup": False,
            },
            "create the Transit wrapping key",
        )
        status, body, _ = store.client.request("GET", key_path, what="read the wrapping key")
    data = (body or {}).get("data") or {}
    if data.get("exportable") or data.get("allow_plaintext_backup") or not data.get("derived"):
        raise StoreError(
            f"Transit key {key_path} is exportable, allows plaintext backup or is not derived; "
            "keylife needs a non-exportable derived key (choose another key name)"
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
            store.list_ring_names()
            return
        except StoreError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)
