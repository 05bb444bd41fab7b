"""The composition root: :func:`open` and :func:`init` open a store, resolve the policy and
wire the adapters (the ACME certificate authority) into a :class:`~keylife.manager.KeyManager`.

Nothing below this module knows which adapters exist: the manager reaches a CA through the
:class:`~keylife.manager.CertificateAuthority` protocol, and the ACME package, which implements
it, is imported on first use only (so ``keylife key list`` never loads an HTTP stack).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

from . import config
from .clock import Clock
from .policy import Policy, default_policy, load_policy
from .store.base import KeyStore

if TYPE_CHECKING:
    from .lifecycle import KeyVersion
    from .manager import CertificateAuthority, KeyManager

__all__ = ["init", "open", "open_store", "resolve_policy"]

#: Built-in policy profiles that ``policy=`` / ``--policy`` accept by name.
PROFILES = ("default", "128-bit")


def open_store(
    store: str | Path | KeyStore | None = None,
    master_key_file: str | Path | None = None,
    *,
    create: bool = False,
) -> KeyStore:
    """The store named by ``store`` (or the configuration), created when ``create``."""
    if store is not None and not isinstance(store, str | Path):
        return store
    loc = config.resolve(None if store is None else str(store), master_key_file)
    if not loc.is_sqlite:
        from .store.registry import open_remote

        return open_remote(loc.store, create=create)
    from .store.sqlite import MasterKeyFile, SqliteStore

    key_file = MasterKeyFile(loc.master_key_file, loc.master_key_env)
    if create:
        return SqliteStore.init(loc.db_path, key_file)
    return SqliteStore(loc.db_path, key_file)


def resolve_policy(policy: Policy | str | Path | None = None) -> Policy:
    """A :class:`Policy` from an object, a profile name or a TOML file; by default
    ``KEYLIFE_POLICY``, then the config file's ``policy``, then the built-in profile."""
    if isinstance(policy, Policy):
        return policy
    if policy is None:
        policy = os.environ.get("KEYLIFE_POLICY") or None
    if policy is None:
        policy = config.file_settings().get("policy")
    if policy is None:
        return default_policy()
    text = str(policy)
    if text in PROFILES:
        return default_policy(text)
    return load_policy(text)


class AcmeOnDemand:
    """The ACME certificate authority, imported when a certificate is first renewed or revoked."""

    def __init__(self) -> None:
        self._impl: CertificateAuthority | None = None

    def _ca(self) -> CertificateAuthority:
        if self._impl is None:
            from .acme import AcmeAuthority

            self._impl = AcmeAuthority()
        return self._impl

    def renew(self, manager: KeyManager, ring: str, now: dt.datetime) -> KeyVersion:
        return self._ca().renew(manager, ring, now)

    def revoke(self, manager: KeyManager, ring: str, version: int, reason: str) -> None:
        self._ca().revoke(manager, ring, version, reason)

    def refresh_renewal_info(
        self, manager: KeyManager, ring: str, version: int, now: dt.datetime
    ) -> None:
        self._ca().refresh_renewal_info(manager, ring, version, now)

    def rollover_account(self, manager: KeyManager, ring: str) -> int:
        return self._ca().rollover_account(manager, ring)


def _manager(
    given: str | Path | KeyStore | None,
    store: KeyStore,
    policy: Policy,
    actor: str | None,
    clock: Clock | None,
    refresh: float | None = None,
) -> KeyManager:
    """The manager that owns ``store``; if it cannot be made, a store opened here is closed."""
    try:
        from .manager import KeyManager

        owned: KeyStore = store
        if refresh is not None:
            from .ringcache import CachedStore

            owned = CachedStore(store, refresh)
        return KeyManager(owned, policy=policy, actor=actor, clock=clock, authority=AcmeOnDemand())
    except BaseException:
        if store is not given:
            store.close()
        raise


def open(
    store: str | Path | KeyStore | None = None,
    *,
    policy: Policy | str | Path | None = None,
    actor: str | None = None,
    clock: Clock | None = None,
    master_key_file: str | Path | None = None,
    refresh: float | None = None,
) -> KeyManager:
    """Open an existing store (default: the embedded store in the XDG data directory).

    ``store`` is a path to the embedded SQLite file, ``sqlite:///path``, a ``vault://`` URL, or a
    :class:`~keylife.store.base.KeyStore`. ``policy`` is a :class:`Policy`, a profile name
    (``default``, ``128-bit``) or a TOML file (default: ``KEYLIFE_POLICY`` or the built-in).

    ``refresh`` (seconds), for long-running services: ring documents and unsealed keys are
    kept in memory that long (thread-safe), so rotations made elsewhere are seen within the
    interval; a ciphertext naming a version newer than the cache rereads the ring at once.
    Without it every operation reads the store.
    """
    resolved = resolve_policy(policy)  # first: a bad policy must not leave a store open
    opened = open_store(store, master_key_file, create=False)
    return _manager(store, opened, resolved, actor, clock, refresh)


def init(
    store: str | Path | KeyStore | None = None,
    *,
    policy: Policy | str | Path | None = None,
    actor: str | None = None,
    clock: Clock | None = None,
    master_key_file: str | Path | None = None,
) -> KeyManager:
    """Create the store (and a master key, if none exists) and open it. Idempotent."""
    resolved = resolve_policy(policy)
    opened = open_store(store, master_key_file, create=True)
    return _manager(store, opened, resolved, actor, clock)
