"""Making versions: generate a key, import one (bring your own key) or store a CA-issued one.

:class:`KeyCreator` is the part of the manager every new version comes through; each door
checks the spec against the policy (:meth:`~keylife.policy.Policy.check`), the material against
its declared spec (:func:`keylife.keyimport.check_material`) and the dates against the policy's
limits (:func:`keylife.limits.check_dates`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from . import operations as ops
from .errors import (
    AlreadyExistsError,
    ConflictError,
    KeylifeError,
    PolicyError,
    RingDeletedError,
)
from .keyimport import check_material, parse_key
from .lifecycle import KeyVersion, Ring
from .limits import version_dates
from .material import KeyMaterial
from .policy import Purpose
from .writer import RingWriter

__all__ = ["KeyCreator"]


class KeyCreator(RingWriter):
    """Creates rings and adds versions under the policy."""

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
        exceed_policy: str = "",
    ) -> KeyVersion:
        """Create ring ``name`` with its first version.

        ``type`` defaults to the policy's default for ``purpose``. ``material`` stores outside
        material (a certificate's key) instead of generating it; ``version_attributes`` are
        attached to that version. The version activates at ``activate_at`` (default now) and
        deactivates at ``deactivate_at`` (default: one cryptoperiod later);
        ``protect_stop_at`` and ``process_start_at`` bound the originator- and recipient-usage
        periods (SP 800-57). Dates must fit :func:`keylife.limits.check_dates` unless
        ``exceed_policy`` gives the reason for a recorded, audited exception.
        """
        from .keygen import fingerprint, generate

        now = self.now()
        try:
            purpose_ = Purpose.parse(purpose)
            spec = (
                material.spec if material is not None else self._spec_for(type, purpose_, key_bits)
            )
            self.check_spec(spec, purpose_, now)
            dates = version_dates(
                self.policy.rules(purpose_),
                purpose_.value,
                now=now,
                activate_at=activate_at,
                deactivate_at=deactivate_at,
                protect_stop_at=protect_stop_at,
                process_start_at=process_start_at,
                imported=material is not None,
                exceed_policy=exceed_policy,
            )
            if material is None:
                material = generate(spec)
            else:
                check_material(material)
            change = ops.create_ring(
                name,
                spec,
                purpose_.value,
                ops.NewKey(fingerprint(material)),
                actor=self.actor,
                now=now,
                activation=dates.activation,
                deactivation=dates.deactivation,
                protect_stop=dates.protect_stop,
                process_start=dates.process_start,
                attributes=attributes,
                version_attributes=version_attributes,
                reason=reason,
                exception=exceed_policy,
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
        except RingDeletedError as exc:
            self.record_failure("create", name, None, exc)
            raise
        return ops.result(change)

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
        exceed_policy: str = "",
    ) -> KeyVersion:
        """Store externally produced material (e.g. a certificate key) as a new version. Its
        spec and dates must fit the policy as in :meth:`create_ring` (imported material may be
        back-dated)."""
        from .keygen import fingerprint

        purpose = Purpose.parse(self.load(name).purpose)
        self.check_spec(material.spec, purpose, self.now())
        check_material(material)
        key = ops.NewKey(fingerprint(material), material.spec)
        rules = self.policy.rules(purpose)

        def operation(ring: Ring, now: dt.datetime) -> ops.Change:
            dates = version_dates(
                rules,
                purpose.value,
                now=now,
                activate_at=activate_at,
                deactivate_at=deactivate_at,
                imported=True,
                exceed_policy=exceed_policy,
            )
            return ops.add_version(
                ring,
                key,
                actor=self.actor,
                now=now,
                activation=dates.activation,
                deactivation=dates.deactivation,
                attributes=attributes,
                reason=reason,
                supersede=supersede,
                exception=exceed_policy,
            )

        return ops.result(self.apply(name, "create", operation, material=material))

    def import_key(
        self,
        name: str,
        data: bytes,
        type: str,
        purpose: str,
        *,
        password: bytes | None = None,
        activate_at: dt.datetime | None = None,
        deactivate_at: dt.datetime | None = None,
        exceed_policy: str = "",
    ) -> KeyVersion:
        """Bring your own key: store ``data`` (PEM/DER private key, or raw secret-key bytes) as
        the first version of a new ring ``name``, or as the new primary of an existing one.

        The material must really be a ``type`` key (algorithm, size or curve; exact length for
        secret keys) and ``type`` must be allowed for ``purpose`` today; imports may be
        back-dated, but not beyond the cryptoperiod. Audited with the key's fingerprint.
        """
        from .keygen import fingerprint

        try:
            spec = self._spec_for(type, Purpose.parse(purpose), None)
            material = parse_key(data, spec, password=password)
        except KeylifeError as exc:
            self.record_failure("import", name, None, exc)
            raise
        reason = f"imported {spec.name} key {fingerprint(material)}"
        if self.store.load_ring(name) is None:
            return self.create_ring(
                name,
                purpose=purpose,
                material=material,
                activate_at=activate_at,
                deactivate_at=deactivate_at,
                reason=reason,
                exceed_policy=exceed_policy,
            )
        if self.load(name).purpose != Purpose.parse(purpose).value:
            raise PolicyError(
                f"ring {name} is a {self.load(name).purpose} ring; cannot import a {purpose} key"
            )
        return self.add_version(
            name,
            material,
            activate_at=activate_at,
            deactivate_at=deactivate_at,
            reason=reason,
            exceed_policy=exceed_policy,
        )
