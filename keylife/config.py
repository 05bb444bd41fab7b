"""Where things live: store location and master key, from arguments and the environment.

Order: explicit argument, then ``KEYLIFE_STORE`` / ``KEYLIFE_MASTER_KEY_FILE`` /
``KEYLIFE_MASTER_KEY`` / ``KEYLIFE_POLICY``, then the XDG defaults
(``$XDG_DATA_HOME/keylife/keylife.db``, ``$XDG_CONFIG_HOME/keylife/master.key``).
The master key never lives in the data directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


def _xdg(var: str, fallback: str, env: Mapping[str, str]) -> Path:
    value = env.get(var)
    return Path(value) if value else Path.home() / fallback


@dataclass(frozen=True)
class Location:
    store: str
    master_key_file: Path
    master_key_env: str | None

    @property
    def is_sqlite(self) -> bool:
        return not self.store.startswith(("vault://", "vaults://", "http://", "https://"))

    @property
    def db_path(self) -> Path:
        return Path(self.store.removeprefix("sqlite://"))


def resolve(
    store: str | None = None,
    master_key_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Location:
    env = os.environ if env is None else env
    chosen = store or env.get("KEYLIFE_STORE")
    if not chosen:
        chosen = str(_xdg("XDG_DATA_HOME", ".local/share", env) / "keylife" / "keylife.db")
    key = master_key_file or env.get("KEYLIFE_MASTER_KEY_FILE")
    key_path = (
        Path(key) if key else _xdg("XDG_CONFIG_HOME", ".config", env) / "keylife" / "master.key"
    )
    return Location(chosen, key_path, env.get("KEYLIFE_MASTER_KEY") or None)
