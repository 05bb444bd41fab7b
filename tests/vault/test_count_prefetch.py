"""A planning pass on Vault reads the encryption counters of a fleet at once: one listing of
``cnt/`` and parallel reads of the documents that exist, instead of one read per counted ring
in turn; what it plans is what the per-ring reads gave (issue 15, issue 12's counters)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

import keylife
from keylife.policy import policy_from_dict
from keylife.rotation import run as rotation_run

pytestmark = pytest.mark.vault

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_a_run_lists_the_counters_and_reads_only_those_that_exist(vault_store: Any) -> None:
    policy = policy_from_dict({"purposes": {"data-encryption": {"max_messages": 5}}})
    m = keylife.KeyManager(vault_store, actor="t", clock=keylife.FixedClock(T0), policy=policy)
    for name in ("full", "some", "none1", "none2", "none3"):
        m.create_ring(name, "aes-256", "data-encryption")
    m.create_ring("sig", "ec-p256", "signing")  # not counted: its counter is never asked for
    vault_store.add_encryptions({("full", 1): 5, ("some", 1): 2})
    calls: Counter[str] = Counter()
    request = vault_store.client.request

    def counting(method: str, path: str, **kw: Any) -> Any:
        if "/cnt/" in path or path.endswith("/cnt/") or path.endswith("/cnt"):
            calls[f"{method} {path.rsplit('/', 1)[-1] or 'cnt/'}"] += 1
        return request(method, path, **kw)

    vault_store.client.request = counting
    report = rotation_run(m)
    assert report.ok and [r.ring for r in report.rings] == ["full"], report  # max_messages
    assert calls == {"LIST cnt/": 1, "GET full": 1, "GET some": 1}, calls
    assert m.ring("full").primary().number == 2 and m.ring("some").primary().number == 1
