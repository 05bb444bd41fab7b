"""Who is acting: the operating-system identity a change is recorded under by default."""

from __future__ import annotations

import getpass

__all__ = ["default_actor"]


def default_actor() -> str:
    """The OS user running keylife, or ``unknown`` when it cannot be told."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
