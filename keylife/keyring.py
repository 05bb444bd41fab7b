"""A service's view of one ring: :class:`KeyRing`, whose ``primary()`` protects and
``version(n)`` processes."""

from __future__ import annotations

import datetime as dt

from .clock import as_utc
from .errors import MaterialUnavailableError, NotFoundError
from .lifecycle import KeyVersion, Ring
from .loaded import LoadedKey
from .policy import Purpose
from .specs import KeySpec
from .writer import RingWriter

__all__ = ["KeyRing"]


class KeyRing:
    """A service's view of one ring."""

    def __init__(self, manager: RingWriter, name: str, loaded: Ring | None = None) -> None:
        self._manager = manager
        self.name = name
        # The copy ``manager.ring()`` read to check the name serves the next read once, so
        # ``manager.ring(name).primary()`` reads the store once, not twice.
        self._loaded = loaded

    def _ring(self) -> Ring:
        ring, self._loaded = self._loaded, None
        return ring if ring is not None else self._manager.load(self.name)

    @property
    def spec(self) -> KeySpec:
        return self._ring().spec

    @property
    def purpose(self) -> str:
        return self._ring().purpose

    def primary(self, now: dt.datetime | None = None) -> LoadedKey:
        """The version that applies protection (encrypts, signs) at ``now``."""
        now = self._manager.now() if now is None else as_utc(now)
        version = self._ring().primary(now)
        if version is None:
            raise MaterialUnavailableError(
                f"ring {self.name} has no active version at {now.isoformat()}; run "
                "`keylife rotate` or activate a version"
            )
        return LoadedKey(version, self._manager.material(version))

    def version(self, number: int, now: dt.datetime | None = None) -> LoadedKey:
        """Version ``number`` for processing (decrypt, verify), if the policy still allows it."""
        now = self._manager.now() if now is None else as_utc(now)
        ring = self._ring()
        version = ring.get(number)
        if version is None:
            raise NotFoundError(f"ring {self.name} has no version {number}")
        grace = self._manager.policy.rules(Purpose.parse(ring.purpose)).grace_period
        if not version.processes_at(now, grace):
            raise MaterialUnavailableError(
                f"{self.name} v{number} is {version.state.value} and may not process data at "
                f"{now.isoformat()}"
            )
        return LoadedKey(version, self._manager.material(version))

    def history(self) -> list[KeyVersion]:
        """Every version, oldest first, including destroyed and compromised ones."""
        return list(self._ring().versions)
