"""Fuzz the decoders of what Vault answers for transit-resident rings (no server needed): a
``tk/NAME`` document and a Transit key read decode to a valid result or a keylife error."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from keylife.errors import KeylifeError
from keylife.lifecycle import State, check_invariants
from keylife.vault.transit import TransitKeyInfo
from keylife.vault.transit_doc import KEY_TYPES, decode, encode

PERIOD = dt.timedelta(days=365)
json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
stamps = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
).map(lambda d: d.isoformat())
versions = st.fixed_dictionaries(
    {
        "number": st.integers(-1, 5) | json_value,
        "state": st.sampled_from([s.value for s in State]) | json_value,
        "created": stamps | json_value,
        "deactivated": st.none() | stamps,
        "compromised": st.none() | stamps,
        "destroyed": st.none() | stamps,
        "reason": st.text(max_size=10),
    }
)
docs = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["a", "web", "Bad Name", ""]) | json_value,
        "key": st.sampled_from(["kl-a", "kl-web", "x"]) | json_value,
        "type": st.sampled_from([*KEY_TYPES, "aes999"]) | json_value,
        "versions": st.lists(versions, max_size=4) | json_value,
    }
)


@settings(max_examples=200, deadline=1000)
@given(doc=docs | json_value)
def test_decode_gives_a_ring_or_a_keylife_error(doc: Any) -> None:
    try:
        ring = decode(doc, 3, cryptoperiod=PERIOD)
    except KeylifeError:
        return
    assert not check_invariants(ring)
    assert ring.revision == 3 and ring.purpose == "data-encryption"
    assert encode(ring, doc["type"]) == {**doc, "versions": encode(ring, doc["type"])["versions"]}
    again = decode(encode(ring, doc["type"]), 3, cryptoperiod=PERIOD)
    assert again == ring


@settings(max_examples=200, deadline=1000)
@given(
    data=st.dictionaries(
        st.sampled_from(
            [
                "type",
                "latest_version",
                "keys",
                "derived",
                "min_decryption_version",
                "min_available_version",
                "exportable",
            ]
        ),
        json_value,
        max_size=6,
    )
)
def test_transit_key_info_decodes_anything(data: dict[str, Any]) -> None:
    info = TransitKeyInfo.decode("kl-a", data)
    assert isinstance(info.latest_version, int) and isinstance(info.exportable, bool)


valid_versions = st.lists(
    st.fixed_dictionaries(
        {
            "state": st.sampled_from([s.value for s in State]),
            "created": stamps,
            "deactivated": st.none() | stamps,
            "compromised": st.none() | stamps,
            "destroyed": st.none() | stamps,
            "reason": st.text(max_size=10),
        }
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=100, deadline=1000)
@given(raw=valid_versions, key_type=st.sampled_from(sorted(KEY_TYPES)))
def test_valid_documents_round_trip(raw: list[dict[str, Any]], key_type: str) -> None:
    live = {"pre-active", "active", "suspended"}
    vs = [
        {**v, "number": i, "deactivated": None if v["state"] in live else v["deactivated"]}
        for i, v in enumerate(raw, 1)
    ]
    doc = {"name": "web", "key": "kl-web", "type": key_type, "versions": vs}
    ring = decode(doc, 1, cryptoperiod=PERIOD)
    assert encode(ring, key_type) == doc
