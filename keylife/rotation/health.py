"""Health of the keys a ring relies on: every run of ``keylife rotate`` checks that each
primary, and each staged successor, unseals and matches its recorded fingerprint.

A key that cannot be opened, or whose material is not the key its metadata describes (a
swapped or corrupted blob), fails its ring with the recovery step; it is never silently used.
"""

from __future__ import annotations

import datetime as dt

from ..errors import FingerprintMismatchError, KeylifeError, StoreUnavailableError
from ..lifecycle import KeyVersion, Ring, State
from ..residence import is_transit_resident
from ..writer import RingWriter

__all__ = ["check_ring", "versions_to_check"]


def versions_to_check(ring: Ring, now: dt.datetime) -> list[KeyVersion]:
    """The primary at ``now`` and any successor waiting to take over."""
    primary = ring.primary(now)
    out = [] if primary is None else [primary]
    floor = 0 if primary is None else primary.number
    out += [
        v
        for v in ring.versions
        if v.number > floor
        and (v.state is State.PRE_ACTIVE or (v.state is State.ACTIVE and v not in out))
    ]
    return out


def check_ring(writer: RingWriter, ring: Ring, now: dt.datetime) -> str:
    """Why ``ring``'s keys are not healthy, with what to do about it; "" when they are."""
    from ..keygen import fingerprint

    if ring.damage or is_transit_resident(ring):
        return ""
    for v in versions_to_check(ring, now):
        try:
            material = RingWriter.material(writer, v)
        except StoreUnavailableError:
            raise
        except FingerprintMismatchError:
            problem = f"v{v.number}'s material does not match its recorded fingerprint"
        except KeylifeError as exc:
            problem = f"v{v.number} cannot be opened ({exc})"
        else:
            try:
                matches = fingerprint(material) == v.fingerprint
            except (ValueError, TypeError):
                matches = False
            if matches:
                continue
            problem = f"v{v.number}'s material does not match its recorded fingerprint"
        return (
            f"{problem}; restore it from a backup (`keylife restore ARCHIVE --ring {ring.name} "
            f"--version {v.number}`) or replace it (`keylife key rotate {ring.name}`)"
        )
    return ""
