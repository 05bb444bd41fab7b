"""Durations in policy files and on the command line: ``90d``, ``2w``, ``12h``, ``30m``,
``45s`` (ASCII digits), at most :data:`MAX_DURATION`."""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["DURATION_RULE", "MAX_DURATION", "format_duration", "parse_duration"]

_DURATION = re.compile(r"\s*([0-9]{1,12})\s*([wdhms])\s*", re.ASCII)
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
#: The longest duration a policy may give (cryptoperiod, lead_time, grace_period, stage,
#: destroy_after): 100 years. Dates stay in range however they are added up.
MAX_DURATION = dt.timedelta(days=36500)
DURATION_RULE = (
    "a duration like 90d, 2w, 12h, 30m or 45s (ASCII digits), at most 36500d (100 years)"
)


def parse_duration(value: str) -> dt.timedelta:
    """Parse ``"90d"``, ``"12h"``, ``"2w"``, ``"30m"`` or ``"45s"``, up to :data:`MAX_DURATION`.

    Anything else raises ValueError whose message is :data:`DURATION_RULE`.
    """
    m = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(DURATION_RULE)
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(DURATION_RULE)
    return dt.timedelta(seconds=seconds)


def format_duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"
