"""Least-privilege Vault policies (HCL) for keylife: the operator's and one per ring's service."""

from __future__ import annotations

import base64

from ..errors import KeyUsageError, NotFoundError
from ..names import check_ring_name
from ..specs import KeySpec, parse_spec
from .client import q
from .public import public_path
from .store import VaultKeyStore
from .transit import context_prefix
from .transit_doc import KEY_PREFIX, KEY_TYPES
from .transit_rings import DOC_PREFIX

__all__ = [
    "operator_policy",
    "operator_policy_name",
    "service_policy",
    "service_policy_name",
    "verify_only_policy",
    "verify_only_policy_name",
]


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
# `keylife key delete`: soft delete of a ring document's latest version (data path only;
# its KV history and metadata stay)
path "{m}/data/rings/*" {{
  capabilities = ["create", "read", "update", "delete"]
}}
# read and list metadata; no delete: the ring documents' history, the audit batches and
# audit-head, the leases and the marks cannot be wiped with this token
path "{m}/metadata/*" {{
  capabilities = ["read", "list"]
}}
# erase material: a destroyed version's blob, an unreferenced one (`keylife vault gc`)
path "{m}/metadata/m/*" {{
  capabilities = ["read", "list", "delete"]
}}
# one listing with every ring's current version (the index is checked against it), and one
# with every published document's (a rotation writes them without reading them first)
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


def verify_only_policy_name(store: VaultKeyStore, ring: str) -> str:
    return f"keylife-{store.mount.replace('/', '-')}-verify-{check_ring_name(ring)}"


def _ring_spec(store: VaultKeyStore, ring: str) -> tuple[KeySpec, bool]:
    """The spec of ring ``ring`` and whether it is transit-resident (read from Vault)."""
    loaded = store.load_ring(ring)
    if loaded is not None:
        return loaded.spec, False
    if store.kv.read(f"{DOC_PREFIX}{q(ring)}", what=f"read transit ring {ring}") is not None:
        info = store.transit.key(KEY_PREFIX + ring)
        spec = KEY_TYPES.get(info.type) if info is not None else None
        if spec is not None:
            return parse_spec(spec), True
    raise NotFoundError(f"no ring named {ring!r} (nor a transit-resident ring of that name)")


def verify_only_policy(store: VaultKeyStore, ring: str) -> str:
    """Read access to ring ``ring``'s public keys and nothing secret: its published document
    ``public/<ring>`` (written on every commit, :mod:`keylife.vault.public`), or for a
    transit-resident ring Transit's public-key export of ``kl-<ring>`` (which returns only the
    public keys). A symmetric ring has nothing public: :class:`KeyUsageError`."""
    check_ring_name(ring)
    spec, transit = _ring_spec(store, ring)
    if spec.symmetric:
        raise KeyUsageError(
            f"ring {ring} holds secret keys ({spec.name}): it has no public half, so there is "
            f"nothing a verify-only token could read; a service that checks its MACs or "
            f"decrypts needs the service policy (`keylife vault policy {ring}`)",
            ring=ring,
            operation="verify-only policy",
        )
    m, t = store.mount, store.transit_mount
    head = f"# keylife verify-only policy for ring {ring!r}: its public keys, nothing secret\n"
    if transit:
        return (
            head
            + f"""# Transit's public-key export: public keys only, never a private one
path "{t}/export/public-key/{KEY_PREFIX}{ring}" {{
  capabilities = ["read"]
}}
path "{t}/export/public-key/{KEY_PREFIX}{ring}/*" {{
  capabilities = ["read"]
}}
"""
        )
    return (
        head
        + f"""# the published public keys (states, dates, SPKI), rewritten by every commit
path "{m}/data/{public_path(ring)}" {{
  capabilities = ["read"]
}}
"""
    )
