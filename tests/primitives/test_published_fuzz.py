"""The published-keys document (``keylife.published``) is outside input: whatever a store hands
back, :func:`parse_published` gives a valid result or a CorruptRecordError, never another
exception; a document written by :func:`published_document` reads back to the same keys."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keylife.errors import CorruptRecordError
from keylife.keygen import fingerprint, generate, load_private_key
from keylife.lifecycle import KeyVersion, Ring, State
from keylife.published import PublishedKeys, parse_published, published_document, spki
from keylife.specs import parse_spec

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _ring(spec_name: str = "ec-p256") -> tuple[Ring, dict[int, Any]]:
    spec = parse_spec(spec_name)
    publics: dict[int, Any] = {}
    versions = []
    states = [State.DEACTIVATED, State.ACTIVE, State.COMPROMISED, State.PRE_ACTIVE]
    for number, state in enumerate(states, start=1):
        material = generate(spec)
        publics[number] = load_private_key(material).public_key()
        versions.append(
            KeyVersion(
                ring="sig",
                number=number,
                spec=spec,
                purpose="signing",
                state=state,
                fingerprint=fingerprint(material),
                created=T0,
                activation=T0,
                deactivation=T0 + dt.timedelta(days=30) if number == 1 else None,
                process_start=T0,
            )
        )
    ring = Ring("sig", spec, "signing", T0, tuple(versions), next_version=5, revision=7)
    return ring, publics


RING, PUBLICS = _ring()
DOC = published_document(RING, lambda v: spki(PUBLICS[v.number]))


def test_round_trip_leaves_out_compromised_versions() -> None:
    got = parse_published(DOC, "sig")
    assert isinstance(got, PublishedKeys)
    assert sorted(got.keys) == [1, 2, 4]  # v3 is compromised: never published
    assert got.revision == 7
    for number, public in got.keys.items():
        assert spki(public) == spki(PUBLICS[number])
        original = RING.get(number)
        assert original is not None
        v = got.ring.get(number)
        assert v is not None
        assert (v.state, v.deactivation) == (original.state, original.deactivation)
        assert v.fingerprint == original.fingerprint


def test_refusals() -> None:
    with pytest.raises(CorruptRecordError, match="names ring"):
        parse_published(DOC, "other")
    swapped = copy.deepcopy(DOC)
    swapped["keys"][0]["spki"], swapped["keys"][1]["spki"] = (
        swapped["keys"][1]["spki"],
        swapped["keys"][0]["spki"],
    )
    with pytest.raises(CorruptRecordError, match="fingerprint"):
        parse_published(swapped, "sig")
    symmetric = {**DOC, "spec": "aes-256"}
    with pytest.raises(CorruptRecordError, match="secret"):
        parse_published(symmetric, "sig")
    with pytest.raises(ValueError):
        published_document(Ring("k", parse_spec("aes-256"), "data-encryption", T0), lambda v: b"")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
KEYS = ["v", "ring", "spec", "purpose", "rev", "keys"]
ENTRY_KEYS = [
    "kid",
    "version",
    "state",
    "created",
    "activation",
    "deactivation",
    "protect_stop",
    "process_start",
    "fingerprint",
    "spki",
]


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(doc=JSON)
def test_any_json_gives_a_result_or_corrupt_record(doc: Any) -> None:
    with contextlib.suppress(CorruptRecordError):
        parse_published(doc, "sig")


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    top=st.sampled_from(KEYS),
    entry=st.sampled_from(ENTRY_KEYS),
    where=st.sampled_from(["top", "entry", "drop-top", "drop-entry"]),
    value=JSON,
)
def test_mutated_document_gives_a_result_or_corrupt_record(
    top: str, entry: str, where: str, value: Any
) -> None:
    doc = copy.deepcopy(DOC)
    if where == "top":
        doc[top] = value
    elif where == "drop-top":
        doc.pop(top)
    elif where == "entry":
        doc["keys"][0][entry] = value
    else:
        doc["keys"][0].pop(entry)
    try:
        got = parse_published(doc, "sig")
    except CorruptRecordError:
        return
    assert all(v.state is not State.COMPROMISED for v in got.ring.versions)
