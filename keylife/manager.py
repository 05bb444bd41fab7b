"""The public entry point: :func:`open` gives a :class:`KeyManager`; ``manager.ring(name)``
gives a :class:`KeyRing` whose ``primary()`` protects and ``version(n)`` processes."""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config
from .audit import AuditEntry, AuditRecord, ChainReport, verify_chain
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
from .lifecycle import (
    Action,
    KeyVersion,
    RevocationReason,
    Ring,
    State,
    new_version,
    supersede_older,
    transition,
)
from .material import KeyMaterial
from .policy import Policy, Purpose, default_policy, load_policy
from .specs import KeyKind, KeySpec, parse_spec
from .store.base import KeyStore

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    from cryptography.hazmat.primitives.hmac import HMAC

    from .keygen import PrivateKey

_CAS_RETRIES = 8
#: Version attribute set once a compromised version's certificate is revoked at its CA.
CERTIFICATE_REVOKED = "certificate_revoked_at"

# keygen imports cryptography; functions import it on first use so listing stays fast.


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class LoadedKey:
    """A key version with its material, ready to use. Its repr never shows the material."""

    version: KeyVersion
    material: KeyMaterial = field(repr=False)

    @property
    def number(self) -> int:
        return self.version.number

    @property
    def key(self) -> PrivateKey:
        """The ``cryptography`` private key object (asymmetric specs)."""
        from . import keygen as _kg

        if self.version.spec.symmetric:
            raise TypeError(
                f"{self.version.spec.name} is a secret key; use aead() or hmac() instead of key"
            )
        return _kg.load_private_key(self.material)

    def aead(self) -> AESGCM | ChaCha20Poly1305:
        """An AEAD cipher object for AES and ChaCha20 keys."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

        kind = self.version.spec.kind
        if kind is KeyKind.AES:
            return AESGCM(self.material.reveal())
        if kind is KeyKind.CHACHA20:
            return ChaCha20Poly1305(self.material.reveal())
        raise TypeError(f"{self.version.spec.name} is not an AEAD key")

    def hmac(self) -> HMAC:
        """A fresh HMAC object for HMAC keys."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.hmac import HMAC

        spec = self.version.spec
        if spec.kind is not KeyKind.HMAC or spec.hash_name is None:
            raise TypeError(f"{spec.name} is not an HMAC key")
        algorithm: dict[str, hashes.HashAlgorithm] = {
            "sha256": hashes.SHA256(),
            "sha384": hashes.SHA384(),
            "sha512": hashes.SHA512(),
        }
        return HMAC(self.material.reveal(), algorithm[spec.hash_name])


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
        ring = self._ring()
        version = ring.primary(now)
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


Mutation = Callable[[Ring, dt.datetime], "Change"]


@dataclass
class Change:
    ring: Ring
    audit: list[AuditEntry]
    materials: dict[int, KeyMaterial] = field(default_factory=dict)
    destroy: list[int] = field(default_factory=list)
    result: Any = None


