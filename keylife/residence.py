"""Where a ring's key material lives: in keylife's store (sealed blobs) or in a backend that
keeps the keys itself (Vault Transit), which keylife only drives.

The rule has one owner so the core (health checks, listings) asks it rather than testing an
adapter's attribute name.
"""

from __future__ import annotations

from .lifecycle import Ring

#: Ring attribute holding the Transit key's name: the ring is transit-resident.
TRANSIT_KEY = "transit_key"


def is_transit_resident(ring: Ring) -> bool:
    """Whether ``ring``'s key material lives in Vault Transit (keylife holds no blob for it)."""
    return TRANSIT_KEY in ring.attributes


__all__ = ["TRANSIT_KEY", "is_transit_resident"]
