"""Fixtures for the ring primitives: a real embedded store in a temporary directory, with a
clock the test moves, and HOME / XDG pointed into the temporary directory."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

import keylife

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("KEYLIFE_STORE", "KEYLIFE_MASTER_KEY_FILE", "KEYLIFE_POLICY", "KEYLIFE_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


@pytest.fixture
def clock() -> keylife.FixedClock:
    return keylife.FixedClock(T0)


@pytest.fixture
def manager(sandbox: Path, clock: keylife.FixedClock) -> Iterator[keylife.KeyManager]:
    m = keylife.init(str(sandbox / "k.db"), master_key_file=sandbox / "mk", clock=clock)
    try:
        yield m
    finally:
        m.close()


def make_rings(m: keylife.KeyManager) -> None:
    """One ring of each kind the primitives serve."""
    m.create_ring("orders", "aes-256", "data-encryption")
    m.create_ring("invoices", "aes-256", "data-encryption")
    m.create_ring("chacha", "chacha20", "data-encryption")
    m.create_ring("sig-p256", "ec-p256", "signing")
    m.create_ring("sig-p384", "ec-p384", "signing")
    m.create_ring("sig-p521", "ec-p521", "signing")
    m.create_ring("sig-ed", "ed25519", "signing")
    m.create_ring("sig-rsa", "rsa-2048", "signing")
    m.create_ring("webhooks", "hmac-sha256", "authentication")
    m.create_ring("kek", "aes-256", "key-wrapping")
    m.create_ring("kek-rsa", "rsa-3072", "key-wrapping")


@pytest.fixture
def rings(manager: keylife.KeyManager) -> keylife.KeyManager:
    make_rings(manager)
    return manager


# The real OpenBao fixtures of the Vault tests (a dev server per session, fresh mounts).
from tests.vault.conftest import bao_dev, mounts, vault_env  # noqa: E402, F401
