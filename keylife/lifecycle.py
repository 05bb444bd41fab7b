"""The key lifecycle (NIST SP 800-57 Part 1 §7, KMIP 2.1): states, transitions, versions, rings.

Everything here is pure: functions take the current ring and a time, and return a new ring.
Nothing here reads a clock, a file or a network.

::

    pre-active --activate--> active --deactivate--> deactivated --destroy--> destroyed
        |                     |  ^                      ^
        |               suspend  resume                 |
        |                     v  |                      |
        |                   suspended -----deactivate---+
        +--destroy--> destroyed
        +--revoke(compromise)--> compromised --destroy--> destroyed-compromised
            (compromise from pre-active, active, suspended, deactivated)
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .documents import Document, shorten
from .errors import CorruptRecordError, InvalidTransitionError, KeylifeError, LifecycleError
from .specs import KeySpec, parse_spec


class State(enum.Enum):
    PRE_ACTIVE = "pre-active"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"
    COMPROMISED = "compromised"
    DESTROYED = "destroyed"
    DESTROYED_COMPROMISED = "destroyed-compromised"


class Action(enum.Enum):
    ACTIVATE = "activate"
    SUSPEND = "suspend"
    RESUME = "resume"
    DEACTIVATE = "deactivate"
    COMPROMISE = "compromise"
    DESTROY = "destroy"


#: The only transitions that exist.
TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.PRE_ACTIVE, Action.ACTIVATE): State.ACTIVE,
    (State.PRE_ACTIVE, Action.DESTROY): State.DESTROYED,
    (State.PRE_ACTIVE, Action.COMPROMISE): State.COMPROMISED,
    (State.ACTIVE, Action.SUSPEND): State.SUSPENDED,
    (State.ACTIVE, Action.DEACTIVATE): State.DEACTIVATED,
    (State.ACTIVE, Action.COMPROMISE): State.COMPROMISED,
    (State.SUSPENDED, Action.RESUME): State.ACTIVE,
    (State.SUSPENDED, Action.DEACTIVATE): State.DEACTIVATED,
    (State.SUSPENDED, Action.COMPROMISE): State.COMPROMISED,
    (State.DEACTIVATED, Action.DESTROY): State.DESTROYED,
    (State.DEACTIVATED, Action.COMPROMISE): State.COMPROMISED,
    (State.COMPROMISED, Action.DESTROY): State.DESTROYED_COMPROMISED,
}

#: States whose versions still hold material.
MATERIAL_STATES = frozenset(
    {State.PRE_ACTIVE, State.ACTIVE, State.SUSPENDED, State.DEACTIVATED, State.COMPROMISED}
)


def allowed_actions(state: State) -> list[Action]:
    return [a for (s, a) in TRANSITIONS if s is state]


class RevocationReason(enum.Enum):
    """KMIP 2.1 revocation reason codes / RFC 5280 CRLReason."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "key-compromise"
    CA_COMPROMISE = "ca-compromise"
    AFFILIATION_CHANGED = "affiliation-changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation-of-operation"
    PRIVILEGE_WITHDRAWN = "privilege-withdrawn"

    @property
    def compromise(self) -> bool:
        return self in (RevocationReason.KEY_COMPROMISE, RevocationReason.CA_COMPROMISE)

    @property
    def rfc5280_code(self) -> int:
        return {
            "unspecified": 0,
            "key-compromise": 1,
            "ca-compromise": 2,
            "affiliation-changed": 3,
            "superseded": 4,
            "cessation-of-operation": 5,
            "privilege-withdrawn": 9,
        }[self.value]

    @classmethod
    def parse(cls, value: str) -> RevocationReason:
        try:
            return cls(value)
        except ValueError:
            raise LifecycleError(
                f"unknown revocation reason {value!r}; allowed reasons: "
                f"{', '.join(r.value for r in cls)}"
            ) from None


@dataclass(frozen=True)
class Event:
    """One state change of a version, as kept in its history."""

    at: dt.datetime
    action: str
    from_state: str | None
    to_state: str
    actor: str
    reason: str = ""


