"""keylife: key and TLS certificate lifecycle management.

A service opens the store and uses its ring's primary version::

    import keylife
    manager = keylife.open()
    signing_key = manager.ring("payments-signing").primary().key

Attributes are imported lazily, so ``import keylife`` (and ``keylife --version``) stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import errors as _errors
from ._version import __version__
from .errors import (
    AcmeError,
    AlreadyExistsError,
    AuditError,
    BackupError,
    ChallengeFailedError,
    ConflictError,
    CorruptRecordError,
    DecryptionError,
    IntegrityError,
    InvalidSignatureError,
    InvalidTransitionError,
    KeylifeError,
    KeyUsageError,
    LifecycleError,
    LockHeldError,
    MaterialUnavailableError,
    NotFoundError,
    PolicyError,
    RateLimitedError,
    SpecNotAllowedError,
    StoreError,
    StoreUnavailableError,
    TlsError,
    UnknownSpecError,
)

if TYPE_CHECKING:
    from .clock import Clock, FixedClock, SystemClock
    from .compose import init, open
    from .lifecycle import KeyVersion, RevocationReason, Ring, State
    from .loaded import LoadedKey
    from .manager import CompromiseResult, KeyManager, KeyRing
    from .material import KeyMaterial
    from .policy import Policy, Purpose, default_policy, load_policy
    from .specs import KeySpec, parse_spec

_LAZY = {
    "Clock": "clock",
    "FixedClock": "clock",
    "SystemClock": "clock",
    "KeyVersion": "lifecycle",
    "RevocationReason": "lifecycle",
    "Ring": "lifecycle",
    "State": "lifecycle",
    "CompromiseResult": "manager",
    "KeyManager": "manager",
    "KeyRing": "manager",
    "LoadedKey": "loaded",
    "init": "compose",
    "open": "compose",
    "KeyMaterial": "material",
    "Policy": "policy",
    "Purpose": "policy",
    "default_policy": "policy",
    "load_policy": "policy",
    "KeySpec": "specs",
    "parse_spec": "specs",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None and name in _errors.__all__:
        return getattr(_errors, name)  # every exception class, including ones added later
    if module is None:
        raise AttributeError(f"module 'keylife' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AcmeError",
    "AlreadyExistsError",
    "AuditError",
    "BackupError",
    "ChallengeFailedError",
    "Clock",
    "CompromiseResult",
    "ConflictError",
    "CorruptRecordError",
    "DecryptionError",
    "FixedClock",
    "IntegrityError",
    "InvalidSignatureError",
    "InvalidTransitionError",
    "KeyManager",
    "KeyMaterial",
    "KeyRing",
    "KeySpec",
    "KeyUsageError",
    "KeyVersion",
    "KeylifeError",
    "LifecycleError",
    "LoadedKey",
    "LockHeldError",
    "MaterialUnavailableError",
    "MessageLimitError",
    "NotFoundError",
    "Policy",
    "PolicyError",
    "Purpose",
    "RateLimitedError",
    "RevocationReason",
    "Ring",
    "SpecNotAllowedError",
    "State",
    "StoreError",
    "StoreUnavailableError",
    "SystemClock",
    "TlsError",
    "UnknownSpecError",
    "__version__",
    "default_policy",
    "init",
    "load_policy",
    "open",
    "parse_spec",
]
