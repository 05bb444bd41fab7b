"""Per-version recovery: put one version's material back from a backup archive when its blob in
the store is lost or corrupt, leaving the rest of the store untouched.

The archive's material must be the key the store's metadata records for that version (its
fingerprint); the write is one check-and-set on the ring and is audited (``restore-material``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .backup import check_archive, material_problem
from .changes import Change, entry
from .errors import BackupError
from .lifecycle import KeyVersion, Ring
from .writer import RingWriter

__all__ = ["recover_version"]


def recover_version(
    writer: RingWriter, data: dict[str, Any], ring: str, number: int, *, source: str
) -> KeyVersion:
    """Restore ``ring`` v``number``'s material from archive ``data`` (:func:`read_backup`)."""
    contents = check_archive(data)
    material = contents.materials.get(ring, {}).get(number)
    if material is None:
        raise BackupError(f"{source} holds no material for {ring} v{number}")
    current = writer.load(ring).get(number)
    if current is None:
        raise BackupError(f"the store has no {ring} v{number} to recover")
    if not current.has_material:
        raise BackupError(
            f"{ring} v{number} is {current.state.value}; its material is not to be brought back"
        )
    problem = material_problem(material, current.fingerprint)
    if problem:
        raise BackupError(f"{source}'s material for {ring} v{number} {problem}")

    def operation(r: Ring, now: dt.datetime) -> Change:
        reason = f"material restored from backup {source}"
        return Change(
            r,
            (entry(now, writer.actor, "restore-material", ring, number, reason),),
            new_versions=(number,),
            version=r.get(number),
        )

    change = writer.apply(ring, "restore-material", operation, number, material=material)
    assert change.version is not None
    return change.version