@dataclass(frozen=True)
class KeyVersion:
    """One version of a ring: metadata only, never material."""

    ring: str
    number: int
    spec: KeySpec
    purpose: str
    state: State
    fingerprint: str
    created: dt.datetime
    activation: dt.datetime | None = None
    deactivation: dt.datetime | None = None
    protect_stop: dt.datetime | None = None
    process_start: dt.datetime | None = None
    compromise_date: dt.datetime | None = None
    compromise_occurred: dt.datetime | None = None
    destroy_date: dt.datetime | None = None
    revocation_reason: RevocationReason | None = None
    revocation_message: str = ""
    replaces: int | None = None
    replaced_by: int | None = None
    events: tuple[Event, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def has_material(self) -> bool:
        return self.state in MATERIAL_STATES

    def protects_at(self, now: dt.datetime) -> bool:
        """May apply protection (encrypt, sign) at ``now``."""
        return (
            self.state is State.ACTIVE
            and (self.activation is None or self.activation <= now)
            and (self.deactivation is None or now < self.deactivation)
            and (self.protect_stop is None or now < self.protect_stop)
        )

    def processes_at(self, now: dt.datetime, grace: dt.timedelta) -> bool:
        """May process (decrypt, verify) at ``now``, given the purpose's grace period."""
        if self.process_start is not None and now < self.process_start:
            return False
        if self.state is State.ACTIVE:
            return True
        if self.state is State.DEACTIVATED:
            end = self.deactivation
            return end is None or now < end + grace
        return False


@dataclass(frozen=True)
class Ring:
    """A named series of key versions sharing a spec and purpose."""

    name: str
    spec: KeySpec
    purpose: str
    created: dt.datetime
    versions: tuple[KeyVersion, ...] = ()
    next_version: int = 1
    attributes: Mapping[str, str] = field(default_factory=dict)
    revision: int = 0
    #: Why the stored document could not be decoded (see :func:`decode_ring`); empty when sound.
    damage: str = ""

    def get(self, number: int) -> KeyVersion | None:
        for v in self.versions:
            if v.number == number:
                return v
        return None

    def primary(self, now: dt.datetime) -> KeyVersion | None:
        """The one version that applies protection at ``now``: the newest that may."""
        best: KeyVersion | None = None
        for v in self.versions:
            if v.protects_at(now) and (best is None or v.number > best.number):
                best = v
        return best

    def replace_version(self, version: KeyVersion) -> Ring:
        return replace(
            self,
            versions=tuple(version if v.number == version.number else v for v in self.versions),
        )


def transition(
    version: KeyVersion,
    action: Action,
    *,
    at: dt.datetime,
    actor: str,
    reason: str = "",
    **changes: Any,
) -> KeyVersion:
    """Apply ``action`` to ``version``, or raise :class:`InvalidTransitionError`."""
    target = TRANSITIONS.get((version.state, action))
    if target is None:
        allowed = ", ".join(a.value for a in allowed_actions(version.state)) or "none"
        raise InvalidTransitionError(
            f"{version.ring} v{version.number} is {version.state.value}; cannot {action.value}. "
            f"Allowed from {version.state.value}: {allowed}",
            ring=version.ring,
            version=version.number,
            from_state=version.state.value,
            action=action.value,
        )
    event = Event(at, action.value, version.state.value, target.value, actor, reason)
    return replace(version, state=target, events=(*version.events, event), **changes)


def new_version(
    ring: Ring,
    *,
    fingerprint: str,
    now: dt.datetime,
    actor: str,
    activation: dt.datetime | None,
    deactivation: dt.datetime | None,
    protect_stop: dt.datetime | None = None,
    process_start: dt.datetime | None = None,
    spec: KeySpec | None = None,
    replaces: int | None = None,
    attributes: Mapping[str, str] | None = None,
    reason: str = "created",
) -> tuple[Ring, KeyVersion]:
    """Add a pre-active version to ``ring``; activate it at once if its activation has come."""
    if activation is not None and deactivation is not None and deactivation <= activation:
        raise LifecycleError(
            f"deactivation ({deactivation.isoformat()}) must be after activation "
            f"({activation.isoformat()})"
        )
    if protect_stop is not None and (
        (activation is not None and protect_stop <= activation)
        or (deactivation is not None and protect_stop > deactivation)
    ):
        raise LifecycleError(
            "protect-stop must fall after activation and no later than deactivation"
        )
    number = ring.next_version
    created = Event(now, "create", None, State.PRE_ACTIVE.value, actor, reason)
    version = KeyVersion(
        ring=ring.name,
        number=number,
        spec=spec or ring.spec,
        purpose=ring.purpose,
        state=State.PRE_ACTIVE,
        fingerprint=fingerprint,
        created=now,
        activation=activation,
        deactivation=deactivation,
        protect_stop=protect_stop,
        process_start=process_start,
        replaces=replaces,
        events=(created,),
        attributes=dict(attributes or {}),
    )
    if activation is not None and activation <= now:
        version = transition(version, Action.ACTIVATE, at=now, actor=actor, reason=reason)
    versions = list(ring.versions)
    if replaces is not None:
        versions = [replace(v, replaced_by=number) if v.number == replaces else v for v in versions]
    versions.append(version)
    return replace(ring, versions=tuple(versions), next_version=number + 1), version


def supersede_older(ring: Ring, newest: int, *, now: dt.datetime, actor: str) -> Ring:
    """Deactivate every active or suspended version older than ``newest`` (it took over)."""
    for v in ring.versions:
        if v.number < newest and v.state in (State.ACTIVE, State.SUSPENDED):
            ring = ring.replace_version(
                transition(
                    v,
                    Action.DEACTIVATE,
                    at=now,
                    actor=actor,
                    reason=f"superseded by v{newest}",
                    deactivation=min(now, v.deactivation or now),
                    replaced_by=v.replaced_by or newest,
                )
            )
    return ring


# ---- serialisation (used by every store backend) -------------------------------------------
# Stored documents are outside input: every field is checked (keylife.documents), and any
# problem is a CorruptRecordError naming the ring and version.

_VERSION_DATES = (
    "activation",
    "deactivation",
    "protect_stop",
    "process_start",
    "compromise_date",
    "compromise_occurred",
    "destroy_date",
)
#: The spec a damaged ring carries in place of its unreadable one (it is never used).
PLACEHOLDER_SPEC = "aes-256"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _ts(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _spec(doc: Document) -> KeySpec:
    name = doc.get("spec", str)
    try:
        return parse_spec(name)
    except KeylifeError as exc:
        doc.fail(f"spec {shorten(name)}: {exc}")


def version_to_dict(v: KeyVersion) -> dict[str, Any]:
    return {
        "number": v.number,
        "spec": v.spec.name,
        "purpose": v.purpose,
        "state": v.state.value,
        "fingerprint": v.fingerprint,
        "created": _ts(v.created),
        **{key: _ts(getattr(v, key)) for key in _VERSION_DATES},
        "revocation_reason": None if v.revocation_reason is None else v.revocation_reason.value,
        "revocation_message": v.revocation_message,
        "replaces": v.replaces,
        "replaced_by": v.replaced_by,
        "events": [
            {
                "at": e.at.isoformat(),
                "action": e.action,
                "from": e.from_state,
                "to": e.to_state,
                "actor": e.actor,
                "reason": e.reason,
            }
            for e in v.events
        ],
        "attributes": dict(v.attributes),
    }


def _event(e: object, ring: str, version: int) -> Event:
    doc = Document(e, ring, version, f"ring {ring!r} v{version} event")
    at = doc.date("at", required=True)
    assert at is not None
    return Event(
        at,
        doc.get("action", str),
        doc.get("from", str, required=False),
        doc.get("to", str),
        doc.get("actor", str),
        doc.get("reason", str, required=False) or "",
    )


def version_from_dict(ring: str, d: Mapping[str, Any]) -> KeyVersion:
    """Decode a stored version; a malformed one raises :class:`CorruptRecordError`."""
    number = Document(d, ring, None, f"a version of ring {ring!r}").number("number")
    assert number is not None
    doc = Document(d, ring, number, f"ring {ring!r} v{number}")
    created = doc.date("created", required=True)
    state = doc.enum("state", State)
    events = doc.get("events", (list, tuple), required=False) or ()
    assert created is not None and state is not None
    return KeyVersion(
        ring=ring,
        number=number,
        spec=_spec(doc),
        purpose=doc.get("purpose", str),
        state=state,
        fingerprint=doc.get("fingerprint", str),
        created=created,
        **{key: doc.date(key) for key in _VERSION_DATES},
        revocation_reason=doc.enum("revocation_reason", RevocationReason, required=False),
        revocation_message=doc.get("revocation_message", str, required=False) or "",
        replaces=doc.number("replaces", required=False),
        replaced_by=doc.number("replaced_by", required=False),
        events=tuple(_event(e, ring, number) for e in events),
        attributes=doc.strings("attributes"),
    )


def ring_to_dict(r: Ring) -> dict[str, Any]:
    return {
        "name": r.name,
        "spec": r.spec.name,
        "purpose": r.purpose,
        "created": r.created.isoformat(),
        "next_version": r.next_version,
        "attributes": dict(r.attributes),
        "versions": [version_to_dict(v) for v in r.versions],
    }


def ring_from_dict(d: Mapping[str, Any], revision: int) -> Ring:
    """Decode a stored ring; a malformed one raises :class:`CorruptRecordError`."""
    name = d.get("name") if isinstance(d, Mapping) else None
    label = name if isinstance(name, str) else "?"
    doc = Document(d, label, None, f"ring {shorten(label)}")
    name = doc.get("name", str)
    created = doc.date("created", required=True)
    items = doc.get("versions", (list, tuple), required=False) or ()
    assert created is not None
    ring = Ring(
        name=name,
        spec=_spec(doc),
        purpose=doc.get("purpose", str),
        created=created,
        versions=tuple(version_from_dict(name, v) for v in items),
        next_version=doc.number("next_version") or 1,
        attributes=doc.strings("attributes"),
        revision=revision,
    )
    problems = check_invariants(ring)
    if problems:
        doc.fail(problems[0].removeprefix(f"{name}: "))
    return ring


def ring_from_stored(doc: object, revision: int, name: str) -> Ring:
    """The ring stored under ``name`` (``doc``: the mapping or its JSON text).

    Raises :class:`CorruptRecordError` naming the ring (and version) for anything malformed,
    including a document that names another ring.
    """
    try:
        if isinstance(doc, str | bytes):
            doc = json.loads(doc)
    except (ValueError, RecursionError) as exc:  # JSON that does not parse, or nests too deep
        raise CorruptRecordError(
            f"ring {name!r} is damaged: not valid JSON ({type(exc).__name__})", ring=name
        ) from None
    if not isinstance(doc, Mapping):
        raise CorruptRecordError(f"ring {name!r} is damaged: not a JSON object", ring=name)
    ring = ring_from_dict(doc, revision)
    if ring.name != name:
        raise CorruptRecordError(
            f"ring {name!r} is damaged: its document names ring {shorten(ring.name)}", ring=name
        )
    return ring


def decode_ring(doc: object, revision: int, name: str) -> Ring:
    """The ring stored under ``name``, as :func:`ring_from_stored`, but never raises.

    A document that does not decode gives a ring with no versions whose ``damage`` says why,
    so one bad row fails that ring only (listings show it, the planner gives it no steps).
    """
    try:
        return ring_from_stored(doc, revision, name)
    except CorruptRecordError as exc:
        damage = str(exc)
    return Ring(
        name=name,
        spec=parse_spec(PLACEHOLDER_SPEC),
        purpose="",
        created=EPOCH,
        revision=revision,
        damage=damage,
    )


def check_invariants(ring: Ring, now: dt.datetime | None = None) -> list[str]:
    """Problems with ``ring`` (empty when sound). Used by tests and ``audit verify``."""
    problems: list[str] = []
    numbers = [v.number for v in ring.versions]
    if numbers != sorted(set(numbers)):
        problems.append(f"{ring.name}: version numbers not strictly increasing: {numbers}")
    if numbers and ring.next_version <= max(numbers):
        problems.append(f"{ring.name}: next_version {ring.next_version} would reuse a number")
    return problems
