"""Time as a parameter: the core never calls ``datetime.now()``; a :class:`Clock` is passed in."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock that only moves when told to (tests, ``--as-of``)."""

    def __init__(self, at: dt.datetime) -> None:
        self._at = as_utc(at)

    def now(self) -> dt.datetime:
        return self._at

    def advance(self, delta: dt.timedelta) -> None:
        self._at += delta

    def set(self, at: dt.datetime) -> None:
        self._at = as_utc(at)


def as_utc(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken as UTC; aware ones are converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


#: Dates keylife accepts from outside (options, policy, stored records): adding a cryptoperiod
#: or a grace period (at most 100 years each) to any of them stays far from ``datetime.max``.
MIN_YEAR = 1970
MAX_YEAR = 9000
DATE_RANGE = f"from {MIN_YEAR}-01-01 to {MAX_YEAR}-12-31 (UTC)"


def in_range(value: dt.datetime) -> bool:
    """Whether an aware ``value`` falls in the years keylife accepts."""
    return MIN_YEAR <= value.year <= MAX_YEAR


def parse_time(text: str) -> dt.datetime:
    """Parse an ISO 8601 timestamp or date (``2031-01-01``, ``2031-01-01T12:00:00Z``).

    Dates outside :data:`DATE_RANGE` are refused, so no later arithmetic overflows.
    """
    try:
        if not text.isascii():  # fromisoformat takes some non-ASCII digits and separators
            raise ValueError(text)
        value = as_utc(dt.datetime.fromisoformat(text.strip().replace("z", "Z")))
    except OverflowError:
        value = None
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or time (e.g. 2031-01-01 or 2031-01-01T12:00:00Z)"
        ) from None
    if value is None or not in_range(value):
        raise ValueError(f"{text!r} is out of range; keylife accepts dates {DATE_RANGE}")
    return value
