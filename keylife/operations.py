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
from dataclasses import replace

from .changes import (
    Change,
    NewKey,
    emptied,
    entry,
    exception_entries,
    get_version,
    promote,
    refuse_if_retired,
    refuse_if_superseded,
    result,
    retire_attributes,
    retired,
    superseded_entries,
    with_exception,
)
from .destruction import held, refuse_if_scheduled
from .errors import LifecycleError
from .lifecycle import (
    TRANSITIONS,
    Action,
    Ring,
    State,
    new_version,
    supersede_older,
    transition,
)
from .names import check_ring_name
from .specs import KeySpec

__all__ = [
    "Change",
    "NewKey",
    "activate",
    "add_version",
    "annotate",
    "create_ring",
    "result",
    "retire",
    "rotate",
    "transition_version",
]


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
    version_attributes = with_exception(version_attributes, exception)
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
        entry(now, actor, "create", name, version.number, reason or f"{spec.name} for {purpose}")
    ]
    audit += exception_entries(now, actor, name, version.number, exception)
    if version.state is State.ACTIVE:
        audit.append(entry(now, actor, "activate", name, version.number, "activation date reached"))
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
    refuse_if_retired(ring)
    prev = ring.primary(now)
    attributes = with_exception(attributes, exception)
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
    audit = [entry(now, actor, "create", ring.name, version.number, reason)]
    audit += exception_entries(now, actor, ring.name, version.number, exception)
    if version.state is State.ACTIVE:
        if supersede:
            new_ring, more = promote(new_ring, version, now, actor, reason)
            audit += more
        else:
            audit.append(entry(now, actor, "activate", ring.name, version.number, reason))
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
    superseded; staged (``stage``) it is pre-active and activates ``stage`` later. A ``key``
    of another spec (the policy moved on) becomes the ring's spec from now on."""
    activation = now if stage is None else now + stage
    change = add_version(
        ring,
        key,
        actor=actor,
        now=now,
        activation=activation,
        deactivation=activation + cryptoperiod,
        reason=reason,
    )
    if key.spec is None or key.spec == ring.spec:
        return change
    return replace(change, ring=replace(change.ring, spec=key.spec))


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
    v = get_version(ring, number)
    if if_needed and v.state is not State.PRE_ACTIVE:
        return Change(ring, version=v)  # already done by another writer
    if (v.state, Action.ACTIVATE) in TRANSITIONS:
        refuse_if_scheduled(v, Action.ACTIVATE)
        refuse_if_superseded(ring, v, Action.ACTIVATE, now)
    changes: dict[str, object] = {}
    if v.activation is None or v.activation > now:
        changes["activation"] = now
    if cryptoperiod is not None and (v.deactivation is None or v.deactivation > now + cryptoperiod):
        changes["deactivation"] = now + cryptoperiod
    updated = transition(v, Action.ACTIVATE, at=now, actor=actor, reason=reason, **changes)
    new_ring, audit = promote(ring.replace_version(updated), updated, now, actor, reason)
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
    v = get_version(ring, number)
    if if_needed and (v.state, action) not in TRANSITIONS:
        return Change(ring, version=v)  # already done by another writer
    if action is Action.RESUME and (v.state, action) in TRANSITIONS:
        refuse_if_scheduled(v, action)
        refuse_if_superseded(ring, v, action, now)
    requested = action is Action.DESTROY and held(v)  # an operator's, carried out when due
    changes: dict[str, object] = {}
    if action is Action.DEACTIVATE and (v.deactivation is None or v.deactivation > now):
        changes["deactivation"] = now
    if action is Action.DESTROY:
        changes["destroy_date"] = now
    updated = transition(v, action, at=now, actor=actor, reason=reason, **changes)
    new_ring = ring.replace_version(updated)
    audit = [entry(now, actor, action.value, ring.name, number, reason)]
    if action is Action.RESUME:  # a resumed version takes over from older ones
        before = new_ring
        new_ring = supersede_older(new_ring, number, now=now, actor=actor)
        audit += superseded_entries(before, new_ring, now, actor)
    by_operator = not if_needed or requested
    if action is Action.DESTROY and by_operator and emptied(new_ring) and not retired(ring):
        # an operator destroyed the last key: the ring is ended, not to be revived by cron
        why = f"v{number}, the last key, destroyed by an operator"
        new_ring = replace(new_ring, attributes=retire_attributes(new_ring, now, why))
        audit.append(entry(now, actor, "retire", ring.name, None, why))
    return Change(
        new_ring,
        tuple(audit),
        destroy=() if updated.has_material else (number,),
        version=new_ring.get(number),
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
    v = get_version(ring, number)
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
        (entry(now, actor, "annotate", ring.name, number, f"{reason} ({keys})"),),
        version=updated,
    )


def retire(ring: Ring, *, actor: str, now: dt.datetime, reason: str) -> Change:
    """Stop rotation for good: the ring gains no new version (rotation, import, renewal), and its
    versions run out their processing windows and are destroyed on schedule."""
    refuse_if_retired(ring)
    return Change(
        replace(ring, attributes=retire_attributes(ring, now, reason)),
        (entry(now, actor, "retire", ring.name, None, reason),),
        version=ring.primary(now),
    )
