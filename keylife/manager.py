"""The service that composes: :class:`KeyManager` reads a ring, asks :mod:`keylife.operations`
for the change a request makes, and commits it with check-and-set retries.

``manager.ring(name)`` gives a :class:`KeyRing` whose ``primary()`` protects and ``version(n)``
processes. Opening stores and resolving configuration live in :mod:`keylife.compose`
(``keylife.open()``); certificate work goes through the :class:`CertificateAuthority` protocol,
which the ACME package implements and the composition root injects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import NoReturn, Protocol

from . import operations as ops
from . import revocation
from .auditstate import ring_digest
from .certificates import CERTIFICATE_PEM, CERTIFICATE_REVOKED, is_certificate_ring
from .clock import Clock, as_utc
from .contention import cas_attempts, cas_backoff
from .errors import (
    ConflictError,
    KeylifeError,
    LifecycleError,
    RingNotEmptyError,
    SpecNotAllowedError,
    VaultPermissionError,
)
from .keyring import KeyRing
from .lifecycle import KeyVersion, RevocationReason, Ring
from .loaded import LoadedKey
from .policy import Policy, Purpose
from .rotation.plan import rotation_due
from .signing import readable_published
from .specs import KeySpec, parse_spec
from .store.base import KeyStore
from .transitions import VersionTransitions

__all__ = [
    "CERTIFICATE_REVOKED",
    "CertificateAuthority",
    "CompromiseResult",
    "KeyManager",
    "KeyRing",
    "LoadedKey",
]


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


class NotPublic:
    """A :class:`RingWriter` method the public :class:`KeyManager` does not offer: reading it
    raises AttributeError naming the documented way (so ``hasattr`` is False). keylife's own
    services call the writer's method directly (``RingWriter.material(manager, version)``)."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __get__(self, obj: object, owner: type | None = None) -> NoReturn:
        raise AttributeError(self.message)


def _not_empty(name: str, holding: list[KeyVersion]) -> str:
    """Why ring ``name`` cannot be deleted yet, and the commands that make it deletable."""
    listed = ", ".join(f"v{v.number} ({v.state.value})" for v in holding)
    return (
        f"ring {name} cannot be deleted: {listed} still "
        f"{'holds' if len(holding) == 1 else 'hold'} key material; destroy each "
        f"first (`keylife key destroy {name} N`; a version that still protects is deactivated "
        f"before that: `keylife key deactivate {name} N`)"
    )


