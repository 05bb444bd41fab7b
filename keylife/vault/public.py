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

Without reading the previous document (:class:`PublishedVersions`): once a store object has
published :data:`LIST_AFTER` times, and as often as a sixteenth of the rings it has seen, it
lists every document's current KV version in one request. A commit that *began after* that
listing returned may then write its document with a check-and-set on the listed version, when
this process knows every public half it needs (new material, or keys it fingerprinted:
:func:`keylife.keygen.seen_spki`). That cannot replace a newer revision's document: a
document at the listed version was written before the listing, so for a revision committed
before this commit began, and a check-and-set that succeeds finds that same document. Any
other case, or a lost check-and-set, reads the document first as above. A rotation over
thousands of rings saves one read a ring.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import CasMismatch, VaultPermissionError
from ..keygen import seen_spki
from ..lifecycle import KeyVersion, Ring
from ..material import KeyMaterial
from ..published import PUBLISHED_STATES, PublishedKeys, parse_published, published_document
from ..published import spki_fingerprint as fingerprint_of
from ..specs import KeySpec
from .client import q
from .kv import KV

__all__ = [
    "LIST_AFTER",
    "PUBLIC_PREFIX",
    "PublicHalves",
    "PublishedVersions",
    "public_path",
    "publish",
    "read_published",
]

#: Where a ring's published document lives, under the KV mount.
PUBLIC_PREFIX = "public/"
_RETRIES = 16
#: publishes by one store object before it lists the documents' versions: at least this
#: many, and a sixteenth of the rings it has seen (a listing of N documents costs about as
#: much as reading N/16 of them, so a run rotating a few rings of many never lists)
LIST_AFTER = 16

log = logging.getLogger("keylife.vault.public")

ReadMaterial = Callable[[str, int, KeySpec], KeyMaterial]


def public_path(name: str) -> str:
    return f"{PUBLIC_PREFIX}{q(name)}"


