"""The store contract, unchanged, on a real OpenBao dev server (KV v2 + Transit)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.store_contract import *  # noqa: F403

pytestmark = pytest.mark.vault


@pytest.fixture
def store(vault_store: Any) -> Any:
    return vault_store
