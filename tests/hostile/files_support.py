"""Shared helpers for the hostile-input tests of files, store, backup, policy and CLI output.

A plain module (not a conftest): each test file makes its own ``kl`` fixture with
:func:`sandbox`, so these tests need nothing from other test directories.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from keylife_cli.main import cli

import keylife

KEYLIFE = str(Path(sys.executable).with_name("keylife"))
PASSPHRASE = "correct horse battery staple"


@dataclass
class Sandbox:
    """A store and master key under a temporary directory, named by KEYLIFE_* variables."""

    root: Path
    db: Path
    key_file: Path

    def init(self, **kw: Any) -> keylife.KeyManager:
        return keylife.init(str(self.db), master_key_file=self.key_file, **kw)

    def open(self, **kw: Any) -> keylife.KeyManager:
        return keylife.open(str(self.db), master_key_file=self.key_file, **kw)

    def run(self, *args: str) -> Result:
        """``keylife ARGS`` in-process; an uncaught exception fails the test (no traceback)."""
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    def sh(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The installed ``keylife`` console script in a subprocess."""
        return subprocess.run(
            [KEYLIFE, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(self.db, isolation_level=None)
        try:
            return db.execute(statement, params).fetchall()
        finally:
            db.close()

    def passphrase_file(self, text: str = PASSPHRASE) -> Path:
        path = self.root / "passphrase.txt"
        path.write_text(text + "\n")
        return path


def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    db = tmp_path / "data" / "keylife.db"
    key_file = tmp_path / "conf" / "master.key"
    monkeypatch.setenv("KEYLIFE_STORE", str(db))
    monkeypatch.setenv("KEYLIFE_MASTER_KEY_FILE", str(key_file))
    monkeypatch.delenv("KEYLIFE_BACKUP_PASSPHRASE", raising=False)
    return Sandbox(tmp_path, db, key_file)


def one_line_error(result: Result | subprocess.CompletedProcess[str], code: int) -> str:
    """Assert ``result`` failed with ``code`` and one error line, never a traceback.

    Usage errors (exit 2) come from click with its usage lines; exactly one line says Error.
    """
    out = result.stderr
    got = result.returncode if isinstance(result, subprocess.CompletedProcess) else result.exit_code
    assert got == code, (got, out, result.stdout)
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if "error" in line.lower()]
    assert len(lines) == 1, out
    return lines[0]