class PublishedVersions:
    """The current KV version of every published document, from one listing, and of the
    documents this object wrote since; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._publishes = 0
        self._listing = False
        self._listed_at: float | None = None  # monotonic time the listing returned
        self._versions: dict[str, int] = {}  # 0: no document
        self._unknown: set[str] = set()  # soft-deleted: not to be created with cas=0

    def note_publish(self, kv: KV, rings: int) -> None:
        """Count a publish; list the versions once there were :data:`LIST_AFTER` and
        ``rings // 16`` (``rings``: how many rings the store object has seen)."""
        with self._lock:
            self._publishes += 1
            if self._listing or self._publishes < max(LIST_AFTER, rings // 16):
                return
            self._listing = True  # once per store object
        deleted: set[str] = set()
        try:
            listing = kv.list_versions(PUBLIC_PREFIX, what="list published keys", deleted=deleted)
        except VaultPermissionError as exc:  # an operator policy from before the listing
            log.info("published keys not listed (%s): each publish reads its document", exc)
            return
        if listing is None:  # a server without detailed-metadata (HashiCorp Vault)
            return
        with self._lock:
            self._versions = {name: v for name, (v, _c) in listing.items()}
            self._unknown = deleted
            self._listed_at = time.monotonic()

    def version(self, path_key: str, begun: float) -> int | None:
        """The version to check-and-set ``public/<path_key>`` at, for a commit that began at
        ``begun`` (monotonic); None when a read must come first."""
        with self._lock:
            if self._listed_at is None or begun <= self._listed_at or path_key in self._unknown:
                return None
            return self._versions.get(path_key, 0)

    def wrote(self, path_key: str, version: int | None) -> None:
        """Record the version this object wrote (None: forget what was known)."""
        with self._lock:
            if version is None:
                self._unknown.add(path_key)
            else:
                self._unknown.discard(path_key)
                self._versions[path_key] = version


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


def _public_der(v: KeyVersion, material: KeyMaterial) -> bytes:
    """Version ``v``'s SubjectPublicKeyInfo: as remembered when its key was fingerprinted
    (generated or unsealed in this process), else derived from ``material``."""
    from ..keygen import load_private_key
    from ..published import spki

    seen = seen_spki(v.fingerprint)
    return seen if seen is not None else spki(load_private_key(material).public_key())


def publish(
    kv: KV,
    ring: Ring,
    materials: Mapping[int, KeyMaterial],
    read_material: ReadMaterial,
    *,
    known: PublishedVersions | None = None,
    begun: float = 0.0,
    rings: int = 0,
) -> bool:
    """Write ``ring``'s published document (``ring.revision`` is its committed revision; the
    commit began at ``begun``, monotonic, and the store has seen ``rings`` rings, for
    ``known``: see the module's docstring).

    Returns False when there is nothing to write: a symmetric or damaged ring, a document
    already written for this revision or a newer one, or one that says the same.
    """
    if ring.spec.symmetric or ring.damage:
        return False
    try:
        if known is not None:
            known.note_publish(kv, rings)
            if _publish_unread(kv, ring, materials, known, begun):
                return True
        return _publish(kv, ring, materials, read_material, known)
    except VaultPermissionError as exc:  # a policy older than publishing: the commit stands
        log.warning(
            "public keys of %s not published (%s); rewrite the operator policy "
            "(keylife vault setup)",
            ring.name,
            exc,
        )
        return False


def _publish_unread(
    kv: KV,
    ring: Ring,
    materials: Mapping[int, KeyMaterial],
    known: PublishedVersions,
    begun: float,
) -> bool:
    """Write the document with a check-and-set on the listed version, without reading it;
    False when that cannot be done safely or lost its check-and-set (read first, then)."""
    key = q(ring.name)
    cas = known.version(key, begun)
    if cas is None:
        return False
    halves: dict[int, bytes] = {}
    for v in ring.versions:
        new = materials.get(v.number)
        der = seen_spki(v.fingerprint) if new is None else _public_der(v, new)
        if der is None:
            if v.state in PUBLISHED_STATES:
                return False  # a public half this process has not seen: read the document
            continue
        halves[v.number] = der
    doc = published_document(ring, lambda v: halves[v.number])
    try:
        version = kv.cas_write(
            public_path(ring.name),
            doc,
            cas=cas,
            what=f"publish the public keys of {ring.name}",
            ours=lambda d: d == doc,
        )
    except CasMismatch:
        known.wrote(key, None)
        return False
    known.wrote(key, version)
    return True


def _publish(
    kv: KV,
    ring: Ring,
    materials: Mapping[int, KeyMaterial],
    read_material: ReadMaterial,
    known: PublishedVersions | None = None,
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
                return _public_der(v, new)
            der = seen_spki(v.fingerprint) or old.get(v.number)
            if der is not None and fingerprint_of(der) == v.fingerprint:
                return der
            return _public_der(v, read_material(ring.name, v.number, v.spec))

        doc = published_document(ring, der_of)
        if current is not None and _same(current.data, doc):
            return False  # the keys, states and dates are what is published already
        try:
            version = kv.cas_write(
                path,
                doc,
                cas=0 if current is None else current.version,
                what=what,
                ours=lambda d, doc=doc: d == doc,  # type: ignore[misc]
            )
        except CasMismatch:
            continue
        if known is not None:
            known.wrote(q(ring.name), version)
        return True
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
    #: the published documents' versions this store object knows (set by the store)
    published: PublishedVersions

    def get_material(self, ring: str, version: int, spec: KeySpec) -> KeyMaterial:
        raise NotImplementedError  # provided by VaultKeyStore

    def rings_seen(self) -> int:
        raise NotImplementedError  # provided by VaultKeyStore

    def publish_public(
        self, ring: Ring, materials: Mapping[int, KeyMaterial], *, begun: float = 0.0
    ) -> Ring:
        """Write ``ring``'s published document (see :func:`publish`; ``materials``: the new
        versions' material; ``begun``: when the commit began, monotonic) and return ``ring``:
        the last step of a commit."""
        known, rings = self.published, self.rings_seen()
        publish(self.kv, ring, materials, self.get_material, known=known, begun=begun, rings=rings)
        return ring

    def load_public(self, name: str) -> PublishedKeys | None:
        """Ring ``name``'s published public keys (see :func:`read_published`)."""
        return read_published(self.kv, name)
