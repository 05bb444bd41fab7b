"""Destruction with a waiting period, as cloud KMSs do: an operator's ``destroy`` schedules,
``keylife rotate`` carries out.

Scheduling records a :class:`DestroySchedule` on the version (the version attribute
``destroy-scheduled``, a small JSON object: when it is due, who asked and why, approvals) and
erases nothing: until the destruction is carried out the material stays readable (a
deactivated version still processes in its grace period, a compromised one can be recovered),
and the version cannot be activated or resumed. ``cancel_destroy`` removes the schedule;
``approve_destroy`` records a second actor's approval, which the two-person rule
(``policy.destroy_requires_second_actor``) waits for. The planner
(:mod:`keylife.rotation.plan`) destroys a version once :func:`ready` says so.

Everything here is pure, as :mod:`keylife.operations`: ``now`` and the actor come from the
caller. A stored schedule is outside input: :func:`read_schedule` turns anything malformed into
a :class:`~keylife.errors.CorruptRecordError` naming the ring and version.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace

from .audit import AuditEntry
from .changes import Change, entry, get_version
from .documents import Document
from .durations import MAX_DURATION, format_duration
from .errors import CorruptRecordError, DestroyScheduleError
from .lifecycle import Action, KeyVersion, Ring, State, transition

__all__ = [
    "SCHEDULE",
    "Approval",
    "DestroySchedule",
    "approve_destroy",
    "cancel_destroy",
    "held",
    "pending",
    "read_schedule",
    "ready",
    "refuse_if_scheduled",
    "schedule_destroy",
]

#: Version attribute holding the schedule (JSON); it stays on a destroyed version as the record
#: of who asked and who approved.
SCHEDULE = "destroy-scheduled"
#: The longest stored schedule keylife reads.
MAX_SCHEDULE_CHARS = 4096
MAX_APPROVALS = 16


@dataclass(frozen=True)
class Approval:
    """A second actor's approval: the claimed actor and the identity the store authenticated."""

    actor: str
    identity: str
    at: dt.datetime


@dataclass(frozen=True)
class DestroySchedule:
    """A destruction requested at ``requested_at`` by ``requested_by`` (authenticated as
    ``identity``), due at ``due``."""

    due: dt.datetime
    requested_at: dt.datetime
    requested_by: str
    identity: str
    reason: str
    approvals: tuple[Approval, ...] = ()

    @property
    def approved(self) -> bool:
        """Approved by an actor other than the requester."""
        return any(a.actor != self.requested_by for a in self.approvals)

    def to_json(self) -> str:
        return json.dumps(
            {
                "due": self.due.isoformat(),
                "requested_at": self.requested_at.isoformat(),
                "requested_by": self.requested_by,
                "identity": self.identity,
                "reason": self.reason,
                "approvals": [
                    {"actor": a.actor, "identity": a.identity, "at": a.at.isoformat()}
                    for a in self.approvals
                ],
            },
            sort_keys=True,
        )


def read_schedule(v: KeyVersion) -> DestroySchedule | None:
    """The schedule recorded on ``v`` (also after it was carried out), or None."""
    raw = v.attributes.get(SCHEDULE)
    if raw is None:
        return None
    what = f"ring {v.ring!r} v{v.number} destroy schedule"
    if len(raw) > MAX_SCHEDULE_CHARS:
        raise CorruptRecordError(f"{what} is damaged: too long", ring=v.ring, version=v.number)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise CorruptRecordError(
            f"{what} is damaged: not valid JSON", ring=v.ring, version=v.number
        ) from None
    doc = Document(data, v.ring, v.number, what)
    items = doc.get("approvals", list, required=False) or []
    if len(items) > MAX_APPROVALS:
        doc.fail(f"more than {MAX_APPROVALS} approvals")
    approvals = []
    for item in items:
        a = Document(item, v.ring, v.number, what + " approval")
        at = a.date("at", required=True)
        assert at is not None
        approvals.append(Approval(a.get("actor", str), a.get("identity", str), at))
    due, requested = doc.date("due", required=True), doc.date("requested_at", required=True)
    assert due is not None and requested is not None
    return DestroySchedule(
        due,
        requested,
        doc.get("requested_by", str),
        doc.get("identity", str),
        doc.get("reason", str),
        tuple(approvals),
    )


def held(v: KeyVersion) -> bool:
    """A destruction is scheduled and not yet carried out (a damaged schedule counts: such a
    version is held back, never activated, never destroyed on its word)."""
    return v.has_material and SCHEDULE in v.attributes


def pending(v: KeyVersion) -> DestroySchedule | None:
    """The schedule of a destruction not yet carried out, or None."""
    return read_schedule(v) if v.has_material else None


def ready(v: KeyVersion, now: dt.datetime, *, second_actor: bool) -> bool:
    """The scheduled destruction of ``v`` is due at ``now`` (and approved by a second actor when
    ``second_actor``). A damaged schedule is never ready."""
    try:
        schedule = pending(v)
    except CorruptRecordError:
        return False
    if schedule is None or schedule.due > now:
        return False
    return schedule.approved or not second_actor


