"""keylife: key and TLS certificate lifecycle management.

>>> import keylife
>>> manager = keylife.open()                      # doctest: +SKIP
>>> key = manager.ring("payments-signing").primary()  # doctest: +SKIP
"""

from __future__ import annotations

from .clock import Clock, FixedClock, SystemClock
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .lifecycle import KeyVersion, RevocationReason, Ring, State
from .manager import CompromiseResult, KeyManager, KeyRing, LoadedKey, init, open
from .material import KeyMaterial
from .policy import Policy, Purpose, default_policy, load_policy
from .specs import KeySpec, parse_spec

__version__ = "0.1.0"

__all__ = [  # noqa: PLE0604
    "Clock",
    "CompromiseResult",
    "FixedClock",
    "KeyManager",
    "KeyMaterial",
    "KeyRing",
    "KeySpec",
    "KeyVersion",
    "LoadedKey",
    "Policy",
    "Purpose",
    "RevocationReason",
    "Ring",
    "State",
    "SystemClock",
    "__version__",
    "default_policy",
    "init",
    "load_policy",
    "open",
    "parse_spec",
    *_errors_all,
]
