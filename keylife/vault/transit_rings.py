"""Transit-resident rings: keys that never leave Vault, their versions under keylife's lifecycle.

A transit-resident ring ``NAME`` is the Transit key ``kl-NAME`` (non-exportable, no plaintext
backup, not deletable) plus the KV v2 document ``tk/NAME`` in keylife's mount that holds each
version's state and dates (check-and-set; :mod:`keylife.vault.transit_doc`). Applications
encrypt and decrypt through Vault; keylife never sees key material.

The rings are ordinary lifecycle rings (:meth:`TransitRings.load`): ``keylife rotate`` plans
them with :func:`keylife.rotation.plan.plan_ring` and applies one step at a time with
:meth:`TransitRings.apply`. Every state change goes through the lifecycle's transition table,
and is recorded in keylife's audit chain (ring ``transit:NAME``). Transit's floors are derived
from the states and re-applied (idempotently, only ever raised) after every change:

- ``min_encryption_version`` = the lowest version that is still ``active``;
- ``min_decryption_version`` = one above the highest compromised or destroyed version;
  versions below it are trimmed (``trim``), so they are gone from Vault.

Transit encrypts with its newest version, so a new version is active at once and supersedes
the older ones (they still decrypt); a staged rotation is a rotation here. Transit floors are
floors, not sets: compromising or destroying *v* makes every older version unusable too
(older versions not already gone are destroyed, reason "below the decryption floor").
Compromising (or deactivating, when the planner asks) the newest version rotates first, so a
usable version remains. Creation and rotation are held to the policy like any key
(:mod:`keylife.vault.transit_policy`); a compromise response rotates regardless.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from .. import destruction as ds
from ..audit import AuditEntry, AuditSink
from ..clock import Clock
from ..errors import (
    AlreadyExistsError,
    ConflictError,
    KeylifeError,
    LifecycleError,
    NotFoundError,
)
from ..lifecycle import (
    TRANSITIONS,
    Action,
    KeyVersion,
    RevocationReason,
    Ring,
    State,
    new_version,
    supersede_older,
    transition,
)
from ..names import check_ring_name
from ..policy import Policy, Purpose, default_policy
from ..rotation.plan import Step, StepKind
from . import transit_doc as td
from .client import q
from .kv import KV, KvEntry
from .transit import Transit, TransitKeyInfo
from .transit_doc import TransitKeyView
from .transit_policy import check_new_version, check_rotation
from .transit_schedule import DestroyScheduling

__all__ = ["DOC_PREFIX", "TransitKeyView", "TransitRings"]

DOC_PREFIX = "tk/"
_RETRIES = 8


class TransitRings(DestroyScheduling["TransitKeyView"]):
    """The transit-resident rings of one store (``kv``: its KV mount, ``transit``: its Transit
    mount, ``audit``: its audit chain). ``policy`` gives the cryptoperiod of the
    ``data-encryption`` purpose, which dates each active version's scheduled end."""

    def __init__(
        self,
        kv: KV,
        transit: Transit,
        audit: AuditSink,
        *,
        actor: str,
        clock: Clock,
        policy: Policy | None = None,
        fence: Callable[[str], None] | None = None,
    ) -> None:
        #: called with the ring's name before each write (the store's lease fencing)
        self.fence = fence or (lambda _name: None)
        self.kv = kv
        self.transit = transit
        self.audit = audit
        self.actor = actor
        self.clock = clock
        self.policy = policy or default_policy()

    @property
    def cryptoperiod(self) -> dt.timedelta:
        return self.policy.rules(Purpose.DATA_ENCRYPTION).cryptoperiod

    def _period(self, doc: Mapping[str, Any]) -> dt.timedelta:
        """The cryptoperiod of the purpose a ``tk/NAME`` document records."""
        return self.policy.rules(Purpose(td.purpose_of(doc))).cryptoperiod

    def _refused(self, action: str, name: str, at: dt.datetime, exc: KeylifeError) -> None:
        """Audit a request the policy refused (the caller raises ``exc``)."""
        outcome = f"failure: {exc}"
        self.audit.append_audit([AuditEntry(at, self.actor, action, td.label(name), None, outcome)])

    def _check_rotation(self, name: str, at: dt.datetime) -> None:
        """Refuse (audited) a rotation the policy does not allow (:mod:`.transit_policy`)."""
        got, _info = self._read(name)
        try:
            check_rotation(
                self.policy, name, str(got.data.get("type")), td.purpose_of(got.data), at
            )
        except KeylifeError as exc:
            self._refused("rotate", name, at, exc)
            raise

    # ---- reading ----------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(
            k for k in self.kv.list(DOC_PREFIX, what="list transit rings") if "/" not in k
        )

    def _read(self, name: str) -> tuple[KvEntry, TransitKeyInfo]:
        check_ring_name(name)
        got = self.kv.read(f"{DOC_PREFIX}{q(name)}", what=f"read transit ring {name}")
        if got is None:
            raise NotFoundError(f"no transit-resident ring named {name!r}")
        info = self.transit.key(td.KEY_PREFIX + name)
        if info is None:
            raise NotFoundError(f"transit ring {name}: no Transit key {td.KEY_PREFIX}{name}")
        return got, info.check_sound()

    def _view(
        self, got: KvEntry, info: TransitKeyInfo, now: dt.datetime, fresh_after: int, why: str
    ) -> tuple[Ring, Ring]:
        """``(stored, adopted)``: the ring as its document has it, and with the versions
        Transit has beyond it."""
        period = self._period(got.data)
        stored = td.decode(got.data, got.version, cryptoperiod=period)
        adopted = td.adopt(
            stored,
            info,
            now=now,
            fresh_after=fresh_after,
            actor=self.actor,
            cryptoperiod=period,
            reason=why,
        )
        return stored, adopted

    def load(self, name: str) -> Ring:
        """The ring as the lifecycle sees it (versions Transit has beyond the record included)."""
        got, info = self._read(name)
        return self._view(got, info, self.clock.now(), info.latest_version, "")[1]

    def show(self, name: str) -> TransitKeyView:
        got, info = self._read(name)
        ring = self._view(got, info, self.clock.now(), info.latest_version, "")[1]
        return TransitKeyView(ring, str(got.data.get("type")), info.floors())

    # ---- the one write ------------------------------------------------------------------------

    def _change(
        self,
        name: str,
        now: dt.datetime,
        change: Callable[[Ring], Ring],
        *,
        fresh_after: int | None = None,
        why: str = "",
    ) -> TransitKeyView:
        """Read, adopt the versions Transit has beyond the record, apply ``change``, write with
        check-and-set (retried on conflict), audit the new lifecycle events, then raise
        Transit's floors to what the states imply."""
        for _ in range(_RETRIES):
            got, info = self._read(name)
            after = info.latest_version if fresh_after is None else fresh_after
            stored, view = self._view(got, info, now, after, why)
            new = change(view)
            key_type = str(got.data.get("type"))
            doc = td.encode(new, key_type)
            revision = got.version
            if doc != got.data:
                self.fence(f"transit:{name}")
                try:
                    revision = self.kv.cas_write(
                        f"{DOC_PREFIX}{q(name)}",
                        doc,
                        cas=got.version,
                        what=f"write transit ring {name}",
                        ours=lambda d, doc=doc: d == doc,  # type: ignore[misc]
                    )
                except ConflictError:
                    continue
                self.audit.append_audit(td.audit_entries(stored, new))
            return TransitKeyView(
                replace(new, revision=revision), key_type, self._sync(new, info).floors()
            )
        raise ConflictError(f"transit ring {name} kept changing underneath")

    def _sync(self, ring: Ring, info: TransitKeyInfo) -> TransitKeyInfo:
        """Raise Transit's floors to what ``ring``'s states imply and trim below the decryption
        floor. Idempotent; floors never go down. Returns Transit's view afterwards."""
        key = info.name
        dec, enc = td.floors(ring)
        dec = max(dec, info.min_decryption_version)
        enc = max(enc, info.min_encryption_version, dec)
        changed = False
        if (dec, enc) != (info.min_decryption_version, info.min_encryption_version):
            self.transit.set_floors(key, min_decryption=dec, min_encryption=enc)
            changed = True
        if dec > 1 and dec > info.min_available_version:
            self.transit.trim(key, dec)
            changed = True
        fresh = self.transit.key(key) if changed else info
        return fresh or info

    # ---- the runner's contract ------------------------------------------------------------------

    def apply(self, name: str, step: Step, now: dt.datetime) -> int | None:
        """Execute one step that :func:`keylife.rotation.plan.plan_ring` planned for ``name``.

        ROTATE/STAGE: Transit rotate and a new active version (returns its number);
        ACTIVATE/DEACTIVATE/DESTROY: the lifecycle transition and Transit's floors. A step
        another run already did changes nothing (returns None). Every change is audited.
        """
        kind, number = step.kind, step.version
        if kind in (StepKind.ROTATE, StepKind.STAGE):
            ring = self.load(name)
            primary = ring.primary(now)
            if primary is not None and (number is None or primary.number > number):
                return None  # rotated already
            self._check_rotation(name, now)
            return self._rotate(name, now, step.reason).latest
        if number is None or kind not in (
            StepKind.ACTIVATE,
            StepKind.DEACTIVATE,
            StepKind.DESTROY,
        ):
            raise LifecycleError(
                f"transit ring {name}: a {kind.value} step does not apply to a transit-resident "
                "ring (rotate, stage, activate, deactivate and destroy do)"
            )
        action = Action(kind.value)
        ring = self.load(name)
        version = ring.get(number)
        if version is None or (version.state, action) not in TRANSITIONS:
            return None  # done already (or gone)
        if action is Action.DEACTIVATE and number == ring.next_version - 1:
            # Transit always encrypts with its newest version: it stops by a successor
            self._check_rotation(name, now)
            return self._rotate(name, now, f"v{number}: {step.reason}").latest
        if action is Action.ACTIVATE:
            self._change(name, now, lambda r: self._activate(r, number, now, step.reason))
        elif action is Action.DEACTIVATE:
            self._change(name, now, lambda r: self._deactivate(r, number, now, step.reason))
        else:
            self._change(name, now, lambda r: self._retire(r, number, now, step.reason, False))
        return None

    # ---- changes ----------------------------------------------------------------------------

    def _rotate(self, name: str, now: dt.datetime, reason: str) -> TransitKeyView:
        _got, info = self._read(name)
        self.fence(f"transit:{name}")
        self.transit.rotate(info.name)
        return self._change(name, now, lambda r: r, fresh_after=info.latest_version, why=reason)

    def _activate(self, ring: Ring, number: int, now: dt.datetime, reason: str) -> Ring:
        v = ring.get(number)
        if v is None or (v.state, Action.ACTIVATE) not in TRANSITIONS:
            return ring
        ring = ring.replace_version(
            transition(v, Action.ACTIVATE, at=now, actor=self.actor, reason=reason)
        )
        return supersede_older(ring, number, now=now, actor=self.actor)

    def _deactivate(self, ring: Ring, number: int, now: dt.datetime, reason: str) -> Ring:
        """``number`` and every older version still protecting stop encrypting."""
        for v in ring.versions:
            if v.number <= number and (v.state, Action.DEACTIVATE) in TRANSITIONS:
                ring = ring.replace_version(
                    transition(
                        v,
                        Action.DEACTIVATE,
                        at=now,
                        actor=self.actor,
                        reason=reason if v.number == number else f"older than v{number}",
                        deactivation=min(now, v.deactivation or now),
                    )
                )
        return ring

    def _retire(
        self, ring: Ring, number: int, now: dt.datetime, reason: str, compromise: bool
    ) -> Ring:
        """``number`` compromised or destroyed; every older version not already gone is
        destroyed too (Transit's decryption floor rises above ``number``). Each change is a
        lifecycle transition; a version already there is left as it is."""
        floor = f"below the decryption floor v{number + 1}"
        note = f"; Transit decrypts only v{number + 1} and newer"
        for v in ring.versions:
            target = v.number == number
            if v.number > number or (not target and v.state in td.GONE):
                continue
            if target and compromise:
                if (v.state, Action.COMPROMISE) not in TRANSITIONS:
                    continue
                v = transition(
                    v,
                    Action.COMPROMISE,
                    at=now,
                    actor=self.actor,
                    reason=(reason or "compromised") + note,
                    deactivation=min(now, v.deactivation or now),
                    compromise_date=now,
                    revocation_reason=RevocationReason.KEY_COMPROMISE,
                    revocation_message=reason,
                )
            else:
                v = self._destroyed(v, now, reason if target else floor, note if target else "")
            ring = ring.replace_version(v)
        return ring

    def _destroyed(self, v: KeyVersion, now: dt.datetime, why: str, note: str) -> KeyVersion:
        """``v`` destroyed through the transition table (deactivated first if it protects)."""
        if (v.state, Action.DEACTIVATE) in TRANSITIONS:
            v = transition(
                v,
                Action.DEACTIVATE,
                at=now,
                actor=self.actor,
                reason=why or "destroyed",
                deactivation=min(now, v.deactivation or now),
            )
        if (v.state, Action.DESTROY) in TRANSITIONS:
            v = transition(
                v,
                Action.DESTROY,
                at=now,
                actor=self.actor,
                reason=(why or "destroyed") + note,
                destroy_date=now,
                revocation_message=why,
            )
        return v

    # ---- commands (keylife vault transit ...) -------------------------------------------------

    def create(
        self,
        name: str,
        key_type: str = "aes256-gcm96",
        *,
        purpose: str = td.PURPOSE,
        now: dt.datetime | None = None,
    ) -> TransitKeyView:
        """The Transit key ``kl-NAME`` and its record: v1 active. The type and its strength
        must be allowed for ``purpose`` on the day, as for ``keylife key create``."""
        check_ring_name(name)
        spec = td.spec_for(key_type)
        at = now or self.clock.now()
        try:
            dates = check_new_version(self.policy, key_type, purpose, at)
        except KeylifeError as exc:
            self._refused("create", name, at, exc)
            raise
        key = td.KEY_PREFIX + name
        if self.transit.key(key) is not None:
            raise AlreadyExistsError(
                f"Transit key {key} exists already; choose another name (or `keylife vault "
                f"transit show {name}` if it is keylife's)"
            )
        self.transit.create_key(key, key_type)
        empty = Ring(name, spec, Purpose.parse(purpose).value, at, attributes={td.TRANSIT_KEY: key})
        ring, _v1 = new_version(
            empty,
            fingerprint=f"transit:{name}:v1",
            now=at,
            actor=self.actor,
            activation=dates.activation,
            deactivation=dates.deactivation,
            reason=f"transit-resident {key_type} key {key}",
        )
        self.kv.cas_write(
            f"{DOC_PREFIX}{q(name)}",
            td.encode(ring, key_type),
            cas=0,
            what=f"write transit ring {name}",
            ours=lambda _d: True,
        )
        self.audit.append_audit(td.audit_entries(empty, ring))
        return self.show(name)

    def rotate(
        self, name: str, *, now: dt.datetime | None = None, reason: str = "manual rotation"
    ) -> TransitKeyView:
        """A new version, active at once; older versions stop encrypting (still decrypt).
        Refused when the policy no longer allows the key's type for its purpose."""
        at = now or self.clock.now()
        self._check_rotation(name, at)
        return self._rotate(name, at, reason)

    def deactivate(
        self, name: str, version: int, *, now: dt.datetime | None = None, reason: str = ""
    ) -> TransitKeyView:
        """``version`` and every older active version stop encrypting (still decrypt)."""
        at = now or self.clock.now()
        ring = self.load(name)
        self._allowed(ring, version, Action.DEACTIVATE, at)
        if version >= ring.next_version - 1:
            raise LifecycleError(
                f"v{version} is the newest version of {name}: rotate before deactivating it"
            )
        why = reason or "deactivated by an operator"
        return self._change(name, at, lambda r: self._deactivate(r, version, at, why))

    def compromise(
        self, name: str, version: int, *, now: dt.datetime | None = None, reason: str = ""
    ) -> TransitKeyView:
        """``version`` compromised: Transit refuses to decrypt it and trims it (and every older
        version, recorded as destroyed). The newest version is rotated first."""
        at = now or self.clock.now()
        ring = self.load(name)
        self._allowed(ring, version, Action.COMPROMISE, at)
        if version >= ring.next_version - 1:
            self._rotate(name, at, f"v{version} compromised")
        return self._change(name, at, lambda r: self._retire(r, version, at, reason, True))

    def destroy(
        self,
        name: str,
        version: int,
        *,
        now: dt.datetime | None = None,
        reason: str = "",
        wait: dt.timedelta | None = None,
    ) -> TransitKeyView:
        """Schedule the destruction of ``version`` (and so of every older one: Transit's floor)
        the policy's ``destroy_wait`` later, as for any ring (:mod:`keylife.destruction`);
        ``keylife rotate`` trims it from Transit when due. Due at once (a compromised version,
        ``wait`` 0, no second actor required): done now."""
        at = now or self.clock.now()
        ring = self.load(name)
        v = self._allowed(ring, version, None, at)
        if version >= ring.next_version - 1:
            raise LifecycleError(f"v{version} is the newest version of {name}: rotate first")
        if v.state in (State.DESTROYED, State.DESTROYED_COMPROMISED):
            self._allowed(ring, version, Action.DESTROY, at)  # says why not
        p, why = self.policy, reason or "destroyed by an operator"
        view = self._scheduling(
            name,
            at,
            lambda r, who: ds.schedule_destroy(
                r, version, **who, wait=p.destroy_wait if wait is None else wait,
                minimum=p.destroy_wait, reason=why,
            ),
        )  # fmt: skip
        scheduled = view.ring.get(version)
        if scheduled and ds.ready(scheduled, at, second_actor=p.destroy_requires_second_actor):
            return self._change(name, at, lambda r: self._retire(r, version, at, why, False))
        return view

    def _allowed(
        self, ring: Ring, number: int, action: Action | None, at: dt.datetime
    ) -> KeyVersion:
        """Version ``number``; :class:`InvalidTransitionError` (naming what is allowed) when
        ``action`` is not allowed from its state."""
        v = ring.get(number)
        if v is None:
            raise NotFoundError(f"transit ring {ring.name} has no version {number}")
        if action is not None:
            transition(v, action, at=at, actor=self.actor)
        return v
