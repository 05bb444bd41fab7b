"""The shape of a lifecycle change and the building blocks every operation shares.

A :class:`Change` is what a writer commits with one check-and-set. The helpers here (audit
entries, superseding, policy exceptions) are used by :mod:`keylife.operations` and
:mod:`keylife.revocation`; they are pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from .audit import AuditEntry
from .errors import InvalidTransitionError, LifecycleError, NotFoundError
from .lifecycle import Action, KeyVersion, Ring, State, supersede_older
from .limits import POLICY_EXCEPTION
from .specs import KeySpec

__all__ = [
    "RETIRED",
    "Change",
    "NewKey",
    "emptied",
    "entry",
    "exception_entries",
    "get_version",
    "promote",
    "refuse_if_retired",
    "refuse_if_superseded",
    "result",
    "retire_attributes",
    "retired",
    "superseded_entries",
    "with_exception",
]


#: Ring attribute: when (ISO 8601) and why the ring was retired, ``"DATE reason"``.
RETIRED = "retired"


def retired(ring: Ring) -> bool:
    return RETIRED in ring.attributes


def emptied(ring: Ring) -> bool:
    """Every version the ring had is destroyed: no key is left to continue."""
    gone = (State.DESTROYED, State.DESTROYED_COMPROMISED)
    return bool(ring.versions) and all(v.state in gone for v in ring.versions)


def retire_attributes(ring: Ring, now: dt.datetime, reason: str) -> dict[str, str]:
    return {**ring.attributes, RETIRED: f"{now.isoformat()} {reason}".strip()}


def refuse_if_retired(ring: Ring) -> None:
    if retired(ring):
        raise LifecycleError(
            f"ring {ring.name} is retired ({ring.attributes[RETIRED]}); it gains no new versions"
        )


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


def result(change: Change) -> KeyVersion:
    """The version ``change`` was about (every operation sets it)."""
    if change.version is None:
        raise LifecycleError("the change names no version")
    return change.version


def entry(
    now: dt.datetime, actor: str, action: str, ring: str, version: int | None, reason: str
) -> AuditEntry:
    return AuditEntry(now, actor, action, ring, version, reason=reason)


def get_version(ring: Ring, number: int) -> KeyVersion:
    v = ring.get(number)
    if v is None:
        raise NotFoundError(f"ring {ring.name} has no version {number}")
    return v


def superseded_entries(before: Ring, after: Ring, now: dt.datetime, actor: str) -> list[AuditEntry]:
    out = []
    for v in after.versions:
        old = before.get(v.number)
        if old is not None and old.state is not v.state and v.state is State.DEACTIVATED:
            out.append(
                entry(
                    now,
                    actor,
                    "deactivate",
                    after.name,
                    v.number,
                    f"superseded by v{v.replaced_by}",
                )
            )
    return out


def with_exception(
    attributes: Mapping[str, str] | None, exception: str
) -> Mapping[str, str] | None:
    if not exception:
        return attributes
    return {**(attributes or {}), POLICY_EXCEPTION: exception}


def exception_entries(
    now: dt.datetime, actor: str, ring: str, number: int, exception: str
) -> list[AuditEntry]:
    if not exception:
        return []
    return [entry(now, actor, "policy-exception", ring, number, exception)]


def refuse_if_superseded(ring: Ring, v: KeyVersion, action: Action, now: dt.datetime) -> None:
    """An older version never takes protection back from a newer one that is active or only
    suspended: at most one version protects at any instant, and it is the newest."""
    newer = [
        w.number
        for w in ring.versions
        if w.number > v.number and w.state in (State.ACTIVE, State.SUSPENDED)
    ]
    if newer:
        raise InvalidTransitionError(
            f"{ring.name} v{v.number} is older than v{max(newer)}, which took over; it cannot "
            f"{action.value} (it may only be deactivated, revoked or destroyed)",
            ring=ring.name,
            version=v.number,
            from_state=v.state.value,
            action=action.value,
        )


def promote(
    ring: Ring, version: KeyVersion, now: dt.datetime, actor: str, reason: str
) -> tuple[Ring, list[AuditEntry]]:
    """``version`` (now active) takes over: older active or suspended versions are superseded."""
    audit = [entry(now, actor, "activate", ring.name, version.number, reason)]
    before = ring
    ring = supersede_older(ring, version.number, now=now, actor=actor)
    return ring, audit + superseded_entries(before, ring, now, actor)
