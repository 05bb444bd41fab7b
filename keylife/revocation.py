"""Revocation and compromise: a version taken out of use with a KMIP / RFC 5280 reason, and
the one-step compromise response (revoke, replace, list what depended on it). Pure, like
:mod:`keylife.operations`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from .changes import RETIRED, Change, NewKey, entry, get_version, promote, retired
from .dependents import dependents
from .errors import InvalidTransitionError, LifecycleError
from .lifecycle import (
    TRANSITIONS,
    Action,
    KeyVersion,
    RevocationReason,
    Ring,
    State,
    new_version,
    transition,
)

__all__ = ["compromise", "revoke"]


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
    ``cessation-of-operation`` also retires the ring: nothing replaces the version.
    """
    v = get_version(ring, number)
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
    new_ring = ring.replace_version(updated)
    audit = [entry(now, actor, "revoke", ring.name, number, text)]
    if why is RevocationReason.CESSATION_OF_OPERATION and not retired(ring):
        # operation ceased: the ring is not to be continued by `keylife rotate`
        reason = f"v{number} revoked: cessation of operation"
        new_ring = replace(
            new_ring, attributes={**ring.attributes, RETIRED: f"{now.isoformat()} {reason}"}
        )
        audit.append(entry(now, actor, "retire", ring.name, None, reason))
    return Change(new_ring, tuple(audit), version=updated)


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
    old = get_version(ring, number)
    was_primary = ring.primary(now)
    bad = _compromised(old, why, actor=actor, now=now, occurred=occurred, message=message)
    new_ring = ring.replace_version(bad)
    notice = (
        f"revocation notice: v{number} ({old.fingerprint}) compromised at "
        f"{occurred.isoformat()}, reason {why.value}" + (f": {message}" if message else "")
    )
    audit = [entry(now, actor, "compromise", ring.name, number, notice)]
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
            entry(
                now,
                actor,
                "create",
                ring.name,
                new.number,
                f"replacement for compromised v{number}",
            )
        )
        new_ring, more = promote(new_ring, new, now, actor, f"replaces compromised v{number}")
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