def refuse_if_scheduled(v: KeyVersion, action: Action) -> None:
    """A version waiting to be destroyed is never put (back) into use."""
    if held(v):
        raise DestroyScheduleError(
            f"{v.ring} v{v.number} is scheduled for destruction; it cannot {action.value}. "
            f"Cancel first: keylife key cancel-destroy {v.ring} {v.number}",
            ring=v.ring,
            version=v.number,
        )


def schedule_destroy(
    ring: Ring,
    number: int,
    *,
    actor: str,
    identity: str,
    now: dt.datetime,
    wait: dt.timedelta,
    minimum: dt.timedelta,
    reason: str,
) -> Change:
    """Schedule the destruction of version ``number`` ``wait`` from ``now``.

    ``wait`` must be at least ``minimum`` (the policy's ``destroy_wait``) unless the version is
    compromised, which may be destroyed sooner (down to no wait at all)."""
    v = get_version(ring, number)
    transition(v, Action.DESTROY, at=now, actor=actor)  # refuses what cannot be destroyed
    current = pending(v)
    if current is not None:
        raise DestroyScheduleError(
            f"{ring.name} v{number} is already scheduled for destruction at "
            f"{current.due.isoformat()}; to change it, keylife key cancel-destroy {ring.name} "
            f"{number} and destroy again",
            ring=ring.name,
            version=number,
            requester=current.requested_by,
        )
    compromised = v.state is State.COMPROMISED
    floor = dt.timedelta(0) if compromised else minimum
    if wait < floor or wait > MAX_DURATION:
        raise DestroyScheduleError(
            f"{ring.name} v{number}: a destruction waits at least {format_duration(floor)} "
            f"(policy destroy_wait; only a compromised version may wait less, down to 0s) and at "
            f"most {format_duration(MAX_DURATION)}; got {format_duration(wait)}",
            ring=ring.name,
            version=number,
        )
    why = reason or "destroyed by operator"
    schedule = DestroySchedule(now + wait, now, actor, identity, why)
    text = f"{why}; due {schedule.due.isoformat()}"
    return _scheduled(
        ring, v, schedule, entry(now, actor, "schedule-destroy", ring.name, number, text)
    )


def _scheduled(ring: Ring, v: KeyVersion, schedule: DestroySchedule, record: AuditEntry) -> Change:
    """The change that stores ``schedule`` on ``v``, audited by ``record``."""
    updated = replace(v, attributes={**v.attributes, SCHEDULE: schedule.to_json()})
    return Change(ring.replace_version(updated), (record,), version=updated)


def _pending_or_refuse(ring: Ring, number: int, verb: str) -> tuple[KeyVersion, DestroySchedule]:
    v = get_version(ring, number)
    schedule = pending(v)
    if schedule is None:
        raise DestroyScheduleError(
            f"{ring.name} v{number} has no destruction scheduled; nothing to {verb} "
            f"(schedule one with keylife key destroy {ring.name} {number})",
            ring=ring.name,
            version=number,
        )
    return v, schedule


def cancel_destroy(ring: Ring, number: int, *, actor: str, now: dt.datetime, reason: str) -> Change:
    """Cancel the scheduled destruction of ``number``: the version is as it was before."""
    v, schedule = _pending_or_refuse(ring, number, "cancel")
    attributes = {k: val for k, val in v.attributes.items() if k != SCHEDULE}
    updated = replace(v, attributes=attributes)
    text = f"{reason or 'cancelled by operator'} (was due {schedule.due.isoformat()})"
    return Change(
        ring.replace_version(updated),
        (entry(now, actor, "cancel-destroy", ring.name, number, text),),
        version=updated,
    )


def approve_destroy(
    ring: Ring, number: int, *, actor: str, identity: str, now: dt.datetime, reason: str
) -> Change:
    """Approve the scheduled destruction of ``number`` as a second actor (two-person rule);
    the requester cannot approve their own request."""
    v, schedule = _pending_or_refuse(ring, number, "approve")
    if actor == schedule.requested_by:
        raise DestroyScheduleError(
            f"{ring.name} v{number}: the destruction was requested by {schedule.requested_by}; "
            "a second, different actor must approve it (keylife --actor NAME key approve)",
            ring=ring.name,
            version=number,
            requester=schedule.requested_by,
        )
    if any(a.actor == actor for a in schedule.approvals):
        raise DestroyScheduleError(
            f"{ring.name} v{number}: {actor} already approved this destruction",
            ring=ring.name,
            version=number,
            requester=schedule.requested_by,
        )
    if len(schedule.approvals) >= MAX_APPROVALS:
        raise DestroyScheduleError(
            f"{ring.name} v{number}: at most {MAX_APPROVALS} approvals",
            ring=ring.name,
            version=number,
        )
    approved = replace(schedule, approvals=(*schedule.approvals, Approval(actor, identity, now)))
    text = f"{reason or 'approved'}; requested by {schedule.requested_by}"
    return _scheduled(
        ring, v, approved, entry(now, actor, "approve-destroy", ring.name, number, text)
    )