class KeyManager:
    """Creates, changes and reads rings under a policy, with an audit record of every change."""

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
        self.actor = actor or _default_actor()
        self.clock: Clock = clock or SystemClock()

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

    def _entry(
        self, action: str, ring: str | None, version: int | None, reason: str = "", **kw: Any
    ) -> AuditEntry:
        return AuditEntry(self.now(), self.actor, action, ring, version, reason=reason, **kw)

    def _record_failure(
        self, action: str, ring: str | None, version: int | None, exc: Exception
    ) -> None:
        with contextlib.suppress(KeylifeError):  # the failure itself is what the caller sees
            self.store.append_audit([self._entry(action, ring, version, outcome=f"failure: {exc}")])

    def apply(
        self,
        name: str,
        action: str,
        mutation: Mutation,
        version: int | None = None,
        *,
        loaded: Ring | None = None,
    ) -> Any:
        """Load ring ``name``, apply ``mutation`` and commit with check-and-set, retrying.

        ``loaded`` is a copy the caller just read: the first attempt uses it (one read fewer
        against a remote store); a lost check-and-set reloads as usual.
        """
        try:
            for _ in range(_CAS_RETRIES):
                ring = loaded if loaded is not None and loaded.name == name else self.load(name)
                loaded = None
                change = mutation(ring, self.now())
                try:
                    self.store.commit(
                        change.ring,
                        expected_revision=ring.revision,
                        materials=change.materials,
                        destroy=change.destroy,
                        audit=change.audit,
                    )
                except ConflictError:
                    continue
                return change.result
            raise ConflictError(f"ring {name} kept changing underneath; try again")
        except (LifecycleError, MaterialUnavailableError, ConflictError) as exc:
            self._record_failure(action, name, version, exc)
            raise

    def _check_spec(self, spec: KeySpec, purpose: Purpose, at: dt.datetime) -> None:
        self.policy.check(spec, purpose, at)

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
        from . import keygen as _kg

        _check_ring_name(name)
        now = self.now()
        purpose_ = Purpose.parse(purpose)
        rules = self.policy.rules(purpose_)
        try:
            try:
                spec = (
                    material.spec
                    if material is not None
                    else parse_spec(type or rules.default_type, key_bits=key_bits)
                )
            except SpecNotAllowedError as exc:
                allowed = ", ".join(s.name for s in self.policy.allowed_specs(purpose_, now))
                raise SpecNotAllowedError(
                    f"{str(exc).split('. Allowed types')[0]}. Allowed for {purpose_.value} on "
                    f"{now.date().isoformat()}: {allowed}"
                ) from None
            self._check_spec(spec, purpose_, now)
        except KeylifeError as exc:
            self._record_failure("create", name, None, exc)
            raise
        activation = now if activate_at is None else as_utc(activate_at)
        deactivation = (
            activation + rules.cryptoperiod if deactivate_at is None else as_utc(deactivate_at)
        )
        if material is None:
            material = _kg.generate(spec)
        ring = Ring(name, spec, purpose_.value, now, attributes=dict(attributes or {}))
        ring, version = new_version(
            ring,
            fingerprint=_kg.fingerprint(material),
            now=now,
            actor=self.actor,
            activation=activation,
            deactivation=deactivation,
            protect_stop=None if protect_stop_at is None else as_utc(protect_stop_at),
            process_start=None if process_start_at is None else as_utc(process_start_at),
            attributes=version_attributes,
            reason=reason or "created",
        )
        audit = [
            self._entry("create", name, version.number, reason or f"{spec.name} for {purpose}")
        ]
        if version.state is State.ACTIVE:
            audit.append(self._entry("activate", name, version.number, "activation date reached"))
        try:
            self.store.commit(ring, expected_revision=0, materials={1: material}, audit=audit)
        except ConflictError:
            exists = AlreadyExistsError(f"ring {name!r} already exists")
            self._record_failure("create", name, None, exists)
            raise exists from None
        return version

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
        from . import keygen as _kg

        ring0 = self.load(name)
        purpose = Purpose.parse(ring0.purpose)
        self._check_spec(material.spec, purpose, self.now())
        fp = _kg.fingerprint(material)

        def mutate(ring: Ring, now: dt.datetime) -> Change:
            rules = self.policy.rules(purpose)
            activation = now if activate_at is None else as_utc(activate_at)
            deactivation = (
                activation + rules.cryptoperiod if deactivate_at is None else as_utc(deactivate_at)
            )
            prev = ring.primary(now)
            ring, version = new_version(
                ring,
                fingerprint=fp,
                now=now,
                actor=self.actor,
                activation=activation,
                deactivation=deactivation,
                spec=material.spec,
                replaces=prev.number if prev else None,
                attributes=attributes,
                reason=reason,
            )
            audit = [self._entry("create", name, version.number, reason)]
            if version.state is State.ACTIVE:
                audit.append(self._entry("activate", name, version.number, reason))
                if supersede:
                    ring = supersede_older(ring, version.number, now=now, actor=self.actor)
                    audit += _deactivation_entries(self, ring0, ring)
            return Change(ring, audit, {version.number: material}, result=version)

        result: KeyVersion = self.apply(name, "create", mutate)
        return result

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

        def mutate(ring: Ring, now: dt.datetime) -> Change:
            v = ring.get(number)
            if v is None:
                raise NotFoundError(f"ring {name} has no version {number}")
            attrs = dict(v.attributes)
            for key, value in changes.items():
                if value is None:
                    attrs.pop(key, None)
                else:
                    attrs[key] = value
            updated = replace(v, attributes=attrs)
            keys = ", ".join(sorted(changes))
            return Change(
                ring.replace_version(updated),
                [self._entry("annotate", name, number, f"{reason} ({keys})")],
                result=updated,
            )

        result: KeyVersion = self.apply(name, "annotate", mutate, number)
        return result

    def rotate(self, name: str, *, reason: str = "manual rotation") -> KeyVersion:
        """Create a new version now, make it the primary and deactivate the old primary."""
        from . import keygen as _kg

        ring = self.load(name)
        purpose = Purpose.parse(ring.purpose)
        try:
            self._check_spec(ring.spec, purpose, self.now())
        except KeylifeError as exc:
            self._record_failure("rotate", name, None, exc)
            raise
        material = _kg.generate(ring.spec)
        fp = _kg.fingerprint(material)
        return self._rotate_with(name, material, fp, reason)

    def _rotate_with(self, name: str, material: KeyMaterial, fp: str, reason: str) -> KeyVersion:
        def mutate(ring: Ring, now: dt.datetime) -> Change:
            return rotate_change(self, ring, now, material, fp, reason, stage=None)

        result: KeyVersion = self.apply(name, "rotate", mutate)
        return result

    def _simple(
        self, name: str, number: int, action: Action, reason: str, **changes: Any
    ) -> KeyVersion:
        def mutate(ring: Ring, now: dt.datetime) -> Change:
            version = ring.get(number)
            if version is None:
                raise NotFoundError(f"ring {name} has no version {number}")
            extra = dict(changes)
            if action is Action.DEACTIVATE and (
                version.deactivation is None or version.deactivation > now
            ):
                extra["deactivation"] = now
            if action is Action.ACTIVATE and (
                version.activation is None or version.activation > now
            ):
                extra["activation"] = now
            if action in (Action.DESTROY,):
                extra["destroy_date"] = now
            updated = transition(version, action, at=now, actor=self.actor, reason=reason, **extra)
            new_ring = ring.replace_version(updated)
            destroy = [number] if not updated.has_material else []
            return Change(
                new_ring,
                [self._entry(action.value, name, number, reason)],
                destroy=destroy,
                result=updated,
            )

        result: KeyVersion = self.apply(name, action.value, mutate, number)
        return result

    def activate(self, name: str, number: int, *, reason: str = "") -> KeyVersion:
        return self._simple(name, number, Action.ACTIVATE, reason or "activated by operator")

    def suspend(self, name: str, number: int, *, reason: str = "") -> KeyVersion:
        return self._simple(name, number, Action.SUSPEND, reason or "suspended by operator")

    def resume(self, name: str, number: int, *, reason: str = "") -> KeyVersion:
        return self._simple(name, number, Action.RESUME, reason or "resumed by operator")

    def deactivate(self, name: str, number: int, *, reason: str = "") -> KeyVersion:
        return self._simple(name, number, Action.DEACTIVATE, reason or "deactivated by operator")

    def destroy(self, name: str, number: int, *, reason: str = "") -> KeyVersion:
        """Erase the material of version ``number``; its metadata stays."""
        return self._simple(name, number, Action.DESTROY, reason or "destroyed by operator")

    def revoke(
        self,
        name: str,
        number: int,
        reason: str,
        *,
        occurred_at: dt.datetime | None = None,
        message: str = "",
    ) -> KeyVersion:
        """Revoke version ``number`` with a KMIP / RFC 5280 reason.

        A compromise reason moves it to ``compromised`` (recording when it occurred); any
        other reason deactivates it, or, on an already deactivated version, records the reason.
        """
        why = RevocationReason.parse(reason)
        text = f"revoked: {why.value}" + (f" ({message})" if message else "")
        occurred = as_utc(occurred_at) if occurred_at else None

        def mutate(ring: Ring, now: dt.datetime) -> Change:
            v = ring.get(number)
            if v is None:
                raise NotFoundError(f"ring {name} has no version {number}")
            if why.compromise:
                updated = _compromise(self, v, now, occurred or now, why, message)
            elif v.state is State.DEACTIVATED:
                # Already out of use: record the reason; there is no state to change.
                updated = replace(v, revocation_reason=why, revocation_message=message)
            else:
                updated = transition(
                    v,
                    Action.DEACTIVATE,
                    at=now,
                    actor=self.actor,
                    reason=text,
                    deactivation=min(now, v.deactivation or now),
                    revocation_reason=why,
                    revocation_message=message,
                )
            return Change(
                ring.replace_version(updated),
                [self._entry("revoke", name, number, text)],
                result=updated,
            )

        result: KeyVersion = self.apply(name, "revoke", mutate, number)
        return result

    def compromise(
        self,
        name: str,
        *,
        version: int | None = None,
        reason: str = "key-compromise",
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
        from . import keygen as _kg

        why = RevocationReason.parse(reason)
        if not why.compromise:
            raise LifecycleError(
                f"compromise needs a compromise reason; allowed: key-compromise, ca-compromise "
                f"(got {why.value})"
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
        certificate_ring = "acme" in ring0.attributes
        spec = ring0.spec
        material = _kg.generate(spec)
        fp = _kg.fingerprint(material)
        occurred = as_utc(occurred_at) if occurred_at else now0
        number = version

        def mutate(ring: Ring, now: dt.datetime) -> Change:
            old = ring.get(number)
            if old is None:
                raise NotFoundError(f"ring {name} has no version {number}")
            was_primary = ring.primary(now)
            bad = _compromise(self, old, now, occurred, why, message)
            ring = ring.replace_version(bad)
            notice = (
                f"revocation notice: v{number} ({old.fingerprint}) compromised at "
                f"{occurred.isoformat()}, reason {why.value}" + (f": {message}" if message else "")
            )
            if certificate_ring:  # the replacement comes from the CA, after this write
                deps = _dependents(ring, bad, was_primary)
                return Change(
                    ring,
                    [self._entry("compromise", name, number, notice)],
                    result=(bad, None, deps),
                )
            rules = self.policy.rules(Purpose.parse(ring.purpose))
            ring, new = new_version(
                ring,
                fingerprint=fp,
                now=now,
                actor=self.actor,
                activation=now,
                deactivation=now + rules.cryptoperiod,
                replaces=number,
                reason=f"replaces compromised v{number}",
            )
            before = ring
            ring = supersede_older(ring, new.number, now=now, actor=self.actor)
            audit = [
                self._entry("compromise", name, number, notice),
                self._entry("create", name, new.number, f"replacement for compromised v{number}"),
                self._entry("activate", name, new.number, f"replaces compromised v{number}"),
            ]
            audit += _deactivation_entries(self, before, ring)
            deps = _dependents(ring, bad, was_primary)
            return Change(ring, audit, {new.number: material}, result=(bad, new, deps))

        bad, new, deps = self.apply(name, "compromise", mutate, number)
        if "certificate_pem" in bad.attributes:
            deps.append(self._revoke_certificate(name, bad))
        if certificate_ring:
            new, note = self._renew_certificate(name)
            deps.append(note)
        replacement = None if new is None else ring_version(self.load(name), new.number)
        return CompromiseResult(bad, replacement, tuple(deps))

    def _renew_certificate(self, name: str) -> tuple[KeyVersion | None, str]:
        """A new key and certificate for a certificate ring, or None with the reason."""
        try:
            from .acme import renew_ring

            version = renew_ring(self, name, now=self.now())
        except (ImportError, KeylifeError) as exc:
            self._record_failure("renew-certificate", name, None, exc)
            return None, f"no replacement certificate yet ({exc}); `keylife rotate` will retry"
        return version, f"v{version.number} holds a new key and certificate from the CA"

    def _revoke_certificate(self, name: str, version: KeyVersion) -> str:
        """Revoke the certificate of a compromised version at its CA (reason keyCompromise)."""
        try:
            self.revoke_certificate(name, version.number)
        except (ImportError, KeylifeError) as exc:
            self._record_failure("revoke-certificate", name, version.number, exc)
            return (
                f"certificate of v{version.number} NOT revoked at the CA ({exc}); "
                "`keylife rotate` retries"
            )
        return f"certificate of v{version.number} revoked at the CA (keyCompromise)"

    def revoke_certificate(self, name: str, number: int, reason: str = "keyCompromise") -> None:
        """Revoke version ``number``'s certificate at its CA and record that it was done."""
        from .acme import revoke_version

        revoke_version(self, name, number, reason=reason)
        self.update_attributes(
            name,
            number,
            {CERTIFICATE_REVOKED: self.now().isoformat()},
            reason=f"certificate revoked at the CA ({reason})",
        )


def ring_version(ring: Ring, number: int) -> KeyVersion:
    v = ring.get(number)
    assert v is not None
    return v


def _compromise(
    manager: KeyManager,
    version: KeyVersion,
    now: dt.datetime,
    occurred: dt.datetime,
    why: RevocationReason,
    message: str,
) -> KeyVersion:
    if occurred > now:
        raise LifecycleError(f"compromise occurrence date {occurred.isoformat()} is in the future")
    return transition(
        version,
        Action.COMPROMISE,
        at=now,
        actor=manager.actor,
        reason=f"{why.value}" + (f": {message}" if message else ""),
        compromise_date=now,
        compromise_occurred=occurred,
        revocation_reason=why,
        revocation_message=message,
    )


def _deactivation_entries(manager: KeyManager, before: Ring, after: Ring) -> list[AuditEntry]:
    entries = []
    for v in after.versions:
        old = before.get(v.number)
        if old is not None and old.state is not v.state and v.state is State.DEACTIVATED:
            entries.append(
                manager._entry(
                    "deactivate", after.name, v.number, f"superseded by v{v.replaced_by}"
                )
            )
    return entries


def _dependents(ring: Ring, bad: KeyVersion, was_primary: KeyVersion | None) -> list[str]:
    deps: list[str] = []
    start = bad.activation.isoformat() if bad.activation else bad.created.isoformat()
    if Purpose.parse(ring.purpose) in (Purpose.DATA_ENCRYPTION, Purpose.KEY_WRAPPING):
        deps.append(
            f"data encrypted or keys wrapped under v{bad.number} since {start}: re-encrypt "
            "them under the replacement"
        )
    elif Purpose.parse(ring.purpose) is Purpose.SIGNING:
        deps.append(
            f"signatures made with v{bad.number} since {start}: re-sign them and distrust the "
            f"public key {bad.fingerprint}"
        )
    elif Purpose.parse(ring.purpose) is Purpose.AUTHENTICATION:
        deps.append(f"MACs made with v{bad.number} since {start}: recompute them")
    else:
        deps.append(f"peers that trust v{bad.number} ({bad.fingerprint}): redeploy")
    for key, value in sorted(bad.attributes.items()):
        if key.startswith("deployed_to") or key == "certificate_pem":
            label = "certificate issued for this key" if key == "certificate_pem" else value
            deps.append(f"{key}: {label}")
    if was_primary is not None and was_primary.number != bad.number:
        deps.append(f"v{was_primary.number} was the primary and has been superseded")
    return deps


def rotate_change(
    manager: KeyManager,
    ring: Ring,
    now: dt.datetime,
    material: KeyMaterial,
    fp: str,
    reason: str,
    *,
    stage: dt.timedelta | None,
) -> Change:
    """The change that makes a successor for ``ring``'s primary (used by rotate and the runner).

    Unstaged: the successor is active at once and the old primary is deactivated (superseded).
    Staged: the successor is pre-active and activates ``stage`` later.
    """
    rules = manager.policy.rules(Purpose.parse(ring.purpose))
    prev = ring.primary(now)
    activation = now if stage is None else now + stage
    new_ring, version = new_version(
        ring,
        fingerprint=fp,
        now=now,
        actor=manager.actor,
        activation=activation,
        deactivation=activation + rules.cryptoperiod,
        replaces=prev.number if prev else None,
        reason=reason,
    )
    audit = [manager._entry("create", ring.name, version.number, reason)]
    if version.state is State.ACTIVE:
        audit.append(manager._entry("activate", ring.name, version.number, reason))
        before = new_ring
        new_ring = supersede_older(new_ring, version.number, now=now, actor=manager.actor)
        audit += _deactivation_entries(manager, before, new_ring)
    return Change(new_ring, audit, {version.number: material}, result=version)


def _check_ring_name(name: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", name):
        raise LifecycleError(
            f"ring name {name!r} is not allowed; use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


# ---- opening ----------------------------------------------------------------------------------


def _open_store(
    store: str | KeyStore | None, master_key_file: str | Path | None, *, create: bool
) -> KeyStore:
    if store is not None and not isinstance(store, str | Path):
        return store
    loc = config.resolve(None if store is None else str(store), master_key_file)
    if not loc.is_sqlite:
        from .store.registry import open_remote

        return open_remote(loc.store, create=create)
    from .store.sqlite import MasterKeyFile, SqliteStore

    key_file = MasterKeyFile(loc.master_key_file, loc.master_key_env)
    if create:
        return SqliteStore.init(loc.db_path, key_file)
    return SqliteStore(loc.db_path, key_file)


def _resolve_policy(policy: Policy | str | Path | None) -> Policy:
    import os

    if isinstance(policy, Policy):
        return policy
    if policy is None:
        policy = os.environ.get("KEYLIFE_POLICY") or None
    if policy is None:
        policy = config.file_settings().get("policy")
    if policy is None:
        return default_policy()
    text = str(policy)
    if text in ("default", "128-bit"):
        return default_policy(text)
    return load_policy(text)


def open(
    store: str | KeyStore | None = None,
    *,
    policy: Policy | str | Path | None = None,
    actor: str | None = None,
    clock: Clock | None = None,
    master_key_file: str | Path | None = None,
) -> KeyManager:
    """Open an existing store (default: the embedded store in the XDG data directory).

    ``store`` is a path to the embedded SQLite file, ``sqlite:///path``, a ``vault://`` URL, or a
    :class:`~keylife.store.base.KeyStore`. ``policy`` is a :class:`Policy`, a profile name
    (``default``, ``128-bit``) or a TOML file (default: ``KEYLIFE_POLICY`` or the built-in).
    """
    return KeyManager(
        _open_store(store, master_key_file, create=False),
        policy=_resolve_policy(policy),
        actor=actor,
        clock=clock,
    )


def init(
    store: str | KeyStore | None = None,
    *,
    policy: Policy | str | Path | None = None,
    actor: str | None = None,
    clock: Clock | None = None,
    master_key_file: str | Path | None = None,
) -> KeyManager:
    """Create the store (and a master key, if none exists) and open it. Idempotent."""
    manager = KeyManager(
        _open_store(store, master_key_file, create=True),
        policy=_resolve_policy(policy),
        actor=actor,
        clock=clock,
    )
    return manager


def versions_by_state(ring: Ring) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for v in ring.versions:
        out.setdefault(v.state.value, []).append(v.number)
    return out
