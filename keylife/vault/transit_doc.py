"""Transit-resident rings as lifecycle rings: the ``tk/NAME`` document <-> :class:`Ring` (pure).

The document (its shape is fixed; older keylife versions read it)::

    {"name": NAME, "key": "kl-NAME", "type": "<Transit key type>", ["purpose": P,]
     "versions": [{"number", "state", "created", "deactivated", "compromised", "destroyed",
                   "reason"}, ...]}

Decoded, it is a :class:`~keylife.lifecycle.Ring` of its purpose (``data-encryption`` unless
the document names another, :func:`purpose_of`) whose spec
comes from the Transit key type, with the attribute :data:`TRANSIT_KEY` (the Transit key's
name) marking it transit-resident. Each version is a :class:`KeyVersion` with fingerprint
``transit:NAME:vN``; ``state`` is a lifecycle :class:`State`; an active version's
``deactivation`` is its scheduled end (creation + the purpose's cryptoperiod), a retired
version's is when it stopped; ``reason`` is the version's ``revocation_message``. Events are
not stored (the audit log keeps them); every change made through
:mod:`keylife.vault.transit_rings` goes through :func:`keylife.lifecycle.transition`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..audit import AuditEntry
from ..destruction import SCHEDULE
from ..errors import IntegrityError, NotFoundError, UnknownSpecError
from ..lifecycle import KeyVersion, RevocationReason, Ring, State, new_version, supersede_older
from ..names import is_ring_name
from ..policy import Purpose
from ..residence import TRANSIT_KEY
from ..specs import KeySpec, parse_spec
from .transit import TransitKeyInfo

__all__ = [
    "KEY_PREFIX",
    "KEY_TYPES",
    "LABEL_PREFIX",
    "TRANSIT_KEY",
    "TransitKeyView",
    "adopt",
    "audit_entries",
    "decode",
    "encode",
    "floors",
    "label",
    "purpose_of",
    "spec_for",
]

KEY_PREFIX = "kl-"
#: Audit records and run reports name transit-resident rings ``transit:NAME``.
LABEL_PREFIX = "transit:"
PURPOSE = Purpose.DATA_ENCRYPTION.value
#: Transit key types keylife manages, and their keylife spec.
KEY_TYPES: dict[str, str] = {
    "aes128-gcm96": "aes-128",
    "aes256-gcm96": "aes-256",
    "chacha20-poly1305": "chacha20",
    "ecdsa-p256": "ec-p256",
    "ecdsa-p384": "ec-p384",
    "ecdsa-p521": "ec-p521",
    "ed25519": "ed25519",
    "rsa-2048": "rsa-2048",
    "rsa-3072": "rsa-3072",
    "rsa-4096": "rsa-4096",
    "hmac": "hmac-sha256",
}
#: States whose versions Transit no longer decrypts (below min_decryption_version).
GONE = frozenset({State.COMPROMISED, State.DESTROYED, State.DESTROYED_COMPROMISED})
#: States that still protect (or may): their ``deactivation`` is a schedule, not a fact.
LIVE = frozenset({State.PRE_ACTIVE, State.ACTIVE, State.SUSPENDED})
_FIELDS = frozenset(
    {"number", "state", "created", "deactivated", "compromised", "destroyed", "reason", SCHEDULE}
)


def label(name: str) -> str:
    return LABEL_PREFIX + name


def spec_for(key_type: str) -> KeySpec:
    try:
        return parse_spec(KEY_TYPES[key_type])
    except KeyError:
        raise UnknownSpecError(
            f"unknown Transit key type {key_type!r}; keylife manages: {', '.join(KEY_TYPES)}"
        ) from None


def _ts(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(d: Mapping[str, Any], key: str) -> dt.datetime | None:
    raw = d.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValueError(f"{key} is not a timestamp")
    value = dt.datetime.fromisoformat(raw)
    if value.tzinfo is None:
        raise ValueError(f"{key} has no time zone")
    return value


def purpose_of(doc: Mapping[str, Any]) -> str:
    """The purpose a ``tk/NAME`` document records (``data-encryption`` when it names none, as
    documents written before transit keys had a purpose); :class:`IntegrityError` if unknown."""
    purpose = doc.get("purpose", PURPOSE) if isinstance(doc, Mapping) else PURPOSE
    if not isinstance(purpose, str) or purpose not in {p.value for p in Purpose}:
        raise IntegrityError(f"transit ring document names an unknown purpose {purpose!r}")
    return purpose


def _version(
    name: str, spec: KeySpec, d: Any, cryptoperiod: dt.timedelta, purpose: str = PURPOSE
) -> KeyVersion:
    if not isinstance(d, dict) or not set(d) <= _FIELDS or not {"number", "state"} <= set(d):
        raise ValueError("a version is not an object with the known fields")
    number, reason = d["number"], d.get("reason") or ""
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise ValueError("a version number is not a positive integer")
    if not isinstance(reason, str):
        raise ValueError(f"v{number}: reason is not text")
    state = State(d["state"])
    created = _time(d, "created")
    if created is None:
        raise ValueError(f"v{number} has no creation time")
    ended = _time(d, "deactivated")
    schedule = d.get(SCHEDULE)  # an operator's destruction, scheduled (keylife.destruction)
    if schedule is not None and not isinstance(schedule, str):
        raise ValueError(f"v{number}: {SCHEDULE} is not text")
    return KeyVersion(
        ring=name,
        number=number,
        spec=spec,
        purpose=purpose,
        state=state,
        fingerprint=f"transit:{name}:v{number}",
        created=created,
        activation=created,
        deactivation=created + cryptoperiod if state in LIVE else ended,
        compromise_date=_time(d, "compromised"),
        destroy_date=_time(d, "destroyed"),
        revocation_reason=RevocationReason.KEY_COMPROMISE
        if state in (State.COMPROMISED, State.DESTROYED_COMPROMISED)
        else None,
        revocation_message=reason,
        attributes={} if schedule is None else {SCHEDULE: schedule},
    )


def decode(doc: Mapping[str, Any], revision: int, *, cryptoperiod: dt.timedelta) -> Ring:
    """The ring a ``tk/NAME`` document describes; :class:`IntegrityError` when malformed."""
    name = doc.get("name") if isinstance(doc, Mapping) else None
    try:
        if not isinstance(name, str) or not is_ring_name(name):
            raise ValueError("no valid ring name")
        if doc.get("key") != KEY_PREFIX + name:
            raise ValueError(f"its Transit key is not {KEY_PREFIX}{name}")
        key_type = doc.get("type")
        spec = spec_for(key_type if isinstance(key_type, str) else "")
        raw = doc.get("versions")
        if not isinstance(raw, list) or not raw:
            raise ValueError("no versions")
        purpose = purpose_of(doc)
        versions = tuple(_version(name, spec, v, cryptoperiod, purpose) for v in raw)
        numbers = [v.number for v in versions]
        if numbers != sorted(set(numbers)):
            raise ValueError(f"version numbers are not increasing: {numbers}")
    except (ValueError, TypeError, UnknownSpecError) as exc:
        raise IntegrityError(f"transit ring {name!r} in Vault is malformed: {exc}") from exc
    return Ring(
        name=name,
        spec=spec,
        purpose=purpose,
        created=min(v.created for v in versions),
        versions=versions,
        next_version=numbers[-1] + 1,
        attributes={TRANSIT_KEY: KEY_PREFIX + name},
        revision=revision,
    )


def encode(ring: Ring, key_type: str) -> dict[str, Any]:
    """The ``tk/NAME`` document of ``ring`` (the inverse of :func:`decode`); ``purpose`` is
    written only when it is not ``data-encryption``, so older documents stay as they were."""
    return {
        **({} if ring.purpose == PURPOSE else {"purpose": ring.purpose}),
        "name": ring.name,
        "key": KEY_PREFIX + ring.name,
        "type": key_type,
        "versions": [
            {
                "number": v.number,
                "state": v.state.value,
                "created": _ts(v.created),
                "deactivated": None if v.state in LIVE else _ts(v.deactivation),
                "compromised": _ts(v.compromise_date),
                "destroyed": _ts(v.destroy_date),
                "reason": v.revocation_message,
                **({SCHEDULE: v.attributes[SCHEDULE]} if SCHEDULE in v.attributes else {}),
            }
            for v in ring.versions
        ],
    }


def floors(ring: Ring) -> tuple[int, int]:
    """``(min_decryption_version, min_encryption_version)`` the states imply: Transit decrypts
    nothing below the newest gone version, and encrypts with nothing below the oldest active
    one (Transit's limits are floors, not sets)."""
    latest = max((v.number for v in ring.versions), default=1)
    dec = max((v.number for v in ring.versions if v.state in GONE), default=0) + 1
    enc = min((v.number for v in ring.versions if v.state is State.ACTIVE), default=latest)
    return dec, max(enc, dec)


def adopt(
    ring: Ring,
    info: TransitKeyInfo,
    *,
    now: dt.datetime,
    fresh_after: int,
    actor: str,
    cryptoperiod: dt.timedelta,
    reason: str,
) -> Ring:
    """Add the versions Transit has and ``ring`` lacks (new in Transit: it encrypts with them),
    each active and superseding the older ones. Versions above ``fresh_after`` were made just
    now (dated ``now``, with ``reason``); others are a rotation whose record was cut short
    (dated by Transit). Older active versions are superseded by the newest active one, as of
    its creation (records written before keylife kept a single active version)."""
    for number in range(ring.next_version, info.latest_version + 1):
        fresh = number > fresh_after
        at = now if fresh else (info.created.get(number) or now)
        primary = ring.primary(at)
        ring, version = new_version(
            ring,
            fingerprint=f"transit:{ring.name}:v{number}",
            now=at,
            actor=actor,
            activation=at,
            deactivation=at + cryptoperiod,
            replaces=primary.number if primary else None,
            reason=reason if fresh else "adopted from Transit (its record was cut short)",
        )
        ring = supersede_older(ring, version.number, now=at, actor=actor)
    active = [v for v in ring.versions if v.state is State.ACTIVE]
    if len(active) > 1:
        # recorded before keylife kept one version active (older keylife left superseded
        # versions active): the newest took over when it was created
        newest = active[-1]
        ring = supersede_older(ring, newest.number, now=newest.created, actor=actor)
    return ring


def audit_entries(before: Ring, after: Ring) -> list[AuditEntry]:
    """One entry per lifecycle event ``after`` has and ``before`` lacks, newest version first
    (a new version's ``create`` is recorded as ``create`` for v1, ``rotate`` after it; its
    activation at creation is part of that record)."""
    entries: list[AuditEntry] = []
    for v in sorted(after.versions, key=lambda v: -v.number):
        old = before.get(v.number)
        new = v.events[len(old.events) if old is not None else 0 :]
        for i, e in enumerate(new):
            if e.action == "activate" and i > 0 and new[i - 1].action == "create":
                continue
            action = e.action
            if action == "create":
                action = "create" if v.number == 1 else "rotate"
            entries.append(
                AuditEntry(e.at, e.actor, action, label(after.name), v.number, reason=e.reason)
            )
    return entries


@dataclass(frozen=True)
class TransitKeyView:
    """A transit-resident ring with what Transit says about its key (``vault transit show``)."""

    ring: Ring
    key_type: str
    transit: Mapping[str, int]

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.ring.name

    @property
    def latest(self) -> int:
        return max(v.number for v in self.ring.versions)

    def version(self, number: int) -> KeyVersion:
        found = self.ring.get(number)
        if found is None:
            raise NotFoundError(f"transit ring {self.ring.name} has no version {number}")
        return found

    def to_dict(self) -> dict[str, Any]:
        dec, enc = floors(self.ring)
        return {
            "name": self.ring.name,
            "key": self.key,
            "key_type": self.key_type,
            "purpose": self.ring.purpose,
            "revision": self.ring.revision,
            "latest_version": self.latest,
            "min_decryption_version": dec,
            "min_encryption_version": enc,
            "transit": dict(self.transit),
            "versions": encode(self.ring, self.key_type)["versions"],
        }
