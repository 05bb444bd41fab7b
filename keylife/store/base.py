"""The storage contract every backend implements (embedded SQLite, Vault)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..audit import AuditEntry, AuditRecord
from ..lifecycle import Ring
from ..material import KeyMaterial
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
