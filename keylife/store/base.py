"""The storage contract every backend implements (embedded SQLite, Vault)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..audit import AuditEntry, AuditRecord
from ..errors import RingDeletedError
from ..lifecycle import Ring
from ..material import KeyMaterial
from ..published import PublishedKeys
from ..specs import KeySpec


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    expires: dt.datetime


@runtime_checkable
class KeyStore(Protocol):
    """Where rings, sealed material and the audit log live.

    Writes go through :meth:`commit`, a check-and-set on the ring's revision: it stores new
    material, the ring document, erases destroyed material and appends audit records, as
    atomically as the backend allows (the embedded store does all of it in one transaction).
    """

    url: str

    def list_ring_names(self) -> list[str]: ...

    def load_ring(self, name: str) -> Ring | None: ...

    def load_rings(self) -> list[Ring]: ...

    def commit(
        self,
        ring: Ring,
        *,
        expected_revision: int,
        materials: Mapping[int, KeyMaterial] | None = None,
        destroy: Sequence[int] = (),
        audit: Sequence[AuditEntry] = (),
    ) -> Ring:
        """Write ``ring`` if its stored revision is ``expected_revision`` (0: must not exist).

        Returns the ring with its new revision; raises ConflictError when another writer won.
        """
        ...

    def delete_ring(
        self, name: str, *, expected_revision: int, audit: Sequence[AuditEntry] = ()
    ) -> None:
        """Remove ring ``name`` if its stored revision is ``expected_revision`` and append
        ``audit``, as one write where the backend allows (ConflictError when another writer
        won, NotFoundError when there is no such ring). Its material must be erased already
        (the manager deletes only rings whose versions are all destroyed). The name stays
        taken: a later ``commit(..., expected_revision=0)`` of it raises
        :class:`~keylife.errors.RingDeletedError` (:func:`deleted_ring_error`), so the audit
        history and old ciphertext headers can only ever mean the deleted ring.
        """
        ...

    def get_material(self, ring: str, version: int, spec: KeySpec) -> KeyMaterial: ...

    def has_material(self, ring: str, version: int) -> bool: ...

    def material_items(self) -> list[tuple[str, int, bytes]]:
        """Every (ring, version, plaintext material): for migration only, never logged."""
        ...

    def append_audit(self, entries: Sequence[AuditEntry]) -> None: ...

    def read_audit(self) -> list[AuditRecord]: ...

    def acquire_lease(
        self,
        name: str,
        holder: str,
        ttl: dt.timedelta,
        now: dt.datetime,
        *,
        takeover_from: str | None = None,
    ) -> Lease | None:
        """Take the named lease unless another holder has it unexpired; None if held.

        ``takeover_from`` names a holder known to be dead (same host, process gone): its
        lease is taken over even before it expires.
        """
        ...

    def read_lease(self, name: str) -> Lease | None:
        """The current lease, expired or not, or None."""
        ...

    def release_lease(self, name: str, holder: str) -> None: ...

    def add_encryptions(self, counts: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        """Add ``counts`` (messages encrypted per ``(ring, version)``, each > 0) to the stored
        totals, which only ever grow; returns the new totals of those versions. Several
        processes may add at once: no addition is lost (:mod:`keylife.counters`)."""
        ...

    def encryption_counts(self, ring: str) -> dict[int, int]:
        """Messages counted per version of ``ring`` (a version never counted is absent)."""
        ...

    def close(self) -> None: ...


def deleted_ring_error(name: str) -> RingDeletedError:
    """What every backend raises when a ring is created under a deleted ring's name."""
    return RingDeletedError(
        f"ring {name!r} was deleted; a deleted ring's name is never reused (its history stays "
        "in the audit log): choose another name",
        ring=name,
    )


def deleted_names(entries: Sequence[AuditEntry]) -> set[str]:
    """The rings whose successful ``delete`` is recorded in ``entries``. A store restored or
    migrated from a log that holds such a record keeps refusing the name (every backend
    keeps a tombstone for it when the log is replayed into it)."""
    return {e.ring for e in entries if e.action == "delete" and e.ring and e.outcome == "success"}


@runtime_checkable
class PublicKeySource(Protocol):
    """A store that publishes each asymmetric ring's public halves where a token allowed
    nothing else may read them (Vault: ``public/<ring>``, the verify-only policy)."""

    def load_public(self, name: str) -> PublishedKeys | None:
        """Ring ``name``'s published keys; None when it has none (symmetric, or not yet
        published)."""
        ...
