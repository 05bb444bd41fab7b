"""Fuzz what keylife reads from Vault (no server needed): any answer body, KV answer, index
shard, high-water mark or Transit key decodes to a valid result or a keylife error, never
another exception (issue 17 items 2-4, 6)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from keylife.errors import KeylifeError
from keylife.vault import index as ix
from keylife.vault.client import VaultClient, VaultSettings, answer_problem
from keylife.vault.gc import collect
from keylife.vault.highwater import HighWater, issued_by
from keylife.vault.kv import KV, KvEntry, KvMetadata
from keylife.vault.transit import TransitKeyInfo

json_leaf = st.none() | st.booleans() | st.integers(-3, 2**40) | st.text(max_size=12)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=24,
)
bodies = st.none() | st.dictionaries(
    st.sampled_from(["data", "auth", "errors", "warnings", "x"]), json_value, max_size=4
)
kv_like = st.builds(
    lambda data, meta: {"data": {"data": data, "metadata": meta}},
    json_value,
    st.dictionaries(
        st.sampled_from(["version", "created_time", "deletion_time", "destroyed"]),
        json_value,
        max_size=4,
    ),
)
FUZZ = settings(max_examples=150, deadline=2000)


class FakeResponse:
    def __init__(self, content: bytes, ctype: str) -> None:
        self.content = content
        self.headers = {"Content-Type": ctype}


class FakeClient(VaultClient):
    """Answers every request with one fuzzed (status, body)."""

    def __init__(self, answer: tuple[int, Any]) -> None:
        super().__init__(VaultSettings(["http://127.0.0.1:1"], token="t"))
        self.answer = answer

    def request(self, *args: Any, **kw: Any) -> tuple[int, dict[str, Any] | None, bool]:
        status, body = self.answer
        return status, body if isinstance(body, dict) else None, False


def keylife_or_valid(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except KeylifeError:
        return None


@FUZZ
@given(
    st.sampled_from(["sys/health", "kl/data/x", "sys/leader"]),
    st.sampled_from([200, 204, 404, 400, 403, 500]),
    st.binary(max_size=64) | json_value.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(["application/json", "text/html", "", "application/json; charset=utf-8"]),
)
def test_answer_problem_never_raises(path: str, status: int, raw: bytes, ctype: str) -> None:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    problem = answer_problem(
        path, status, FakeResponse(raw, ctype), body if isinstance(body, dict) else None
    )
    assert isinstance(problem, str)
    if ctype.startswith("text/html") and status != 204:
        assert problem


@FUZZ
@given(st.sampled_from([200, 404]), kv_like | bodies)
def test_kv_answers_decode_or_refuse(status: int, body: Any) -> None:
    kv = KV(FakeClient((status, body)), "kl")
    entry = keylife_or_valid(lambda: kv.read("a", what="read"))
    assert entry is None or (isinstance(entry, KvEntry) and entry.version >= 1)
    keys = keylife_or_valid(lambda: kv.list("a/", what="list"))
    assert keys is None or all(isinstance(k, str) for k in keys)
    listing = keylife_or_valid(lambda: kv.list_versions("a/", what="list"))
    assert listing is None or all(isinstance(v[0], int) for v in listing.values())
    meta = keylife_or_valid(lambda: kv.metadata("a", what="meta"))
    assert meta is None or isinstance(meta, KvMetadata)
    written = keylife_or_valid(lambda: kv.write("a", {}, cas=0, what="w", ours=lambda d: False))
    assert written is None or written[0] >= 1
    mark = keylife_or_valid(lambda: HighWater(kv).read("web"))
    assert mark is None or mark[0] >= 0
    key = keylife_or_valid(
        lambda: TransitKeyInfo.decode("k", body if isinstance(body, dict) else {}).check_sound()
    )
    assert key is None or not key.weakened()


@FUZZ
@given(json_value, st.text(max_size=6), st.integers(0, 5), st.text(max_size=6))
def test_index_shards_decode_to_hints(raw: Any, name: str, current: int, created: str) -> None:
    shard = ix.normalise(raw if isinstance(raw, dict) else None)
    got = ix.verified(shard, name, current, created)
    assert got is None or (got[0] == current and isinstance(got[1], dict))
    assert ix.decode(ix.encode(shard)) == shard
    assert issued_by(raw if isinstance(raw, dict) else None) >= 0


@settings(max_examples=60, deadline=2000)
@given(kv_like | bodies)
def test_gc_never_fails_on_odd_listings(body: Any) -> None:
    import datetime as dt

    kv = KV(FakeClient((200, body)), "kl")
    report = keylife_or_valid(lambda: collect(kv, now=dt.datetime.now(dt.UTC)))
    assert report is None or report.removed == 0
