"""Typed access to stored documents (ring, version and audit records from a store).

A store's rows are outside input: anyone with write access to the database or the Vault mount
can change them. :class:`Document` reads one mapping field by field and turns every problem
(missing key, wrong type, unknown enum value, bad date) into a
:class:`~keylife.errors.CorruptRecordError` naming the ring and version, never a KeyError,
ValueError or TypeError.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any, NoReturn, TypeVar

from .clock import DATE_RANGE, in_range
from .errors import CorruptRecordError

__all__ = ["Document", "shorten", "stored_date"]

_E = TypeVar("_E", bound=enum.Enum)


def shorten(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (for messages about hostile values)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def stored_date(value: str) -> dt.datetime | None:
    """An aware datetime in keylife's date range, or None when ``value`` is not one."""
    try:
        parsed = dt.datetime.fromisoformat(value) if value.isascii() else None
    except ValueError:
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    try:
        return parsed if in_range(parsed.astimezone(dt.UTC)) else None
    except OverflowError:
        return None


class Document:
    """One stored mapping; every failure is a :class:`CorruptRecordError`."""

    def __init__(self, d: object, ring: str, version: int | None, what: str) -> None:
        self.ring, self.version, self.what = ring, version, what
        if not isinstance(d, Mapping):
            self.fail(f"is a {type(d).__name__}, not a mapping")
        self.d: Mapping[str, Any] = d

    def fail(self, problem: str) -> NoReturn:
        raise CorruptRecordError(
            f"{self.what} is damaged: {problem}", ring=self.ring, version=self.version
        )

    def get(self, key: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
        """``d[key]`` if it has type ``kind`` (``None`` allowed when not required)."""
        if key not in self.d:
            if required:
                self.fail(f"missing key {key!r}")
            return None
        value = self.d[key]
        if value is None and not required:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            self.fail(f"{key} must be {names}, not {type(value).__name__}")
        return value

    def number(self, key: str, *, required: bool = True) -> int | None:
        """A positive integer (version numbers, sequence numbers)."""
        value = self.get(key, int, required=required)
        if value is not None and not 1 <= value <= 2**31:
            self.fail(f"{key} = {shorten(value)} is out of range")
        return value  # type: ignore[no-any-return]

    def date(self, key: str, *, required: bool = False) -> dt.datetime | None:
        value = self.get(key, str, required=required)
        if value is None:
            return None
        parsed = stored_date(value)
        if parsed is None:
            self.fail(f"{key} {shorten(value)} is not a UTC date {DATE_RANGE}")
        return parsed

    def enum(self, key: str, kind: type[_E], *, required: bool = True) -> _E | None:
        value = self.get(key, str, required=required)
        if value is None:
            return None
        try:
            return kind(value)
        except ValueError:
            self.fail(f"unknown {key} {shorten(value)}")

    def strings(self, key: str) -> dict[str, str]:
        """A mapping of strings to strings (attributes); absent means empty."""
        value = self.get(key, Mapping, required=False) or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            self.fail(f"{key} must map strings to strings")
        return dict(value)
