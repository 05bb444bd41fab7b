"""Least-privilege Vault policies (HCL) for keylife: the operator's and one per ring's service."""

from __future__ import annotations

import base64

from ..names import check_ring_name
from .store import VaultKeyStore
from .transit import context_prefix
from .transit_doc import KEY_PREFIX

__all__ = ["operator_policy", "operator_policy_name", "service_policy", "service_policy_name"]


def operator_policy_name(store: VaultKeyStore) -> str:
    return f"keylife-operator-{store.mount.replace('/', '-')}"


def service_policy_name(store: VaultKeyStore, ring: str) -> str:
    return f"keylife-{store.mount.replace('/', '-')}-ring-{check_ring_name(ring)}"


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
# one listing with every ring's current version (the index is checked against it)
path "{m}/detailed-metadata/*" {{
  capabilities = ["list"]
}}
path "{t}/encrypt/{k}" {{
  capabilities = ["update"]
}}
path "{t}/decrypt/{k}" {{
  capabilities = ["update"]
}}
# read the wrapping key's settings (keylife refuses it exportable or imported)
path "{t}/keys/{k}" {{
  capabilities = ["read"]
}}
# transit-resident keys (kl-<ring>): create (non-exportable, no plaintext backup), read,
# rotate, raise floors (min_decryption_version, min_encryption_version), trim, rewrap.
# No other parameter passes: not exportable, allow_plaintext_backup, deletion_allowed,
# auto_rotate_period, nor an import's ciphertext; no delete, export, backup or restore.
path "{t}/keys/{KEY_PREFIX}*" {{
  capabilities = ["create", "read", "update"]
  allowed_parameters = {{
    "type"                   = []
    "exportable"             = [false]
    "allow_plaintext_backup" = [false]
    "min_decryption_version" = []
    "min_encryption_version" = []
    "min_available_version"  = []
  }}
}}
path "{t}/rewrap/{KEY_PREFIX}*" {{
  capabilities = ["update"]
}}
"""


def service_policy(store: VaultKeyStore, ring: str) -> str:
    """Read-only access to one ring: its document, its material, and decryption bound to it."""
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
# add to this ring's encryption counts (keylife.counters; keylife.vault.counts)
path "{m}/data/cnt/{ring}" {{
  capabilities = ["create", "read", "update"]
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
