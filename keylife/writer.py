"""Reading rings and committing changes with check-and-set: :class:`RingWriter`, the part of
the manager every service builds on (the manager, the runner's per-step view, the CA adapter).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Self

from . import operations as ops
from .accesslog import ReadLog
from .audit import AuditEntry, AuditRecord, ChainReport, verify_chain
from .auditstate import ring_digest
from .clock import Clock, SystemClock, as_utc
from .contention import cas_attempts, cas_backoff
from .errors import (
    ConflictError,
    KeylifeError,
    LifecycleError,
    MaterialUnavailableError,
    NotFoundError,
    PolicyError,
    SpecNotAllowedError,
)
from .identity import default_actor, os_identity
from .lifecycle import KeyVersion, Ring
from .material import KeyMaterial
from .policy import Policy, Purpose, default_policy
from .specs import KeySpec, parse_spec
from .store.base import KeyStore

__all__ = ["Operation", "RingWriter"]

Operation = Callable[[Ring, dt.datetime], ops.Change]


class RingWriter:
    """A store, a policy, an actor and a clock: reads rings and commits operations."""

    def __init__(
        self,
        store: KeyStore,
        *,
        policy: Policy | None = None,
        actor: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or default_policy()
        self.actor = actor or default_actor()
        self.clock: Clock = clock or SystemClock()
        self._identity: str | None = None
        #: loads of secret material, recorded when the policy sets audit_reads
        self._read_log = (
            ReadLog(self.store.append_audit, self.entry, self.now)
            if self.policy.audit_reads
            else None
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        from . import counters

        try:
            if self._read_log is not None:
                self._read_log.flush()
            counters.close(self.store)  # what this process counted, before the store closes
        finally:
            self.store.close()

    def now(self) -> dt.datetime:
        return as_utc(self.clock.now())

    @property
    def identity(self) -> str:
        """Who the store authenticated (asked once): the store's ``authenticated_identity()``
        when it has one (Vault: the token), else the OS account (:func:`os_identity`). Every
        audit record this writer makes carries it; :attr:`actor` is "on behalf of"."""
        if self._identity is None:
            ask = getattr(self.store, "authenticated_identity", None)
            self._identity = str(ask()) if callable(ask) else os_identity()
        return self._identity

    # ---- reading ----------------------------------------------------------------------------

    def load(self, name: str) -> Ring:
        ring = self.store.load_ring(name)
        if ring is None:
            raise NotFoundError(f"no ring named {name!r}")
        return ring

    def rings(self) -> list[Ring]:
        return self.store.load_rings()

    def material(self, version: KeyVersion) -> KeyMaterial:
        if not version.has_material:
            raise MaterialUnavailableError(
                f"{version.ring} v{version.number} is {version.state.value}; its material is gone"
            )
        from .keygen import check_fingerprint  # cryptography loads on first use only

        material = self.store.get_material(version.ring, version.number, version.spec)
        check_fingerprint(material, version.fingerprint, version.ring, version.number)
        if self._read_log is not None:
            self._read_log.loaded(version.ring, version.number)
        return material

    def share_read_log(self, other: RingWriter) -> None:
        """Record loads of secret material in ``other``'s batches (a view sharing its store),
        which ``other.close()`` flushes."""
        self._read_log = other._read_log

    def audit_records(self, ring: str | None = None) -> list[AuditRecord]:
        records = self.store.read_audit()
        return records if ring is None else [r for r in records if r.ring == ring]

    def verify_audit(self) -> ChainReport:
        head_fn = getattr(self.store, "audit_head", None)
        head = head_fn() if callable(head_fn) else None
        return verify_chain(self.store.read_audit(), head=head)

    # ---- writing ----------------------------------------------------------------------------

    def entry(
        self,
        action: str,
        ring: str | None,
        version: int | None,
        reason: str = "",
        *,
        outcome: str = "success",
    ) -> AuditEntry:
        """An audit entry by this manager's identity and actor, now."""
        return AuditEntry(
            self.now(), self.actor, action, ring, version, outcome, reason, self.identity
        )

    def stamped(self, entries: Sequence[AuditEntry]) -> list[AuditEntry]:
        """``entries`` with this writer's authenticated identity where they have none."""
        return [e if e.identity else replace(e, identity=self.identity) for e in entries]

    def record_failure(
        self, action: str, ring: str | None, version: int | None, exc: Exception
    ) -> None:
        """Audit a refused or failed request (best effort: the failure is what the caller sees)."""
        with contextlib.suppress(KeylifeError):
            entry = self.entry(action, ring, version, outcome=f"failure: {exc}")
            self.store.append_audit([entry])

    def apply(
        self,
        name: str,
        action: str,
        operation: Operation,
        version: int | None = None,
        *,
        loaded: Ring | None = None,
        material: KeyMaterial | None = None,
    ) -> ops.Change:
        """Load ring ``name``, compute ``operation(ring, now)`` and commit it with check-and-set,
        retrying against concurrent writers. ``material`` goes with the version the change
        creates. ``loaded`` is a copy the caller just read: the first attempt uses it (one
        read fewer against a remote store); a lost check-and-set reloads as usual.
        """
        try:
            for attempt in cas_attempts():
                ring = loaded if loaded is not None and loaded.name == name else self.load(name)
                loaded = None
                change = operation(ring, self.now())
                if change.empty:
                    return change
                try:
                    self.commit(change, expected_revision=ring.revision, material=material)
                except ConflictError:
                    cas_backoff(attempt)
                    continue
                return change
            raise ConflictError(f"ring {name} kept changing underneath; try again")
        except (LifecycleError, MaterialUnavailableError, ConflictError, PolicyError) as exc:
            self.record_failure(action, name, version, exc)
            raise

    def commit(
        self,
        change: ops.Change,
        *,
        expected_revision: int,
        material: KeyMaterial | None = None,
    ) -> None:
        """Write ``change`` in one check-and-set (``material`` for the version it creates)."""
        if len(change.new_versions) > 1 or (change.new_versions and material is None):
            raise LifecycleError("a change that creates a version needs its material")
        digest = ring_digest(change.ring)  # what the log says this ring now is
        self.store.commit(
            change.ring,
            expected_revision=expected_revision,
            materials={n: material for n in change.new_versions if material is not None},
            destroy=list(change.destroy),
            audit=[replace(e, ring_digest=digest) for e in self.stamped(change.audit)],
        )

    def check_spec(self, spec: KeySpec, purpose: Purpose, at: dt.datetime) -> None:
        """Refuse ``spec`` for ``purpose`` at ``at`` unless the policy allows it."""
        self.policy.check(spec, purpose, at)

    def _spec_for(self, type: str | None, purpose: Purpose, key_bits: int | None) -> KeySpec:
        now = self.now()
        rules = self.policy.rules(purpose)
        try:
            spec = parse_spec(type or rules.default_type, key_bits=key_bits)
        except SpecNotAllowedError as exc:
            allowed = ", ".join(s.name for s in self.policy.allowed_specs(purpose, now))
            raise SpecNotAllowedError(
                f"{str(exc).split('. Allowed types')[0]}. Allowed for {purpose.value} on "
                f"{now.date().isoformat()}: {allowed}"
            ) from None
        return spec