class KeyManager(VersionTransitions):
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
        super().__init__(store, policy=policy, actor=actor, clock=clock)
        self.authority: CertificateAuthority = authority or NoCertificateAuthority()

    #: raw material is not public API (issue 11 item 4): usable versions come as LoadedKeys from
    #: ``ring(name).primary()`` / ``.version(n)``, a compromised one (process-only, audited)
    #: from ``ring(name).recover(n, reason=...)``
    material = NotPublic(
        "KeyManager.material() is not public API: use manager.ring(NAME).primary() or "
        ".version(N) for a usable version, and manager.ring(NAME).recover(N, reason=...) "
        "(`keylife key recover`) for a compromised one"
    )

    def at(self, clock: Clock) -> KeyManager:
        """The same store, policy, actor and authority, seeing time through ``clock``."""
        view = KeyManager(
            self.store,
            policy=self.policy,
            actor=self.actor,
            clock=clock,
            authority=self.authority,
        )
        view.share_read_log(self)  # its loads are batched (and flushed) with this manager's
        return view

    def ring(self, name: str) -> KeyRing:
        """A service's view of ring ``name``; raises NotFoundError now if there is none.

        A token refused the ring but allowed its published public keys (Vault's verify-only
        policy) gets a view whose ``public_keys()``, ``jwks()`` and ``public_key()`` read
        those; everything else it is asked stays refused."""
        try:
            return KeyRing(self, name, self.load(name))
        except VaultPermissionError:
            if not readable_published(self.store, name):
                raise
            return KeyRing(self, name, public_only=True)

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

        return ops.result(self.apply(name, "annotate", operation, number))

    def rotate(
        self,
        name: str,
        *,
        reason: str = "manual rotation",
        stage: dt.timedelta | None = None,
        loaded: Ring | None = None,
        only_if_due: bool = False,
        counts: Mapping[int, int] | None = None,
    ) -> KeyVersion:
        """Create a new version now, make it the primary and deactivate the old primary (with
        ``stage``: a pre-active successor that activates that much later). With
        ``only_if_due`` (the runner) the ring is planned again on every attempt, so a retry after
        a lost check-and-set never rotates twice (``counts``: the messages per version the plan
        saw, for a rotation at ``max_messages``). On a certificate
        ring the new key comes with a new certificate from the CA (:meth:`renew_certificate`)."""
        from .keygen import fingerprint, generate

        ring = loaded if loaded is not None else self.load(name)
        if is_certificate_ring(ring):  # a certificate's key comes with its certificate
            return self.renew_certificate(name)
        purpose = Purpose.parse(ring.purpose)
        try:
            spec = self._successor_spec(ring.spec, purpose)
        except KeylifeError as exc:
            self.record_failure("rotate", name, None, exc)
            raise
        material = generate(spec)
        key = ops.NewKey(fingerprint(material), spec)
        cryptoperiod = self.policy.rules(purpose).cryptoperiod

        def operation(r: Ring, now: dt.datetime) -> ops.Change:
            if only_if_due and not rotation_due(r, self.policy, now, counts):
                # re-planned after a lost check-and-set: another writer (or our own write
                # whose answer was lost) already rotated
                return ops.Change(r, version=r.primary(now) or r.versions[-1])
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
        return ops.result(change)

    def _successor_spec(self, spec: KeySpec, purpose: Purpose) -> KeySpec:
        """``spec`` while the policy allows it; once it no longer does, the purpose's default
        type (which must itself be allowed)."""
        now = self.now()
        try:
            self.check_spec(spec, purpose, now)
        except SpecNotAllowedError:
            default = parse_spec(self.policy.rules(purpose).default_type)
            if default == spec:
                raise
            self.check_spec(default, purpose, now)
            return default
        return spec

    def retire(self, name: str, *, reason: str = "") -> Ring:
        """Stop rotation of ring ``name`` for good: no new versions (rotation, import, renewal);
        existing ones run out their processing windows. Returns the retired ring."""

        def operation(ring: Ring, now: dt.datetime) -> ops.Change:
            return ops.retire(ring, actor=self.actor, now=now, reason=reason or "retired")

        return self.apply(name, "retire", operation).ring

    def delete_ring(self, name: str, *, reason: str = "") -> None:
        """Remove ring ``name``, whose versions must all be destroyed (else
        :class:`RingNotEmptyError` names those still holding material and the command that
        destroys them). Its history stays in the audit log (a ``delete`` record ends it) and
        its name is never reused: creating it again raises :class:`RingDeletedError`."""
        why = reason.strip() or "deleted by operator"
        try:
            for attempt in cas_attempts():
                ring = self.load(name)
                holding = [
                    v
                    for v in ring.versions
                    if v.has_material or self.store.has_material(name, v.number)
                ]
                if holding:
                    raise RingNotEmptyError(
                        _not_empty(name, holding),
                        ring=name,
                        versions=tuple(v.number for v in holding),
                    )
                entry = replace(
                    self.entry("delete", name, None, why), ring_digest=ring_digest(ring)
                )
                try:
                    self.store.delete_ring(
                        name, expected_revision=ring.revision, audit=self.stamped([entry])
                    )
                except ConflictError:
                    cas_backoff(attempt)
                    continue
                return
            raise ConflictError(f"ring {name} kept changing underneath; try again")
        except (LifecycleError, ConflictError) as exc:
            self.record_failure("delete", name, None, exc)
            raise

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
            return revocation.revoke(
                ring, number, why, actor=self.actor, now=now, occurred=occurred, message=message
            )

        return ops.result(self.apply(name, "revoke", operation, number))

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
        certificate_ring = is_certificate_ring(ring0)
        # A certificate ring's replacement comes from the CA, after this write.
        material = None if certificate_ring else generate(ring0.spec)
        replacement = None if material is None else ops.NewKey(fingerprint(material))
        occurred = as_utc(occurred_at) if occurred_at else now0
        cryptoperiod = self.policy.rules(Purpose.parse(ring0.purpose)).cryptoperiod

        def operation(ring: Ring, now: dt.datetime) -> ops.Change:
            return revocation.compromise(
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
        bad = ops.result(change)
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
