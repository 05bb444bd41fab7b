"""Every lifecycle change, written once: pure functions from (ring, request, actor, now) to a
:class:`Change`.

A :class:`Change` is what a writer must commit with one check-and-set: the new ring document,
the audit entries that describe it, the material to store and the version numbers whose
material to erase. Nothing here reads a clock, a store or a random source: the caller passes
``now`` and, for new versions, the fingerprint of material it generated. The manager (operator
requests) and the rotation runner (planned steps) both call these functions, so an activation
typed by an operator and one applied by ``keylife rotate`` give the same document.

Functions that the planner drives take ``if_needed=True``: a step another writer already did
returns an empty change instead of raising, so applying a plan twice equals applying it once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .audit import AuditEntry
from .dependents import dependents
from .errors import InvalidTransitionError, LifecycleError, NotFoundError
from .lifecycle import (
    TRANSITIONS,
    Action,
    KeyVersion,
    RevocationReason,
    Ring,
    State,
    new_version,
    supersede_older,
    transition,
)
from .limits import POLICY_EXCEPTION
from .names import check_ring_name
from .specs import KeySpec

__all__ = [
    "Change",
    "NewKey",
    "activate",
    "add_version",
    "annotate",
    "compromise",
    "create_ring",
    "dependents",
    "revoke",
    "rotate",
    "transition_version",
]


@dataclass(frozen=True)
class NewKey:
    """Fresh material's public facts, for a version the operation creates. The material itself
    travels beside the change (``Change.materials``) and never through a pure function's
    decisions."""

    fingerprint: str
    spec: KeySpec | None = None


@dataclass(frozen=True)
class Change:
    """One check-and-set write: the new document, its audit entries, material to write and
    version numbers whose material to erase. ``version`` is the version the request was
    about (the new one for create/rotate), ``replacement`` a version made in the same write."""

    ring: Ring
    audit: tuple[AuditEntry, ...] = ()
    new_versions: tuple[int, ...] = ()
    destroy: tuple[int, ...] = ()
    version: KeyVersion | None = None
    replacement: KeyVersion | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        """Nothing to write: the request was already done (``if_needed``)."""
        return not self.audit and not self.new_versions and not self.destroy


def _entry(
    now: dt.datetime, actor: str, action: str, ring: str, version: int | None, reason: str
) -> AuditEntry:
    return AuditEntry(now, actor, action, ring, version, reason=reason)


def _get(ring: Ring, number: int) -> KeyVersion:
    v = ring.get(number)
    if v is None:
        raise NotFoundError(f"ring {ring.name} has no version {number}")
    return v


def _superseded_entries(
    before: Ring, after: Ring, now: dt.datetime, actor: str
) -> list[AuditEntry]:
    out = []
    for v in after.versions:
        old = before.get(v.number)
        if old is not None and old.state is not v.state and v.state is State.DEACTIVATED:
            out.append(
                _entry(
                    now,
                    actor,
                    "deactivate",
                    after.name,
                    v.number,
                    f"superseded by v{v.replaced_by}",
                )
            )
    return out


def _with_exception(
    attributes: Mapping[str, str] | None, exception: str
) -> Mapping[str, str] | None:
    if not exception:
        return attributes
    return {**(attributes or {}), POLICY_EXCEPTION: exception}


def _exception_entries(
    now: dt.datetime, actor: str, ring: str, number: int, exception: str
) -> list[AuditEntry]:
    if not exception:
        return []
    return [_entry(now, actor, "policy-exception", ring, number, exception)]


def _refuse_if_superseded(ring: Ring, v: KeyVersion, action: Action, now: dt.datetime) -> None:
    """An older version never takes protection back from a newer primary: at most one version
    protects at any instant, and it is the newest."""
    primary = ring.primary(now)
    if primary is not None and primary.number > v.number:
        raise InvalidTransitionError(
            f"{ring.name} v{v.number} is older than the primary v{primary.number}; it cannot "
            f"{action.value} (it may only be deactivated, revoked or destroyed)",
            ring=ring.name,
            version=v.number,
            from_state=v.state.value,
            action=action.value,
        )


def _promote(
    ring: Ring, version: KeyVersion, now: dt.datetime, actor: str, reason: str
) -> tuple[Ring, list[AuditEntry]]:
    """``version`` (now active) takes over: older active or suspended versions are superseded."""
    audit = [_entry(now, actor, "activate", ring.name, version.number, reason)]
    before = ring
    ring = supersede_older(ring, version.number, now=now, actor=actor)
    return ring, audit + _superseded_entries(before, ring, now, actor)


def create_ring(
    name: str,
    spec: KeySpec,
    purpose: str,
    key: NewKey,
    *,
    actor: str,
    now: dt.datetime,
    activation: dt.datetime,
    deactivation: dt.datetime,
    protect_stop: dt.datetime | None = None,
    process_start: dt.datetime | None = None,
    attributes: Mapping[str, str] | None = None,
    version_attributes: Mapping[str, str] | None = None,
    reason: str = "",
    exception: str = "",
) -> Change:
    """A new ring with its first version (active at once when ``activation <= now``).

    ``exception`` records why the version's dates exceed the policy (checked by the caller
    with :func:`keylife.limits.check_dates`): on the version and in the audit log."""
    check_ring_name(name)
    version_attributes = _with_exception(version_attributes, exception)
    ring = Ring(name, spec, purpose, now, attributes=dict(attributes or {}))
    ring, version = new_version(
        ring,
        fingerprint=key.fingerprint,
        now=now,
        actor=actor,
        activation=activation,
        deactivation=deactivation,
        protect_stop=protect_stop,
        process_start=process_start,
        spec=key.spec,
        attributes=version_attributes,
        reason=reason or "created",
    )
    audit = [
        _entry(now, actor, "create", name, version.number, reason or f"{spec.name} for {purpose}")
    ]
    audit += _exception_entries(now, actor, name, version.number, exception)
    if version.state is State.ACTIVE:
        audit.append(
            _entry(now, actor, "activate", name, version.number, "activation date reached")
        )
    return Change(ring, tuple(audit), (version.number,), version=version)


def add_version(
    ring: Ring,
    key: NewKey,
    *,
    actor: str,
    now: dt.datetime,
    activation: dt.datetime,
    deactivation: dt.datetime,
    attributes: Mapping[str, str] | None = None,
    reason: str = "added",
    supersede: bool = True,
    exception: str = "",
) -> Change:
    """A new version of ``ring`` replacing its primary; active at once when its activation has
    come, and then (with ``supersede``) the previous primary is deactivated. ``exception`` as
    for :func:`create_ring`."""
    prev = ring.primary(now)
    attributes = _with_exception(attributes, exception)
    new_ring, version = new_version(
        ring,
        fingerprint=key.fingerprint,
        now=now,
        actor=actor,
        activation=activation,
        deactivation=deactivation,
        spec=key.spec,
        replaces=prev.number if prev else None,
        attributes=attributes,
        reason=reason,
    )
    audit = [_entry(now, actor, "create", ring.name, version.number, reason)]
    audit += _exception_entries(now, actor, ring.name, version.number, exception)
    if version.state is State.ACTIVE:
        if supersede:
            new_ring, more = _promote(new_ring, version, now, actor, reason)
            audit += more
        else:
            audit.append(_entry(now, actor, "activate", ring.name, version.number, reason))
    return Change(new_ring, tuple(audit), (version.number,), version=version)


def rotate(
    ring: Ring,
    key: NewKey,
    *,
    actor: str,
    now: dt.datetime,
    cryptoperiod: dt.timedelta,
    stage: dt.timedelta | None = None,
    reason: str = "rotation",
) -> Change:
    """A successor for ``ring``'s primary. Unstaged it is active at once and the old primary is
    superseded; staged (``stage``) it is pre-active and activates ``stage`` later."""
    activation = now if stage is None else now + stage
    return add_version(
        ring,
        key,
        actor=actor,
        now=now,
        activation=activation,
        deactivation=activation + cryptoperiod,
        reason=reason,
    )


def activate(
    ring: Ring,
    number: int,
    *,
    actor: str,
    now: dt.datetime,
    reason: str,
    cryptoperiod: dt.timedelta | None = None,
    if_needed: bool = False,
) -> Change:
    """Activate version ``number`` now and make it the primary: every older active or suspended
    version is superseded, so at most one version protects at any instant.

    An activation earlier than planned moves the activation date to ``now``; with
    ``cryptoperiod`` the deactivation is then no later than ``now + cryptoperiod``.
    """
    v = _get(ring, number)
    if if_needed and v.state is not State.PRE_ACTIVE:
        return Change(ring, version=v)  # already done by another writer
    if (v.state, Action.ACTIVATE) in TRANSITIONS:
        _refuse_if_superseded(ring, v, Action.ACTIVATE, now)
    changes: dict[str, object] = {}
    if v.activation is None or v.activation > now:
        changes["activation"] = now
    if cryptoperiod is not None and (v.deactivation is None or v.deactivation > now + cryptoperiod):
        changes["deactivation"] = now + cryptoperiod
    updated = transition(v, Action.ACTIVATE, at=now, actor=actor, reason=reason, **changes)
    new_ring, audit = _promote(ring.replace_version(updated), updated, now, actor, reason)
    return Change(new_ring, tuple(audit), version=new_ring.get(number))


def transition_version(
    ring: Ring,
    number: int,
    action: Action,
    *,
    actor: str,
    now: dt.datetime,
    reason: str,
    if_needed: bool = False,
    cryptoperiod: dt.timedelta | None = None,
) -> Change:
    """Apply one lifecycle ``action`` to version ``number``.

    Activation goes through :func:`activate` (it supersedes); deactivation moves a future
    deactivation date to ``now``; destruction records the date and erases the material.
    Compromise needs a reason and a date: use :func:`compromise` or :func:`revoke`.
    """
    if action is Action.ACTIVATE:
        return activate(
            ring,
            number,
            actor=actor,
            now=now,
            reason=reason,
            cryptoperiod=cryptoperiod,
            if_needed=if_needed,
        )
    if action is Action.COMPROMISE:
        raise LifecycleError("a compromise needs a reason and a date; use compromise()")
    v = _get(ring, number)
    if if_needed and (v.state, action) not in TRANSITIONS:
        return Change(ring, version=v)  # already done by another writer
    if action is Action.RESUME and (v.state, action) in TRANSITIONS:
        _refuse_if_superseded(ring, v, action, now)
    changes: dict[str, object] = {}
    if action is Action.DEACTIVATE and (v.deactivation is None or v.deactivation > now):
        changes["deactivation"] = now
    if action is Action.DESTROY:
        changes["destroy_date"] = now
    updated = transition(v, action, at=now, actor=actor, reason=reason, **changes)
    return Change(
        ring.replace_version(updated),
        (_entry(now, actor, action.value, ring.name, number, reason),),
        destroy=() if updated.has_material else (number,),
        version=updated,
    )


def _compromised(
    v: KeyVersion,
    why: RevocationReason,
    *,
    actor: str,
    now: dt.datetime,
    occurred: dt.datetime,
    message: str,
) -> KeyVersion:
    if occurred > now:
        raise LifecycleError(f"compromise occurrence date {occurred.isoformat()} is in the future")
    return transition(
        v,
        Action.COMPROMISE,
        at=now,
        actor=actor,
        reason=f"{why.value}" + (f": {message}" if message else ""),
        compromise_date=now,
        compromise_occurred=occurred,
        revocation_reason=why,
        revocation_message=message,
    )


def revoke(
    ring: Ring,
    number: int,
    why: RevocationReason,
    *,
    actor: str,
    now: dt.datetime,
    occurred: dt.datetime | None = None,
    message: str = "",
) -> Change:
    """Revoke version ``number`` with a KMIP / RFC 5280 reason.

    A compromise reason moves it to ``compromised``; any other reason deactivates it, or, on an
    already deactivated version, records the reason (there is no state to change).
    """
    v = _get(ring, number)
    text = f"revoked: {why.value}" + (f" ({message})" if message else "")
    if why.compromise:
        updated = _compromised(
            v, why, actor=actor, now=now, occurred=occurred or now, message=message
        )
    elif v.state is State.DEACTIVATED:
        updated = replace(v, revocation_reason=why, revocation_message=message)
    else:
        if (v.state, Action.DEACTIVATE) not in TRANSITIONS:
            raise InvalidTransitionError(
                f"{ring.name} v{number} is {v.state.value}; cannot revoke with {why.value}",
                ring=ring.name,
                version=number,
                from_state=v.state.value,
                action=Action.DEACTIVATE.value,
            )
        updated = transition(
            v,
            Action.DEACTIVATE,
            at=now,
            actor=actor,
            reason=text,
            deactivation=min(now, v.deactivation or now),
            revocation_reason=why,
            revocation_message=message,
        )
    return Change(
        ring.replace_version(updated),
        (_entry(now, actor, "revoke", ring.name, number, text),),
        version=updated,
    )


def compromise(
    ring: Ring,
    number: int,
    why: RevocationReason,
    *,
    actor: str,
    now: dt.datetime,
    occurred: dt.datetime,
    message: str = "",
    replacement: NewKey | None = None,
    cryptoperiod: dt.timedelta | None = None,
) -> Change:
    """Compromise version ``number`` and, with ``replacement``, activate a new version in the
    same write (the old primary superseded). ``notes`` lists what depends on the bad version.

    Without ``replacement`` (a certificate ring: the new key comes from the CA afterwards) only
    the compromise is written.
    """
    if not why.compromise:
        raise LifecycleError(
            "compromise needs a compromise reason; allowed: "
            f"{', '.join(r.value for r in RevocationReason if r.compromise)} (got {why.value})"
        )
    old = _get(ring, number)
    was_primary = ring.primary(now)
    bad = _compromised(old, why, actor=actor, now=now, occurred=occurred, message=message)
    new_ring = ring.replace_version(bad)
    notice = (
        f"revocation notice: v{number} ({old.fingerprint}) compromised at "
        f"{occurred.isoformat()}, reason {why.value}" + (f": {message}" if message else "")
    )
    audit = [_entry(now, actor, "compromise", ring.name, number, notice)]
    new_versions: tuple[int, ...] = ()
    new: KeyVersion | None = None
    if replacement is not None:
        if cryptoperiod is None:
            raise LifecycleError("a replacement version needs the purpose's cryptoperiod")
        new_ring, new = new_version(
            new_ring,
            fingerprint=replacement.fingerprint,
            now=now,
            actor=actor,
            activation=now,
            deactivation=now + cryptoperiod,
            spec=replacement.spec,
            replaces=number,
            reason=f"replaces compromised v{number}",
        )
        audit.append(
            _entry(
                now,
                actor,
                "create",
                ring.name,
                new.number,
                f"replacement for compromised v{number}",
            )
        )
        new_ring, more = _promote(new_ring, new, now, actor, f"replaces compromised v{number}")
        audit += more
        new_versions = (new.number,)
        new = new_ring.get(new.number)
    return Change(
        new_ring,
        tuple(audit),
        new_versions,
        version=bad,
        replacement=new,
        notes=tuple(dependents(new_ring, bad, was_primary)),
    )


def annotate(
    ring: Ring,
    number: int,
    changes: Mapping[str, str | None],
    *,
    actor: str,
    now: dt.datetime,
    reason: str = "attributes updated",
) -> Change:
    """Set (or, with ``None``, remove) public attributes of version ``number``."""
    v = _get(ring, number)
    attrs = dict(v.attributes)
    for key, value in changes.items():
        if value is None:
            attrs.pop(key, None)
        else:
            attrs[key] = value
    updated = replace(v, attributes=attrs)
    keys = ", ".join(sorted(changes))
    return Change(
        ring.replace_version(updated),
        (_entry(now, actor, "annotate", ring.name, number, f"{reason} ({keys})"),),
        version=updated,
    )
