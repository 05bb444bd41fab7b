"""The service that composes: :class:`KeyManager` reads a ring, asks :mod:`keylife.operations`
for the change a request makes, and commits it with check-and-set retries.

``manager.ring(name)`` gives a :class:`KeyRing` whose ``primary()`` protects and ``version(n)``
processes. Opening stores and resolving configuration live in :mod:`keylife.compose`
(``keylife.open()``); certificate work goes through the :class:`CertificateAuthority` protocol,
which the ACME package implements and the composition root injects.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from . import operations as ops
from .audit import AuditEntry, AuditRecord, ChainReport, verify_chain
from .certificates import ACME_SETTINGS, CERTIFICATE_PEM, CERTIFICATE_REVOKED
from .clock import Clock, SystemClock, as_utc
from .errors import (
    AlreadyExistsError,
    ConflictError,
    KeylifeError,
    LifecycleError,
    MaterialUnavailableError,
    NotFoundError,
    SpecNotAllowedError,
)
from .identity import default_actor
from .lifecycle import Action, KeyVersion, RevocationReason, Ring
from .loaded import LoadedKey
from .material import KeyMaterial
from .policy import Policy, Purpose, default_policy
from .specs import KeySpec, parse_spec
from .store.base import KeyStore

__all__ = [
    "CERTIFICATE_REVOKED",
    "CertificateAuthority",
    "CompromiseResult",
    "KeyManager",
    "KeyRing",
    "LoadedKey",
    "versions_by_state",
]

#: How often a check-and-set write is retried against concurrent writers.
CAS_RETRIES = 8

Operation = Callable[[Ring, dt.datetime], ops.Change]


class CertificateAuthority(Protocol):
    """What the manager needs from a CA; ``keylife.acme.AcmeAuthority`` implements it."""

    def renew(self, manager: KeyManager, ring: str, now: dt.datetime) -> KeyVersion:
        """A new key and certificate for ``ring``, stored as its new version."""
        ...

    def revoke(self, manager: KeyManager, ring: str, version: int, reason: str) -> None:
        """Revoke the certificate of ``ring`` v``version`` at the CA."""
        ...

    def refresh_renewal_info(
        self, manager: KeyManager, ring: str, version: int, now: dt.datetime
    ) -> None:
        """Ask the CA for a fresh renewal window (ARI) and record it on the version."""
        ...

    def rollover_account(self, manager: KeyManager, ring: str) -> int:
        """Replace an ACME account ring's key through the CA (keyChange); the new version."""
        ...


class NoCertificateAuthority:
    """The authority of a manager built without one: every certificate request is refused."""

    def _refuse(self) -> KeylifeError:
        return KeylifeError(
            "no certificate authority is configured; open the store with keylife.open()"
        )

    def renew(self, manager: KeyManager, ring: str, now: dt.datetime) -> KeyVersion:
        raise self._refuse()

    def revoke(self, manager: KeyManager, ring: str, version: int, reason: str) -> None:
        raise self._refuse()

    def refresh_renewal_info(
        self, manager: KeyManager, ring: str, version: int, now: dt.datetime
    ) -> None:
        raise self._refuse()

    def rollover_account(self, manager: KeyManager, ring: str) -> int:
        raise self._refuse()


@dataclass(frozen=True)
class CompromiseResult:
    """What ``compromise`` did. ``replacement`` is None only on a certificate ring whose CA
    could not issue the new certificate yet (``keylife rotate`` retries)."""

    compromised: KeyVersion
    replacement: KeyVersion | None
    dependents: tuple[str, ...]


class KeyRing:
    """A service's view of one ring."""

    def __init__(self, manager: KeyManager, name: str, loaded: Ring | None = None) -> None:
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


