"""The rotation runner's fast path on large stores: plan only the rings that may be due.

After a run has planned a ring, found nothing due and checked its keys, it records the ring as
quiet (:class:`~keylife.store.schedule.QuietRing`) until the planner's next event for it
(:func:`~keylife.rotation.plan.plan_ring` returns the first moment its plan may change) or a
re-check horizon, whichever is first. The next run loads only the rings without a valid record;
the others are provably not due, because the plan is a pure function of (ring, policy, now):

- the ring is unchanged: a record names the ring's revision, and the store voids it on any
  write to the ring or its material (also by writers that do not know about records);
- the planner and the policy are unchanged: a record names :func:`planner_digest` (the policy's
  SHA-256 and the planner's own code), so a policy change or a keylife upgrade plans afresh;
- ``now`` lies in ``[checked, until)``: a clock that went back before ``checked`` plans afresh.

Within the horizon (:data:`RECHECK_AFTER`, spread per ring) every ring's keys are checked again
(:mod:`keylife.rotation.health`) even when nothing changed. Stores without the capability (Vault)
are planned in full, as before.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import zlib
from collections.abc import Iterable, Mapping
from functools import lru_cache

from ..auditstate import policy_digest
from ..errors import KeylifeError
from ..lifecycle import Ring
from ..policy import Policy
from ..store.base import KeyStore
from ..store.schedule import QuietRing, RingsToPlan, SchedulingStore
from .plan import Plan

__all__ = ["RECHECK_AFTER", "planner_digest", "quiet_until", "remember", "rings_to_plan"]

log = logging.getLogger("keylife.rotate")

#: A quiet ring is planned, and its keys checked, again at the latest this long after (each
#: ring between half of it and all of it, by its name, so a large store's re-checks spread out).
RECHECK_AFTER = dt.timedelta(days=1)

#: The modules whose code decides a plan: a record made by other code is not trusted.
_PLANNER_MODULES = (
    "keylife.rotation.plan",
    "keylife.lifecycle",
    "keylife.policy",
    "keylife.certificates",
    "keylife.limits",
    "keylife.changes",
    "keylife.specs",
    "keylife.rotation.schedule",
)


@lru_cache(maxsize=1)
def _planner_code() -> str:
    import sys

    from .._version import __version__

    digest = hashlib.sha256(__version__.encode())
    for name in _PLANNER_MODULES:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        digest.update(name.encode())
        try:
            with open(str(path), "rb") as handle:
                digest.update(handle.read(1 << 22))
        except OSError:  # no source (frozen install): the version alone names the code
            continue
    return digest.hexdigest()


def planner_digest(policy: Policy) -> str:
    """What a quiet record was computed under: the policy (its ``sha256:`` digest and every
    field, source excluded) and the planner's code."""
    body = f"{policy_digest(policy)}\n{policy.profile!r}{policy.min_strength!r}"
    body += repr(sorted((p.value, repr(r)) for p, r in policy.purposes.items()))
    return "sha256:" + hashlib.sha256(f"{_planner_code()}\n{body}".encode()).hexdigest()


def quiet_until(name: str, checked: dt.datetime, next_due: dt.datetime | None) -> dt.datetime:
    """The end of a quiet record: the next event, or the ring's re-check horizon if sooner."""
    share = 0.5 + 0.5 * (zlib.crc32(name.encode()) / 2**32)
    horizon = checked + RECHECK_AFTER * share
    return horizon if next_due is None else min(next_due, horizon)


def rings_to_plan(store: KeyStore, policy: Policy, now: dt.datetime) -> RingsToPlan | None:
    """The rings to plan at ``now`` and the quiet ones; None when ``store`` cannot tell."""
    if not isinstance(store, SchedulingStore):
        return None
    return store.rings_to_plan(planner_digest(policy), now)


def remember(
    store: KeyStore,
    policy: Policy,
    now: dt.datetime,
    rings: Iterable[Ring],
    plan: Plan,
    unhealthy: Mapping[str, str],
) -> None:
    """Record the rings of ``plan`` that had nothing due and healthy keys as quiet. A store
    that cannot, or a write that fails, only costs the next run a full plan."""
    if not isinstance(store, SchedulingStore):
        return
    due = set(plan.rings)
    digest = planner_digest(policy)
    quiet = [
        QuietRing(
            r.name,
            r.revision,
            digest,
            now,
            quiet_until(r.name, now, plan.next_due.get(r.name)),
            plan.next_due.get(r.name),
        )
        for r in rings
        if not r.damage and r.name not in due and r.name not in unhealthy
    ]
    if not quiet:
        return
    try:
        store.remember_quiet(quiet)
    except KeylifeError as exc:
        log.warning("could not record which rings are quiet (the next run plans all): %s", exc)
