"""Where things live: store location, master key and policy.

Order: explicit argument (``--store`` ...), then ``KEYLIFE_STORE`` /
``KEYLIFE_MASTER_KEY_FILE`` / ``KEYLIFE_MASTER_KEY`` / ``KEYLIFE_POLICY``, then the config file
(``KEYLIFE_CONFIG``, default ``$XDG_CONFIG_HOME/keylife/config.toml``; keys ``store``,
``master_key_file``, ``policy``), then the XDG defaults (``$XDG_DATA_HOME/keylife/keylife.db``,
``$XDG_CONFIG_HOME/keylife/master.key``, the built-in policy). The master key never lives in
the data directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CONFIG_KEYS = ("store", "master_key_file", "policy")


def config_file(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    explicit = env.get("KEYLIFE_CONFIG")
    if explicit:
        return Path(explicit)
    return _xdg("XDG_CONFIG_HOME", ".config", env) / "keylife" / "config.toml"


def file_settings(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The config file's settings (empty when there is none); errors name the file and key."""
    from .errors import KeylifeError
    from .policy import MAX_POLICY_BYTES, parse_toml

    env = os.environ if env is None else env
    path = config_file(env)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_POLICY_BYTES + 1)
    except FileNotFoundError:
        if env.get("KEYLIFE_CONFIG"):
            raise KeylifeError(f"{path}: config file (KEYLIFE_CONFIG) not found") from None
        return {}
    except OSError as exc:
        raise KeylifeError(f"{path}: cannot read the config file: {exc.strerror}") from None
    if len(raw) > MAX_POLICY_BYTES:
        raise KeylifeError(f"{path}: larger than {MAX_POLICY_BYTES >> 10} KiB; not a config file")
    data = parse_toml(raw, f"{path}", KeylifeError)
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise KeylifeError(
            f"{path}: unknown key {unknown[0]!r}; allowed keys: {', '.join(CONFIG_KEYS)}"
        )
    for key, value in data.items():
        if not isinstance(value, str) or not value:
            raise KeylifeError(f"{path}: {key} must be a non-empty string")
    return dict(data)


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
    settings: dict[str, str] = {}
    if not chosen or not (master_key_file or env.get("KEYLIFE_MASTER_KEY_FILE")):
        settings = file_settings(env)
    chosen = chosen or settings.get("store")
    if not chosen:
        chosen = str(_xdg("XDG_DATA_HOME", ".local/share", env) / "keylife" / "keylife.db")
    key = master_key_file or env.get("KEYLIFE_MASTER_KEY_FILE") or settings.get("master_key_file")
    key_path = (
        Path(key) if key else _xdg("XDG_CONFIG_HOME", ".config", env) / "keylife" / "master.key"
    )
    return Location(chosen, key_path, env.get("KEYLIFE_MASTER_KEY") or None)
