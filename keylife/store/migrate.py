"""Copy a whole store to another backend (embedded <-> Vault), then verify the copy.

Every ring with every version's metadata, every version's material (opened by the source,
sealed again by the target: AES-GCM under the target's master key, or Transit), the message
counts (:mod:`keylife.carriedcounts`), and the audit log. The target must be empty. The audit
chain is rebuilt record by record on the target; since the target starts empty, the copy has
the same sequence numbers and hashes as the source, and one final ``migrate`` record follows
them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..audit import AuditEntry, replay, verify_chain
from ..carriedcounts import read_counts
from ..errors import BackupError, IntegrityError
from ..lifecycle import ring_to_dict
from ..material import KeyMaterial
from .base import KeyStore

_AUDIT_CHUNK = 200


@dataclass(frozen=True)
class MigrationReport:
    source: str
    target: str
    rings: int
    versions: int
    materials: int
    audit_records: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "rings": self.rings,
            "versions": self.versions,
            "materials": self.materials,
            "audit_records": self.audit_records,
            "verified": True,
        }


def _materials(store: KeyStore) -> dict[tuple[str, int], bytes]:
    items: Callable[[], list[tuple[str, int, bytes]]] | None = getattr(
        store, "material_items", None
    )
    if items is None:
        raise BackupError(f"{store.url} cannot enumerate its material (no material_items)")
    return {(r, v): p for r, v, p in items()}


def migrate(
    source: KeyStore,
    target: KeyStore,
    *,
    actor: str,
    now: dt.datetime,
    progress: Callable[[str], None] | None = None,
) -> MigrationReport:
    """Copy ``source`` into the empty ``target`` and verify; raise on any difference."""
    if target.list_ring_names():
        raise BackupError(
            f"target {target.url} is not empty (it has rings); migrate into an empty store"
        )
    head = getattr(target, "audit_head", None)
    if callable(head) and head()[0] != 0:
        raise BackupError(f"target {target.url} already has an audit log; use an empty store")
    rings = source.load_rings()
    damaged = next((r for r in rings if r.damage), None)
    if damaged is not None:
        raise BackupError(
            f"source ring {damaged.name!r} is damaged ({damaged.damage}); restore it from a "
            "backup before migrating"
        )
    bad_audit = [r.seq for r in source.read_audit() if r.damage]
    if bad_audit:
        raise BackupError(
            f"source audit record {bad_audit[0]} is damaged; run `keylife audit verify` and "
            "repair the log before migrating"
        )
    plain = _materials(source)
    versions = 0
    for ring in rings:
        materials = {
            v.number: KeyMaterial(plain[(ring.name, v.number)], v.spec)
            for v in ring.versions
            if (ring.name, v.number) in plain
        }
        target.commit(ring, expected_revision=0, materials=materials)
        versions += len(ring.versions)
        if progress is not None:
            progress(ring.name)
    counts = read_counts(source, rings)
    if counts:
        target.add_encryptions(counts)
    records = source.read_audit()
    replay(records, target, chunk=_AUDIT_CHUNK)
    report = MigrationReport(source.url, target.url, len(rings), versions, len(plain), len(records))
    verify_copy(source, target, plain=plain)
    target.append_audit(
        [
            AuditEntry(
                now,
                actor,
                "migrate",
                reason=f"copied {len(rings)} rings, {len(plain)} materials and "
                f"{len(records)} audit records from {source.url}",
            )
        ]
    )
    return report


def verify_copy(
    source: KeyStore, target: KeyStore, *, plain: dict[tuple[str, int], bytes] | None = None
) -> None:
    """Raise :class:`IntegrityError` naming the first difference between the two stores."""
    rings = source.load_rings()
    src = {r.name: ring_to_dict(r) for r in rings}
    dst = {r.name: ring_to_dict(r) for r in target.load_rings()}
    if sorted(src) != sorted(dst):
        missing = sorted(set(src) - set(dst))[:5]
        raise IntegrityError(f"the copy lacks rings {missing} (or has extra ones)")
    for name, doc in src.items():
        if dst[name] != doc:
            raise IntegrityError(f"ring {name} differs between source and copy")
    plain = _materials(source) if plain is None else plain
    copied = _materials(target)
    if sorted(plain) != sorted(copied):
        raise IntegrityError("the copy does not hold material for the same versions")
    for key, value in plain.items():
        if copied[key] != value:  # compared here, never printed
            raise IntegrityError(f"material of {key[0]} v{key[1]} differs in the copy")
    src_counts, dst_counts = read_counts(source, rings), read_counts(target, rings)
    for key in sorted(set(src_counts) | set(dst_counts)):
        if src_counts.get(key, 0) != dst_counts.get(key, 0):
            raise IntegrityError(f"message count of {key[0]} v{key[1]} differs in the copy")
    src_records = source.read_audit()
    dst_records = target.read_audit()
    if dst_records[: len(src_records)] != src_records:
        raise IntegrityError("the copied audit log differs from the source's")
    report = verify_chain(dst_records)
    if not report.ok:
        raise IntegrityError(f"the copied audit log does not verify: {report.problem}")
