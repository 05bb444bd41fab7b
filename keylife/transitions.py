"""Moving one version through its lifecycle: :class:`VersionTransitions`, the part of
:class:`~keylife.manager.KeyManager` that activates, suspends, resumes, deactivates and
destroys, including destruction's waiting period (schedule, cancel, approve).

Each request reads the ring, asks the pure core (:mod:`keylife.operations`,
:mod:`keylife.destruction`) for the change and commits it with check-and-set retries.
"""

from __future__ import annotations

import datetime as dt

from . import operations as ops
from .creation import KeyCreator
from .errors import DestroyScheduleError
from .lifecycle import TRANSITIONS, Action, KeyVersion, Ring
from .policy import Purpose
from .rotation.plan import destroy_due

__all__ = ["VersionTransitions"]


class VersionTransitions(KeyCreator):
    """Lifecycle transitions of single versions (a base class of ``KeyManager``)."""

    def transition(
        self,
        name: str,
        number: int,
        action: Action,
        *,
        reason: str,
        if_needed: bool = False,
        loaded: Ring | None = None,
    ) -> KeyVersion:
        """Apply one lifecycle ``action`` to version ``number`` (see
        :func:`keylife.operations.transition_version`); ``if_needed`` makes a step another
        writer already did a no-op."""

        def operation(ring: Ring, now: dt.datetime) -> ops.Change:
            if action is Action.DESTROY:
                self._refuse_undue_destroy(ring, number, now)
            cryptoperiod = self.policy.rules(Purpose.parse(ring.purpose)).cryptoperiod
            return ops.transition_version(
                ring,
                number,
                action,
                actor=self.actor,
                now=now,
                reason=reason,
                if_needed=if_needed,
                cryptoperiod=cryptoperiod,
            )

        return ops.result(self.apply(name, action.value, operation, number, loaded=loaded))

    def _refuse_undue_destroy(self, ring: Ring, number: int, now: dt.datetime) -> None:
        """Material is erased only when the planner would: retention, an overtaken pre-active
        version, or a scheduled destruction that is due (and approved when the policy says)."""
        v = ring.get(number)
        if v is None or (v.state, Action.DESTROY) not in TRANSITIONS:
            return  # the transition itself says what is wrong (or that it is done)
        if not destroy_due(ring, number, self.policy, now):
            raise DestroyScheduleError(
                f"{ring.name} v{number} is not due for destruction; schedule it with keylife key "
                f"destroy {ring.name} {number} and `keylife rotate` carries it out when due",
                ring=ring.name,
                version=number,
            )

    def activate(self, name: str, number: int, *, reason: str = "") -> KeyVersion:
        """Activate version ``number`` now; it becomes the primary and supersedes older ones."""
        return self.transition(
            name, number, Action.ACTIVATE, reason=reason or "activated by operator"
        )

    def suspend(self, name: str, number: int, *, reason: str = "") -> KeyVersion:
        return self.transition(
            name, number, Action.SUSPEND, reason=reason or "suspended by operator"
        )

    def resume(self, name: str, number: int, *, reason: str = "") -> KeyVersion:
        return self.transition(name, number, Action.RESUME, reason=reason or "resumed by operator")

    def deactivate(self, name: str, number: int, *, reason: str = "") -> KeyVersion:
        return self.transition(
            name, number, Action.DEACTIVATE, reason=reason or "deactivated by operator"
        )

    def destroy(
        self, name: str, number: int, *, reason: str = "", wait: dt.timedelta | None = None
    ) -> KeyVersion:
        """Schedule the destruction of version ``number`` ``wait`` from now (default and
        minimum: the policy's ``destroy_wait``; a compromised version may wait less, down to
        zero). Nothing is erased yet: the material stays readable and the version cannot be
        activated or resumed until ``keylife rotate`` carries the destruction out when due (and,
        under ``destroy_requires_second_actor``, approved: :meth:`approve_destroy`). A
        destruction due at once (a compromised version, ``wait=0``) is carried out now.
        Returns the version as it then is; its metadata always stays."""
        from .destruction import schedule_destroy

        policy = self.policy
        why = reason or "destroyed by operator"

        def operation(ring: Ring, now: dt.datetime) -> ops.Change:
            return schedule_destroy(
                ring,
                number,
                actor=self.actor,
                identity=self.identity,
                now=now,
                wait=policy.destroy_wait if wait is None else wait,
                minimum=policy.destroy_wait,
                reason=why,
            )

        version = ops.result(self.apply(name, "schedule-destroy", operation, number))
        ring = self.load(name)
        if destroy_due(ring, number, policy, self.now()):
            return self.transition(
                name, number, Action.DESTROY, reason=why, if_needed=True, loaded=ring
            )
        return version

    def cancel_destroy(self, name: str, number: int, *, reason: str = "") -> KeyVersion:
        """Cancel the scheduled destruction of version ``number`` (audited); it is as before."""
        from .destruction import cancel_destroy

        def operation(ring: Ring, now: dt.datetime) -> ops.Change:
            return cancel_destroy(ring, number, actor=self.actor, now=now, reason=reason)

        return ops.result(self.apply(name, "cancel-destroy", operation, number))

    def approve_destroy(self, name: str, number: int, *, reason: str = "") -> KeyVersion:
        """Approve the scheduled destruction of version ``number`` as a second actor (the
        two-person rule); the requester's own approval is refused. Records this manager's
        actor and authenticated identity."""
        from .destruction import approve_destroy

        def operation(ring: Ring, now: dt.datetime) -> ops.Change:
            return approve_destroy(
                ring, number, actor=self.actor, identity=self.identity, now=now, reason=reason
            )

        return ops.result(self.apply(name, "approve-destroy", operation, number))
