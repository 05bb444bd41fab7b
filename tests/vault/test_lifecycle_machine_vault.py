"""The lifecycle state machine of tests/test_lifecycle_machine.py on a real OpenBao server:
the manager drives the same operations through the same store contract, so the same
invariants (one protecting version, only allowed transitions, material exactly where the
state says, an intact audit chain) must hold on Vault's KV v2 + Transit."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, settings

from keylife.compose import open_store
from keylife.store.base import KeyStore
from tests.test_lifecycle_machine import run_machine

pytestmark = pytest.mark.vault


def test_lifecycle_machine_on_openbao(vault_env) -> None:  # type: ignore[no-untyped-def]
    def fresh() -> KeyStore:
        tag = uuid.uuid4().hex[:10]
        return open_store(vault_env.store_url(f"kl-{tag}", f"tr-{tag}"), create=True)

    run_machine(
        fresh,
        settings(
            max_examples=8,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
