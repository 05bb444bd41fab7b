"""Transit-resident keys under the policy (issue 11 item 3): a new version of a Transit key,
at ``keylife vault transit create`` or at rotation, passes the same checks as a key keylife
generates (``keylife key create``), by the same code and with the same messages:

- its type and strength against the policy for its purpose on that date
  (:meth:`keylife.policy.Policy.check`);
- its dates against the purpose's cryptoperiod (:func:`keylife.limits.version_dates`).

Transit cannot change a key's type, so a key whose type the policy no longer allows is not
rotated: the refusal says to create a new transit-resident key of an allowed type and move
the data to it. A compromise response is never held back by this (it rotates regardless).
"""

from __future__ import annotations

import datetime as dt

from ..errors import SpecNotAllowedError
from ..limits import VersionDates, version_dates
from ..policy import Policy, Purpose
from . import transit_doc as td

__all__ = ["check_new_version", "check_rotation"]


def check_new_version(
    policy: Policy, key_type: str, purpose: str, now: dt.datetime
) -> VersionDates:
    """The dates of a new version of a ``key_type`` Transit key for ``purpose`` made ``now``;
    :class:`SpecNotAllowedError` (or :class:`PolicyError`) when the policy does not allow it."""
    purpose_ = Purpose.parse(purpose)
    policy.check(td.spec_for(key_type), purpose_, now)
    return version_dates(policy.rules(purpose_), purpose_.value, now=now)


def check_rotation(
    policy: Policy, name: str, key_type: str, purpose: str, now: dt.datetime
) -> VersionDates:
    """As :func:`check_new_version` for rotating transit ring ``name``, with the way round a
    type the policy no longer allows."""
    try:
        return check_new_version(policy, key_type, purpose, now)
    except SpecNotAllowedError as exc:
        raise SpecNotAllowedError(
            f"transit ring {name} is not rotated: {exc}. Transit cannot change a key's type: "
            f"create a transit-resident key of an allowed type (`keylife vault transit create "
            f"NEW --type T --purpose {purpose}`) and move the data to it"
        ) from None
