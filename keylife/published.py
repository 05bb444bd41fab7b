"""A ring's published public halves: the document a store keeps where a verify-only reader may
read it (on Vault, ``keylife/data/public/<ring>``; see docs/vault.md).

The document holds public data only: for each version that is, or may become, usable for
verification (``pre-active``, ``active``, ``suspended``, ``deactivated``: compromised and
destroyed versions are left out) its number, state, dates and SubjectPublicKeyInfo::

    {"v": 1, "ring": "payments-signing", "spec": "ec-p256", "purpose": "signing", "rev": 7,
     "keys": [{"kid": "payments-signing:v2", "version": 2, "state": "active",
               "created": "...", "activation": "...", "deactivation": null,
               "protect_stop": null, "process_start": "...", "fingerprint": "sha256:...",
               "spki": "<base64 DER>"}]}

A reader rebuilds from it a :class:`~keylife.lifecycle.Ring` whose versions carry those
states, dates and fingerprints (no attributes or events), so the processing window of each
version is decided by the same rules as for the full ring document. The document is outside
input: :func:`parse_published` turns anything malformed into a
:class:`~keylife.errors.CorruptRecordError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519

from .documents import Document, shorten
from .errors import KeylifeError
from .lifecycle import EPOCH, KeyVersion, Ring, State
from .publickeys import AnyPublicKey, kid
from .specs import KeyKind, KeySpec, parse_spec

__all__ = [
    "FORMAT_VERSION",
    "MAX_KEYS",
    "PUBLISHED_STATES",
    "PublishedKeys",
    "matches",
    "parse_published",
    "published_document",
    "spki",
    "spki_fingerprint",
]

FORMAT_VERSION = 1
#: Versions whose public half is published: those that verify now or may later.
PUBLISHED_STATES = frozenset({State.PRE_ACTIVE, State.ACTIVE, State.SUSPENDED, State.DEACTIVATED})
#: A published document listing more keys than this is refused (a read's size cap).
MAX_KEYS = 1000
_DATES = ("activation", "deactivation", "protect_stop", "process_start")


@dataclass(frozen=True)
class PublishedKeys:
    """What a published document says: ``ring`` (states and dates of the published versions)
    and ``keys``, version number -> public key."""

    ring: Ring
    keys: Mapping[int, AnyPublicKey]
    #: the ring revision the document was written for
    revision: int = 0


def spki(public: AnyPublicKey) -> bytes:
    """The SubjectPublicKeyInfo (DER) of a public key."""
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_fingerprint(der: bytes) -> str:
    """``sha256:`` + hex SHA-256 of a SubjectPublicKeyInfo: the fingerprint keylife records
    on an asymmetric version (:func:`keylife.keygen.fingerprint`)."""
    return "sha256:" + hashlib.sha256(der).hexdigest()


def published_document(ring: Ring, spki_of: Callable[[KeyVersion], bytes]) -> dict[str, Any]:
    """The document of ``ring``'s publishable versions; ``spki_of`` gives each one's public
    half as a SubjectPublicKeyInfo (DER, see :func:`spki`). A symmetric ring has nothing to
    publish (ValueError)."""
    if ring.spec.symmetric:
        raise ValueError(f"ring {ring.name} holds secret keys; it has nothing to publish")
    keys = []
    for v in ring.versions:
        if v.state not in PUBLISHED_STATES:
            continue
        entry: dict[str, Any] = {
            "kid": kid(ring.name, v.number),
            "version": v.number,
            "state": v.state.value,
            "created": v.created.isoformat(),
        }
        for key in _DATES:
            value = getattr(v, key)
            entry[key] = None if value is None else value.isoformat()
        der = spki_of(v)
        entry["fingerprint"] = spki_fingerprint(der)
        entry["spki"] = base64.b64encode(der).decode()
        keys.append(entry)
    return {
        "v": FORMAT_VERSION,
        "ring": ring.name,
        "spec": ring.spec.name,
        "purpose": ring.purpose,
        "rev": ring.revision,
        "keys": keys,
    }


def _public_key(doc: Document, value: str) -> AnyPublicKey:
    try:
        public = serialization.load_der_public_key(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error, TypeError):
        doc.fail("spki is not a base64 SubjectPublicKeyInfo")
    except Exception as exc:  # cryptography's UnsupportedAlgorithm and the like
        doc.fail(f"spki does not load ({type(exc).__name__})")
    return public  # type: ignore[return-value]


def _version(ring: Ring, item: object) -> tuple[KeyVersion, AnyPublicKey]:
    label = f"a published key of ring {ring.name!r}"
    number = Document(item, ring.name, None, label).number("version")
    assert number is not None
    doc = Document(item, ring.name, number, f"published key {ring.name!r} v{number}")
    state = doc.enum("state", State)
    created = doc.date("created", required=True)
    assert state is not None and created is not None
    if state not in PUBLISHED_STATES:
        doc.fail(f"state {state.value} is never published")
    version = KeyVersion(
        ring=ring.name,
        number=number,
        spec=ring.spec,
        purpose=ring.purpose,
        state=state,
        fingerprint=doc.get("fingerprint", str),
        created=created,
        activation=doc.date("activation"),
        deactivation=doc.date("deactivation"),
        protect_stop=doc.date("protect_stop"),
        process_start=doc.date("process_start"),
    )
    public = _public_key(doc, doc.get("spki", str))
    if spki_fingerprint(spki(public)) != version.fingerprint:
        doc.fail("its fingerprint is not that of its key")
    if not matches(public, ring.spec):
        doc.fail(f"its key is not a {ring.spec.name} key")
    return version, public


def matches(public: AnyPublicKey, spec: KeySpec) -> bool:
    """Whether ``public`` is a key of ``spec`` (type, curve, size)."""
    if spec.kind is KeyKind.EC:
        return isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == spec.curve
    if spec.kind is KeyKind.RSA:
        return isinstance(public, rsa.RSAPublicKey) and public.key_size == spec.key_bits
    kinds = {
        KeyKind.ED25519: ed25519.Ed25519PublicKey,
        KeyKind.ED448: ed448.Ed448PublicKey,
        KeyKind.X25519: x25519.X25519PublicKey,
    }
    expected = kinds.get(spec.kind)
    return expected is not None and isinstance(public, expected)


def parse_published(doc: object, name: str) -> PublishedKeys:
    """The published keys of ring ``name`` from its document (outside input): every problem,
    including a document naming another ring, is a :class:`CorruptRecordError`."""
    top = Document(doc, name, None, f"the published keys of ring {name!r}")
    if top.get("v", int) != FORMAT_VERSION:
        top.fail(f"unknown format {shorten(top.d.get('v'))}")
    if top.get("ring", str) != name:
        top.fail(f"it names ring {shorten(top.d.get('ring'))}")
    try:
        spec = parse_spec(top.get("spec", str))
    except KeylifeError as exc:
        top.fail(f"spec: {exc}")
    if spec.symmetric:
        top.fail(f"{spec.name} keys are secret, never published")
    purpose = top.get("purpose", str)
    revision = top.get("rev", int)
    if revision < 0:
        top.fail("rev is negative")
    items = top.get("keys", list)
    if len(items) > MAX_KEYS:
        top.fail(f"it lists {len(items)} keys (at most {MAX_KEYS})")
    base = Ring(name=name, spec=spec, purpose=purpose, created=EPOCH, revision=revision)
    versions: list[KeyVersion] = []
    keys: dict[int, AnyPublicKey] = {}
    for item in items:
        version, public = _version(base, item)
        if version.number in keys:
            top.fail(f"v{version.number} is listed twice")
        versions.append(version)
        keys[version.number] = public
    versions.sort(key=lambda v: v.number)
    ring = Ring(
        name=name,
        spec=spec,
        purpose=purpose,
        created=min((v.created for v in versions), default=EPOCH),
        versions=tuple(versions),
        next_version=max(keys, default=0) + 1,
        revision=revision,
    )
    return PublishedKeys(ring, keys, revision)
