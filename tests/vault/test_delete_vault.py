"""Issue 11 item 5 on Vault: `key delete` soft-deletes the ring document with a KV v2 data-path
DELETE: its KV history and metadata stay, its high-water mark stays (marked deleted), its
index entry goes, and the name is never created again."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import keylife
from keylife.errors import RingDeletedError
from keylife.vault import index as ix

pytestmark = pytest.mark.vault

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_delete_keeps_history_and_high_water_mark(vault_store: Any) -> None:
    clock = keylife.FixedClock(T0)
    m = keylife.KeyManager(vault_store, actor="t", clock=clock)
    m.create_ring("old", "aes-256", "data-encryption")
    m.create_ring("keep", "aes-256", "data-encryption")
    m.rotate("old")
    for n in (1, 2):
        if n == 2:
            m.deactivate("old", 2)
        m.destroy("old", n)  # scheduled: carried out by the planner a destroy_wait later
    clock.advance(m.policy.destroy_wait)
    assert keylife.rotation.run(m, rings=["old"]).ok
    revision = m.load("old").revision
    m.delete_ring("old", reason="gone")
    meta = vault_store.kv.metadata("rings/old", what="t")
    assert meta is not None  # never a metadata delete: the KV history stays
    assert meta.current_version == revision + 1 and len(meta.versions) == revision + 1
    assert vault_store.kv.read("rings/old", what="t") is None
    assert vault_store.kv.read_version("rings/old", revision, what="t") is not None
    assert vault_store.highwater.read_mark("old") == (
        2,
        vault_store.highwater.read_mark("old")[1],
        True,
    )
    shard, _ = vault_store.index.read(ix.shard_of("old"))
    assert "old" not in shard["rings"] and "old" not in shard["pending"]
    assert [r.name for r in vault_store.load_rings()] == ["keep"]
    with pytest.raises(RingDeletedError, match="never reused"):
        m.create_ring("old", "aes-256", "data-encryption")
    assert vault_store.kv.metadata("rings/old", what="t").current_version == revision + 1
