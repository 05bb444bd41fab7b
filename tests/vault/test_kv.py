"""The public KV v2 layer on a real OpenBao server: typed results, check-and-set, destroy."""

from __future__ import annotations

import pytest

from keylife.errors import CasMismatch, ConflictError
from keylife.vault import VaultKeyStore
from keylife.vault.kv import KvEntry, KvMetadata

pytestmark = pytest.mark.vault


def test_kv_layer(vault_store: VaultKeyStore) -> None:
    kv = vault_store.kv
    assert kv.read("t/a", what="read") is None
    assert kv.list("t/", what="list") == []
    assert kv.metadata("t/a", what="meta") is None
    assert kv.cas_write("t/a", {"n": 1}, cas=0, what="create", ours=lambda d: False) == 1
    assert kv.cas_write("t/a", {"n": 2}, cas=1, what="update", ours=lambda d: False) == 2
    with pytest.raises(CasMismatch) as info:
        kv.cas_write("t/a", {"n": 3}, cas=1, what="stale", ours=lambda d: False)
    assert isinstance(info.value, ConflictError) and info.value.path.endswith("/data/t/a")
    # a lost answer whose write did land is recognised as ours
    assert kv.cas_write("t/a", {"n": 2}, cas=1, what="again", ours=lambda d: d["n"] == 2) == 2
    assert kv.read("t/a", what="read") == KvEntry({"n": 2}, 2)
    assert kv.read_version("t/a", 1, what="read v1") == KvEntry({"n": 1}, 1)
    assert kv.read_version("t/a", 9, what="read v9") is None
    assert kv.list("t/", what="list") == ["a"]
    assert kv.metadata("t/a", what="meta") == KvMetadata(
        2, 0, (1, 2)
    )  # oldest: 0 until versions are pruned
    kv.destroy("t/a", what="destroy")
    assert kv.read("t/a", what="read") is None and kv.read_version("t/a", 1, what="v1") is None
    assert kv.metadata("t/a", what="meta") is None
