"""Scheduled destruction for transit-resident rings: the cancel and approve halves of
:mod:`keylife.destruction` (``TransitRings.destroy`` schedules), written through the ring's
one check-and-set write and audited under ``transit:NAME``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .. import destruction as ds
from ..changes import Change
from ..identity import os_identity
from ..lifecycle import Ring
from . import transit_doc as td

if TYPE_CHECKING:
    from ..audit import AuditSink
    from ..clock import Clock

__all__ = ["DestroyScheduling"]

View = TypeVar("View")


class DestroyScheduling(Generic[View]):
    """Mixed into :class:`~keylife.vault.transit_rings.TransitRings` (``View``: its
    ``View``)."""

    actor: str
    clock: Clock
    audit: AuditSink

    def _change(
        self,
        name: str,
        now: dt.datetime,
        change: Callable[[Ring], Ring],
        *,
        fresh_after: int | None = None,
        why: str = "",
    ) -> View:
        raise NotImplementedError  # pragma: no cover - TransitRings has the one write

    def cancel_destroy(
        self, name: str, version: int, *, now: dt.datetime | None = None, reason: str = ""
    ) -> View:
        """Cancel the scheduled destruction of ``version``."""
        return self._scheduling(
            name,
            now or self.clock.now(),
            lambda r, who: ds.cancel_destroy(
                r, version, actor=who["actor"], now=who["now"], reason=reason
            ),
        )

    def approve_destroy(
        self, name: str, version: int, *, now: dt.datetime | None = None, reason: str = ""
    ) -> View:
        """Approve the scheduled destruction of ``version`` as a second actor."""
        at = now or self.clock.now()
        return self._scheduling(
            name, at, lambda r, who: ds.approve_destroy(r, version, **who, reason=reason)
        )

    def _scheduling(
        self, name: str, at: dt.datetime, op: Callable[[Ring, dict[str, Any]], Change]
    ) -> View:
        """Write a schedule change (``op(ring, {actor, identity, now})``) and audit it."""
        ask = getattr(self.audit, "authenticated_identity", None)
        who: dict[str, Any] = {
            "actor": self.actor,
            "identity": str(ask()) if callable(ask) else os_identity(),
            "now": at,
        }
        made: list[Change] = []

        def change(ring: Ring) -> Ring:
            made[:] = [op(ring, who)]
            return made[0].ring

        view = self._change(name, at, change)
        self.audit.append_audit([replace(e, ring=td.label(name)) for e in made[0].audit])
        return view
