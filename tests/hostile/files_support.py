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


# ---- fuzzing: mutated valid documents --------------------------------------------------------

#: Strings a hostile store or archive would try: odd states, dates at the edges, huge sizes.
NASTY_STRINGS = [
    "",
    "resting",
    "9999-12-31T23:59:59+00:00",
    "0001-01-01T00:00:00-14:00",
    "2026-01-01T00:00:00",
    "2026-13-45",
    "hmac-sha256:99999999",
    "rsa-1024",
    "../../evil\nname",
    "\x1b[2J",
    "\u0663",
]


def json_values() -> Any:
    from hypothesis import strategies as st

    leaves = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False)
        | st.text(max_size=12)
        | st.sampled_from(NASTY_STRINGS)
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=6,
    )


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def mutate(doc: Any, data: Any, rounds: int = 3) -> Any:
    """A deep copy of ``doc`` with up to ``rounds`` random edits: replace a value, delete a
    key or item, add a key, or duplicate an item (``data`` is Hypothesis's ``st.data()``)."""
    import copy

    from hypothesis import strategies as st

    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, rounds))):
        path = data.draw(st.sampled_from(_paths(doc)))
        if not path:
            if data.draw(st.booleans()):
                doc = data.draw(json_values())
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        op = data.draw(st.sampled_from(["replace", "delete", "add", "duplicate"]))
        if op == "replace":
            parent[last] = data.draw(json_values())
        elif op == "delete":
            del parent[last]
        elif op == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(max_size=8))] = data.draw(json_values())
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
    return doc