class KeyManager:
    """Creates, changes and reads rings under a policy, with an audit record of every change."""

    def __init__(
        self,
        store: KeyStore,
        *,
        policy: Policy | None = None,
        actor: str | None = None,
        clock: Clock | None = None,
        authority: CertificateAuthority | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or default_policy()
        self.actor = actor or default_actor()
        self.clock: Clock = clock or SystemClock()
        self.authority: CertificateAuthority = authority or NoCertificateAuthority()

    def at(self, clock: Clock) -> KeyManager:
        """The same store, policy, actor and authority, seeing time through ``clock``."""
        return KeyManager(
            self.store,
            policy=self.policy,
            actor=self.actor,
            clock=clock,
            authority=self.authority,
        )

    # ---- context management -----------------------------------------------------------------

    def __enter__(self) -> KeyManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def now(self) -> dt.datetime:
        return as_utc(self.clock.now())

    # ---- reading ----------------------------------------------------------------------------

    def ring(self, name: str) -> KeyRing:
        """A service's view of ring ``name``; raises NotFoundError now if there is none."""
        return KeyRing(self, name, self.load(name))

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
        return self.store.get_material(version.ring, version.number, version.spec)

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
        """An audit entry by this manager's actor, now."""
        return AuditEntry(self.now(), self.actor, action, ring, version, outcome, reason)

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
        materials: Mapping[int, KeyMaterial] | None = None,
        material: KeyMaterial | None = None,
    ) -> ops.Change:
        """Load ring ``name``, compute ``operation(ring, now)`` and commit it with check-and-set,
        retrying against concurrent writers. ``material`` goes with the version the change
        creates. ``loaded`` is a copy the caller just read: the first attempt uses it (one
        read fewer against a remote store); a lost check-and-set reloads as usual.
        """
        try:
            for _ in range(CAS_RETRIES):
                ring = loaded if loaded is not None and loaded.name == name else self.load(name)
                loaded = None
                change = operation(ring, self.now())
                if change.empty:
                    return change
                try:
                    self.commit(change, expected_revision=ring.revision, material=material)
                except ConflictError:
                    continue
                return change
            raise ConflictError(f"ring {name} kept changing underneath; try again")
        except (LifecycleError, MaterialUnavailableError, ConflictError) as exc:
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
        self.store.commit(
            change.ring,
            expected_revision=expected_revision,
            materials={n: material for n in change.new_versions if material is not None},
            destroy=list(change.destroy),
            audit=list(change.audit),
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

    def create_ring(
        self,
        name: str,
        type: str | None = None,
        purpose: str = "data-encryption",
        *,
        activate_at: dt.datetime | None = None,
        deactivate_at: dt.datetime | None = None,
        key_bits: int | None = None,
        attributes: Mapping[str, str] | None = None,
        protect_stop_at: dt.datetime | None = None,
        process_start_at: dt.datetime | None = None,
        material: KeyMaterial | None = None,
        version_attributes: Mapping[str, str] | None = None,
        reason: str = "",
    ) -> KeyVersion:
        """Create ring ``name`` with its first version.

        ``material`` stores externally produced material (e.g. a certificate's key) as the
        first version instead of generating it; its spec must be allowed like any other.
        ``version_attributes`` are attached to that version (certificate, chain, order URL).

        ``protect_stop_at`` ends the period in which the version applies protection before its
        deactivation (SP 800-57's originator-usage period); ``process_start_at`` starts the
        period in which it may process (recipient-usage period) — for purposes that separate
        the two.

        ``type`` defaults to the policy's default for ``purpose``; the version activates at
        ``activate_at`` (default now) and deactivates at ``deactivate_at`` (default: activation
        plus the purpose's cryptoperiod).
        """
        from .keygen import fingerprint, generate

        now = self.now()
        try:
            purpose_ = Purpose.parse(purpose)
            spec = (
                material.spec if material is not None else self._spec_for(type, purpose_, key_bits)
            )
            self.check_spec(spec, purpose_, now)
            activation = now if activate_at is None else as_utc(activate_at)
            deactivation = (
                activation + self.policy.rules(purpose_).cryptoperiod
                if deactivate_at is None
                else as_utc(deactivate_at)
            )
            if material is None:
                material = generate(spec)
            change = ops.create_ring(
                name,
                spec,
                purpose_.value,
                ops.NewKey(fingerprint(material)),
                actor=self.actor,
                now=now,
                activation=activation,
                deactivation=deactivation,
                protect_stop=None if protect_stop_at is None else as_utc(protect_stop_at),
                process_start=None if process_start_at is None else as_utc(process_start_at),
                attributes=attributes,
                version_attributes=version_attributes,
                reason=reason,
            )
        except KeylifeError as exc:
            self.record_failure("create", name, None, exc)
            raise
        try:
            self.commit(change, expected_revision=0, material=material)
        except ConflictError:
            exists = AlreadyExistsError(f"ring {name!r} already exists")
            self.record_failure("create", name, None, exists)
            raise exists from None
        assert change.version is not None
        return change.version

    def add_version(
        self,
        name: str,
        material: KeyMaterial,
        *,
        activate_at: dt.datetime | None = None,
        deactivate_at: dt.datetime | None = None,
        attributes: Mapping[str, str] | None = None,
        reason: str = "added",
        supersede: bool = True,
    ) -> KeyVersion:
        """Store externally produced material (e.g. a certificate key) as a new version."""
        from .keygen import fingerprint

        purpose = Purpose.parse(self.load(name).purpose)
        self.check_spec(material.spec, purpose, self.now())
        key = ops.NewKey(fingerprint(material), material.spec)
        cryptoperiod = self.policy.rules(purpose).cryptoperiod

        def operation(ring: Ring, now: dt.datetime) -> ops.Change:
            activation = now if activate_at is None else as_utc(activate_at)
            deactivation = (
                activation + cryptoperiod if deactivate_at is None else as_utc(deactivate_at)
            )
            return ops.add_version(
                ring,
                key,
                actor=self.actor,
                now=now,
                activation=activation,
                deactivation=deactivation,
                attributes=attributes,
                reason=reason,
                supersede=supersede,
            )

        return _version_of(self.apply(name, "create", operation, material=material))

    def update_attributes(
        self,
        name: str,
        number: int,
        changes: Mapping[str, str | None],
        *,
        reason: str = "attributes updated",
    ) -> KeyVersion:
        """Set (or, with ``None``, remove) attributes of version ``number``, check-and-set.

        Attributes carry public data attached to a version (certificate, renewal window);
        never key material.
        """

        def operation(ring: Ring, now: dt.datetime) -> ops.Change:
            return ops.annotate(ring, number, changes, actor=self.actor, now=now, reason=reason)

        return _version_of(self.apply(name, "annotate", operation, number))

    def rotate(
        self,
        name: str,
        *,
        reason: str = "manual rotation",
        stage: dt.timedelta | None = None,
        loaded: Ring | None = None,
    ) -> KeyVersion:
        """Create a new version now, make it the primary and deactivate the old primary (with
        ``stage``: a pre-active successor that activates that much later)."""
        from .keygen import fingerprint, generate

        ring = loaded if loaded is not None else self.load(name)
        purpose = Purpose.parse(ring.purpose)
        try:
            self.check_spec(ring.spec, purpose, self.now())
        except KeylifeError as exc:
            self.record_failure("rotate", name, None, exc)
            raise
        material = generate(ring.spec)
        key = ops.NewKey(fingerprint(material))
        cryptoperiod = self.policy.rules(purpose).cryptoperiod

        def operation(r: Ring, now: dt.datetime) -> ops.Change:
            return ops.rotate(
                r,
                key,
                actor=self.actor,
                now=now,
                cryptoperiod=cryptoperiod,
                stage=stage,
                reason=reason,
            )

        change = self.apply(name, "rotate", operation, loaded=loaded, material=material)
        return _version_of(change)

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

        return _version_of(self.apply(name, action.value, operation, number, loaded=loaded))

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

    def destroy(self, name: str, number: int, *, reason: str = "") -> KeyVersion:
        """Erase the material of version ``number``; its metadata stays."""
        return self.transition(
            name, number, Action.DESTROY, reason=reason or "destroyed by operator"
        )

    def revoke(
        self,
        name: str,
        number: int,
        reason: str | RevocationReason,
        *,
        occurred_at: dt.datetime | None = None,
        message: str = "",
    ) -> KeyVersion:
        """Revoke version ``number`` with a KMIP / RFC 5280 reason.

        A compromise reason moves it to ``compromised`` (recording when it occurred); any
        other reason deactivates it, or, on an already deactivated version, records the reason.
        """
        why = reason if isinstance(reason, RevocationReason) else RevocationReason.parse(reason)
        occurred = as_utc(occurred_at) if occurred_at else None

        def operation(ring: Ring, now: dt.datetime) -> ops.Change:
            return ops.revoke(
                ring, number, why, actor=self.actor, now=now, occurred=occurred, message=message
            )

        return _version_of(self.apply(name, "revoke", operation, number))

    def compromise(
        self,
        name: str,
        *,
        version: int | None = None,
        reason: str | RevocationReason = RevocationReason.KEY_COMPROMISE,
        occurred_at: dt.datetime | None = None,
        message: str = "",
    ) -> CompromiseResult:
        """One-step compromise response: revoke the version (default: the current primary),
        create and activate a replacement, record a revocation notice, list dependents.

        On a certificate ring (ACME settings in the ring's ``acme`` attribute) the certificate
        is revoked at the CA with reason keyCompromise and the replacement is a new key with a
        new certificate from the CA; if the CA cannot be reached, ``replacement`` is None and
        the next ``keylife rotate`` issues it.
        """
        from .keygen import fingerprint, generate

        why = reason if isinstance(reason, RevocationReason) else RevocationReason.parse(reason)
        if not why.compromise:
            raise LifecycleError(
                "compromise needs a compromise reason; allowed: "
                f"{', '.join(r.value for r in RevocationReason if r.compromise)} (got {why.value})"
            )
        ring0 = self.load(name)
        now0 = self.now()
        if version is None:
            current = ring0.primary(now0)
            if current is None:
                raise LifecycleError(
                    f"ring {name} has no primary version; name the compromised one with --version"
                )
            version = current.number
        number = version
        certificate_ring = ACME_SETTINGS in ring0.attributes
        # A certificate ring's replacement comes from the CA, after this write.
        material = None if certificate_ring else generate(ring0.spec)
        replacement = None if material is None else ops.NewKey(fingerprint(material))
        occurred = as_utc(occurred_at) if occurred_at else now0
        cryptoperiod = self.policy.rules(Purpose.parse(ring0.purpose)).cryptoperiod

        def operation(ring: Ring, now: dt.datetime) -> ops.Change:
            return ops.compromise(
                ring,
                number,
                why,
                actor=self.actor,
                now=now,
                occurred=occurred,
                message=message,
                replacement=replacement,
                cryptoperiod=cryptoperiod,
            )

        change = self.apply(name, "compromise", operation, number, material=material)
        bad = _version_of(change)
        deps = list(change.notes)
        new = change.replacement
        if CERTIFICATE_PEM in bad.attributes:
            deps.append(self._revoke_compromised_certificate(name, bad))
        if certificate_ring:
            new, note = self._renew_certificate(name)
            deps.append(note)
        replacement_version = None if new is None else self.load(name).get(new.number)
        return CompromiseResult(bad, replacement_version, tuple(deps))

    # ---- certificates (through the injected CertificateAuthority) ---------------------------

    def renew_certificate(self, name: str) -> KeyVersion:
        """A new key and certificate from the CA for certificate ring ``name``."""
        return self.authority.renew(self, name, self.now())

    def refresh_renewal_info(self, name: str, number: int) -> None:
        """Ask the CA for a fresh renewal window for ``name`` v``number``."""
        self.authority.refresh_renewal_info(self, name, number, self.now())

    def rollover_account(self, name: str) -> int:
        """Replace ACME account ring ``name``'s key through the CA; the new version number."""
        return self.authority.rollover_account(self, name)

    def _renew_certificate(self, name: str) -> tuple[KeyVersion | None, str]:
        """A new key and certificate for a certificate ring, or None with the reason."""
        try:
            version = self.renew_certificate(name)
        except KeylifeError as exc:
            self.record_failure("renew-certificate", name, None, exc)
            return None, f"no replacement certificate yet ({exc}); `keylife rotate` will retry"
        return version, f"v{version.number} holds a new key and certificate from the CA"

    def _revoke_compromised_certificate(self, name: str, version: KeyVersion) -> str:
        try:
            self.revoke_certificate(name, version.number)
        except KeylifeError as exc:
            self.record_failure("revoke-certificate", name, version.number, exc)
            return (
                f"certificate of v{version.number} NOT revoked at the CA ({exc}); "
                "`keylife rotate` retries"
            )
        return f"certificate of v{version.number} revoked at the CA (keyCompromise)"

    def revoke_certificate(self, name: str, number: int, reason: str = "keyCompromise") -> None:
        """Revoke version ``number``'s certificate at its CA and record that it was done."""
        self.authority.revoke(self, name, number, reason)
        self.update_attributes(
            name,
            number,
            {CERTIFICATE_REVOKED: self.now().isoformat()},
            reason=f"certificate revoked at the CA ({reason})",
        )


def _version_of(change: ops.Change) -> KeyVersion:
    assert change.version is not None
    return change.version


def versions_by_state(ring: Ring) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for v in ring.versions:
        out.setdefault(v.state.value, []).append(v.number)
    return out
