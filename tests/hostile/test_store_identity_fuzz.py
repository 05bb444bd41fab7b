"""Fuzzing what the store-id binding reads from a store someone else may write to: the Vault
``store-id`` document and sealed blobs of the embedded store. Property: a keylife error or a
valid result, never another exception; a blob never opens unless it is the one sealed."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from keylife.errors import CorruptRecordError, IntegrityError
from keylife.sealing import MasterKey, Sealer, associated_data, new_store_id
from keylife.vault.storeid import parse_store_id

FUZZ = settings(max_examples=150, deadline=dt.timedelta(milliseconds=500))
KEY = MasterKey(bytes(range(32)))
SID = "0123456789abcdef0123456789abcdef"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@FUZZ
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"id": st.one_of(st.just(SID), st.text(max_size=40)), "bound": json_values}
        ),
    )
)
def test_store_id_document(data: object) -> None:
    try:
        got = parse_store_id(data, "kl/store-id")
    except CorruptRecordError as exc:
        assert "kl/store-id is malformed" in str(exc)
        return
    assert got["id"] == SID and isinstance(got["bound"], bool)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from([None, SID]))
def test_sealed_blob(blob: bytes, store_id: str | None) -> None:
    sealer = Sealer(KEY, store_id)
    try:
        sealer.open(blob, associated_data("orders", 1), what="orders v1")
    except IntegrityError as exc:
        assert str(exc).startswith("orders v1: ")
    else:  # pragma: no cover - a random blob never carries a valid tag
        raise AssertionError("a random blob opened")


@FUZZ
@given(st.binary(max_size=64), st.integers(0, 100), st.integers(0, 255))
def test_a_changed_byte_never_opens(plain: bytes, offset: int, xor: int) -> None:
    sealer = Sealer(KEY, new_store_id())
    ad = associated_data("orders", 1)
    blob = bytearray(sealer.seal(plain, ad))
    assert sealer.open(bytes(blob), ad, what="orders v1") == plain
    if xor == 0:
        return  # any changed byte, the (unauthenticated) magic included, is refused
    blob[offset % len(blob)] ^= xor
    try:
        sealer.open(bytes(blob), ad, what="orders v1")
    except IntegrityError:
        return
    raise AssertionError("a changed blob opened")
