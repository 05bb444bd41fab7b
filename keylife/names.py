"""The one ring-name rule, for key rings, certificate rings and transit-resident rings."""

from __future__ import annotations

import re

from .errors import LifecycleError

__all__ = ["RING_NAME_RULE", "check_ring_name", "is_ring_name"]

RING_NAME_RULE = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
_RING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_ring_name(name: str) -> bool:
    return isinstance(name, str) and _RING_NAME.fullmatch(name) is not None


def check_ring_name(name: str) -> str:
    """Return ``name`` if it is a valid ring name; raise :class:`LifecycleError` otherwise."""
    if not is_ring_name(name):
        raise LifecycleError(f"ring name {name!r} is not allowed; use {RING_NAME_RULE}")
    return name
