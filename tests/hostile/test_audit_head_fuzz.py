"""The Vault audit head's ``group`` field (the batches one grouped append wrote, as one JSON
string) comes back from the store: whatever it holds, :func:`head_batches` gives a list of
batch documents, never an exception (a deeply nested string raised RecursionError)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from keylife.vault.audit_log import head_batches

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(group=st.one_of(st.text(max_size=60), JSON.map(str)), last=JSON)
def test_any_head_gives_batch_documents(group: str, last: Any) -> None:
    out = head_batches({"count": 1, "hash": "h", "group": group, "last": last})
    assert isinstance(out, list) and all(isinstance(b, dict) for b in out)


def test_a_deeply_nested_group_is_not_a_batch() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert head_batches({"group": deep, "last": {"id": "t"}}) == [{"id": "t"}]
