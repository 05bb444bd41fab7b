"""The store contract on the embedded SQLite store."""

from __future__ import annotations

import pytest

from keylife.store.sqlite import SqliteStore
from tests.store_contract import *  # noqa: F403


@pytest.fixture
def store(sqlite_store: SqliteStore) -> SqliteStore:
    return sqlite_store
