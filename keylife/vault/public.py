"""Public halves on Vault: ``M/public/<ring>``, readable by a verify-only token.

Every commit of an asymmetric ring writes the ring's published document
(:mod:`keylife.published`: each version that verifies now or may later, with its state, dates,
fingerprint and SubjectPublicKeyInfo) to ``public/<ring>`` in the KV mount, after the commit
point. The verify-only policy (:func:`keylife.vault.policy.verify_only_policy`) grants read on
that one path and nothing else, so a verifier never needs the ring document or the material.

Writing: the public half of a new version comes from its material; one the previous document
already holds is carried over when its SHA-256 is the version's recorded fingerprint (the ring
document is the truth), otherwise it is computed again from the material (unsealed through
Transit). The write is a check-and-set, and a document written for a newer ring revision is
never replaced by one for an older revision (two commits of one ring may publish in either
order). A publish cut short by an outage is redone, in full, by the ring's next commit.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import CasMismatch, VaultPermissionError
from ..lifecycle import KeyVersion, Ring
from ..material import KeyMaterial
from ..published import PublishedKeys, parse_published, published_document
from ..published import spki_fingerprint as fingerprint_of
from ..specs import KeySpec
from .client import q
from .kv import KV

__all__ = ["PUBLIC_PREFIX", "PublicHalves", "public_path", "publish", "read_published"]

#: Where a ring's published document lives, under the KV mount.
PUBLIC_PREFIX = "public/"
_RETRIES = 16

log = logging.getLogger("keylife.vault.public")

ReadMaterial = Callable[[str, int, KeySpec], KeyMaterial]


def public_path(name: str) -> str:
    return f"{PUBLIC_PREFIX}{q(name)}"


def _carried(data: Mapping[str, Any] | None) -> tuple[int, dict[int, bytes]]:
    """``(revision, {version: SubjectPublicKeyInfo})`` of a previous document; a malformed one
    carries nothing over (it is rewritten)."""
    if not isinstance(data, Mapping):
        return -1, {}
    rev = data.get("rev")
    keys = data.get("keys")
    out: dict[int, bytes] = {}
    for item in keys if isinstance(keys, list) else []:
        if not isinstance(item, Mapping):
            continue
        number, der = item.get("version"), item.get("spki")
        if isinstance(number, int) and isinstance(der, str):
            try:
                out[number] = base64.b64decode(der, validate=True)
            except (binascii.Error, ValueError):
                continue
    return (rev if isinstance(rev, int) else -1), out


def _same(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return {k: v for k, v in old.items() if k != "rev"} == {
        k: v for k, v in new.items() if k != "rev"
    }


def _public_der(material: KeyMaterial) -> bytes:
    from ..keygen import load_private_key
    from ..published import spki

    return spki(load_private_key(material).public_key())


def publish(
    kv: KV,
    ring: Ring,
    materials: Mapping[int, KeyMaterial],
    read_material: ReadMaterial,
) -> bool:
    """Write ``ring``'s published document (``ring.revision`` is its committed revision).

    Returns False when there is nothing to write: a symmetric or damaged ring, a document
    already written for this revision or a newer one, or one that says the same.
    """
    if ring.spec.symmetric or ring.damage:
        return False
    try:
        return _publish(kv, ring, materials, read_material)
    except VaultPermissionError as exc:  # a policy older than publishing: the commit stands
        log.warning(
            "public keys of %s not published (%s); rewrite the operator policy "
            "(keylife vault setup)",
            ring.name,
            exc,
        )
        return False


def _publish(
    kv: KV,
    ring: Ring,
    materials: Mapping[int, KeyMaterial],
    read_material: ReadMaterial,
) -> bool:
    path = public_path(ring.name)
    what = f"publish the public keys of {ring.name}"
    for _ in range(_RETRIES):
        current = kv.read(path, what=what)
        rev, old = _carried(None if current is None else current.data)
        if rev >= ring.revision:
            return False

        def der_of(v: KeyVersion, old: dict[int, bytes] = old) -> bytes:
            new = materials.get(v.number)
            if new is not None:
                return _public_der(new)
            der = old.get(v.number)
            if der is not None and fingerprint_of(der) == v.fingerprint:
                return der
            return _public_der(read_material(ring.name, v.number, v.spec))

        doc = published_document(ring, der_of)
        if current is not None and _same(current.data, doc):
            return False  # the keys, states and dates are what is published already
        try:
            kv.cas_write(
                path,
                doc,
                cas=0 if current is None else current.version,
                what=what,
                ours=lambda d, doc=doc: d == doc,  # type: ignore[misc]
            )
            return True
        except CasMismatch:
            continue
    log.warning("public keys of %s not published: %d writers raced", ring.name, _RETRIES)
    return False


def read_published(kv: KV, name: str) -> PublishedKeys | None:
    """Ring ``name``'s published keys, or None when it has none (a symmetric ring, or one not
    committed since publishing began). A malformed document: :class:`CorruptRecordError`."""
    got = kv.read(public_path(name), what=f"read the public keys of {name}")
    if got is None:
        return None
    return parse_published(got.data, name)


class PublicHalves:
    """The part of :class:`~keylife.vault.store.VaultKeyStore` that publishes public halves
    on commit and reads them back (``load_public``: what a verify-only token may read)."""

    kv: KV

    def get_material(self, ring: str, version: int, spec: KeySpec) -> KeyMaterial:
        raise NotImplementedError  # provided by VaultKeyStore

    def publish_public(self, ring: Ring, materials: Mapping[int, KeyMaterial]) -> Ring:
        """Write ``ring``'s published document (see :func:`publish`; ``materials``: the new
        versions' material) and return ``ring``: the last step of a commit."""
        publish(self.kv, ring, materials, self.get_material)
        return ring

    def load_public(self, name: str) -> PublishedKeys | None:
        """Ring ``name``'s published public keys (see :func:`read_published`)."""
        return read_published(self.kv, name)
