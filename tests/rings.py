"""Rings made straight from the pure core, for store tests, seeding and benchmarks.

``keylife.KeyManager.create_ring`` is the real path (policy check, audit record); these
helpers build the same first version without either, so a test can write it with
``store.commit`` directly, or seed thousands of rings quickly.
"""

from __future__ import annotations

import datetime as dt

from keylife.keygen import fingerprint, generate
from keylife.lifecycle import Ring, new_version
from keylife.material import KeyMaterial
from keylife.specs import parse_spec


def fresh_ring(
    name: str,
    spec: str = "aes-256",
    purpose: str = "data-encryption",
    *,
    created: dt.datetime,
    deactivation: dt.datetime,
    actor: str = "test",
) -> tuple[Ring, KeyMaterial]:
    """A ring whose v1 was created and activated at ``created``, with its material."""
    s = parse_spec(spec)
    material = generate(s)
    ring, _ = new_version(
        Ring(name, s, purpose, created),
        fingerprint=fingerprint(material),
        now=created,
        actor=actor,
        activation=created,
        deactivation=deactivation,
    )
    return ring, material
