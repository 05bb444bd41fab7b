"""Stores with rings that are due now, and a way to run the real ``keylife`` command."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import keylife

PAST = dt.datetime.now(dt.UTC) - dt.timedelta(days=800)


def keylife_cmd() -> list[str]:
    exe = shutil.which("keylife", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "keylife_cli"]


class StoreEnv:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "KEYLIFE_STORE": str(root / "data" / "keylife.db"),
            "KEYLIFE_MASTER_KEY_FILE": str(root / "config" / "master.key"),
        }

    def manager(self, at: dt.datetime | None = None) -> keylife.KeyManager:
        clock = keylife.FixedClock(at) if at else None
        return keylife.open(
            self.env["KEYLIFE_STORE"],
            master_key_file=self.env["KEYLIFE_MASTER_KEY_FILE"],
            clock=clock,
            actor="test",
        )

    def init(self) -> None:
        keylife.init(
            self.env["KEYLIFE_STORE"], master_key_file=self.env["KEYLIFE_MASTER_KEY_FILE"]
        ).close()

    def make_due(self, count: int, *, prefix: str = "due", spec: str = "ec-p256") -> list[str]:
        """Rings created 800 days ago: their primary is past its deactivation now."""
        names = [f"{prefix}-{i:03d}" for i in range(count)]
        with self.manager(PAST) as m:
            for name in names:
                m.create_ring(
                    name, spec, "signing" if spec.startswith(("ec", "rsa")) else "data-encryption"
                )
        return names

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*keylife_cmd(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def popen(self, *args: str, **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
            [*keylife_cmd(), *args],
            env=self.env,
            text=True,
            stdin=subprocess.DEVNULL,
            **kw,
        )


@pytest.fixture
def store_env(tmp_path: Path) -> StoreEnv:
    env = StoreEnv(tmp_path)
    env.init()
    return env


StoreEnvFactory = Callable[[], StoreEnv]
