"""The usable versions of one ring document at a glance: :class:`Keyset`.

A key set turns the document's dates into windows of POSIX seconds once, so the question asked
on every operation ("which version protects now?", "may v3 process now?") is a few float
comparisons, and it keeps each version's material and parsed key objects once loaded. The
rules are those of :meth:`KeyVersion.protects_at` and :meth:`KeyVersion.processes_at` with the
purpose's grace period; the key set is only a faster way to ask them.

A :class:`KeyRing` builds one per operation on a plain store (so every call sees the store),
or keeps one per ring revision for the refresh interval behind a
:class:`~keylife.ringcache.CachedStore`.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable
from typing import Any

from .errors import KeyUsageError, MaterialUnavailableError
from .lifecycle import KeyVersion, Ring, State
from .loaded import LoadedKey
from .material import KeyMaterial
from .policy import Purpose
from .specs import KeyKind

__all__ = ["Keyset", "require", "stamp"]

_INF = math.inf


def stamp(value: dt.datetime | None, default: float) -> float:
    return default if value is None else value.timestamp()


def _protect_window(v: KeyVersion) -> tuple[float, float] | None:
    if v.state is not State.ACTIVE:
        return None
    end = min(stamp(v.deactivation, _INF), stamp(v.protect_stop, _INF))
    return stamp(v.activation, -_INF), end


def _process_window(v: KeyVersion, grace: dt.timedelta) -> tuple[float, float] | None:
    start = stamp(v.process_start, -_INF)
    if v.state is State.ACTIVE:
        return start, _INF
    if v.state is State.DEACTIVATED:
        end = _INF if v.deactivation is None else (v.deactivation + grace).timestamp()
        return start, end
    return None


def when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat()


class Keyset:
    """The windows and loaded keys of one ring document (one revision)."""

    def __init__(
        self,
        ring: Ring,
        grace: dt.timedelta,
        material: Callable[[KeyVersion], KeyMaterial],
    ) -> None:
        self.ring = ring
        self._material = material
        self._protect: list[tuple[int, float, float]] = []
        self._process: dict[int, tuple[float, float]] = {}
        for v in ring.versions:
            if not v.has_material:
                continue
            window = _protect_window(v)
            if window is not None:
                self._protect.append((v.number, *window))
            pwin = _process_window(v, grace)
            if pwin is not None:
                self._process[v.number] = pwin
        self._protect.sort(reverse=True)
        self._loaded: dict[tuple[int, bool], LoadedKey] = {}
        self._hint: tuple[float, float, LoadedKey] | None = None
        self._lock = threading.Lock()
        #: Per-version values a caller derives once (message headers, verifiers, ...).
        self.memo: dict[Any, Any] = {}

    def loaded(self, number: int, protects: bool) -> LoadedKey:
        key = (number, protects)
        hit = self._loaded.get(key)
        if hit is not None:
            return hit
        with self._lock:
            hit = self._loaded.get(key)
            if hit is None:
                other = self._loaded.get((number, not protects))
                version = self.ring.get(number)
                assert version is not None
                material = other.material if other is not None else self._material(version)
                hit = LoadedKey(version, material, protects)
                self._loaded[key] = hit
            return hit

    def primary(self, t: float) -> LoadedKey:
        """The version that protects at ``t`` (the newest that may), or MaterialUnavailable."""
        return self.primary_until(t)[0]

    def primary_until(self, t: float) -> tuple[LoadedKey, float]:
        """The primary at ``t`` and the time until which it stays the primary."""
        hint = self._hint
        if hint is not None and hint[0] <= t < hint[1]:
            return hint[2], hint[1]
        for number, start, end in self._protect:
            if start <= t < end:
                # Valid until its window ends or a newer version starts protecting.
                newer = [s for n, s, _ in self._protect if n > number and s > t]
                until = min([end, *newer])
                loaded = self.loaded(number, True)
                self._hint = (start, until, loaded)
                return loaded, until
        raise MaterialUnavailableError(
            f"ring {self.ring.name} has no active version at {when(t)}; run "
            "`keylife rotate` or activate a version"
        )

    def primary_number(self, t: float) -> int | None:
        for number, start, end in self._protect:
            if start <= t < end:
                return number
        return None

    def process_end(self, number: int) -> float:
        """When version ``number``'s processing window ends (call after checking it is open)."""
        return self._process[number][1]

    def processes(self, number: int, t: float) -> bool:
        window = self._process.get(number)
        return window is not None and window[0] <= t < window[1]

    def processing(self, number: int, t: float) -> LoadedKey:
        """Version ``number`` if it may process at ``t`` (the caller checked it exists)."""
        window = self._process.get(number)
        if window is None or not window[0] <= t < window[1]:
            version = self.ring.get(number)
            state = "gone" if version is None else version.state.value
            raise MaterialUnavailableError(
                f"{self.ring.name} v{number} is {state} and may not process data at {when(t)}"
            )
        return self.loaded(number, self.primary_number(t) == number)

    def processing_versions(self, t: float) -> list[int]:
        """Every version that may process at ``t``, oldest first."""
        return sorted(n for n, (s, e) in self._process.items() if s <= t < e)


def require(
    ring: Ring, operation: str, purposes: tuple[Purpose, ...], kinds: tuple[KeyKind, ...]
) -> None:
    """Refuse ``operation`` on a ring of another purpose or key type (KeyUsageError)."""
    if ring.purpose not in {p.value for p in purposes} or ring.spec.kind not in kinds:
        wanted = " or ".join(p.value for p in purposes)
        raise KeyUsageError(
            f"ring {ring.name} is a {ring.purpose} ring ({ring.spec.name}); {operation} "
            f"needs a {wanted} ring",
            ring=ring.name,
            operation=operation,
        )
