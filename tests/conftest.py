"""Fixtures shared by every test directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from keylife.store.sqlite import MasterKeyFile, SqliteStore

# CI runs three pytest-xdist workers on two cores: an example that takes longer than
# Hypothesis's default 200 ms deadline there is the machine's load, not a slow path. Tests that
# set their own deadline keep it.
settings.register_profile("keylife", deadline=2000)
settings.load_profile("keylife")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore.init(
        tmp_path / "data" / "keylife.db", MasterKeyFile(tmp_path / "config" / "master.key")
    )
    yield store
    store.close()


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads or writes the real home, store or Vault token."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    for var in (
        "KEYLIFE_STORE",
        "KEYLIFE_MASTER_KEY_FILE",
        "KEYLIFE_MASTER_KEY",
        "KEYLIFE_POLICY",
        "KEYLIFE_CONFIG",
        "VAULT_TOKEN",
        "VAULT_ADDR",
    ):
        monkeypatch.delenv(var, raising=False)
