"""Who is acting: the operating-system identity a change is recorded under by default.

Two things are recorded on every audit record: the *identity* the store authenticated (the
embedded store: the OS user and uid running keylife, :func:`os_identity`; Vault: the token's
display name, entity and accessor) and the *actor*, the name the caller claims to act for
(``--actor``, ``actor=``; default the OS user), shown as "on behalf of".
"""

from __future__ import annotations

import getpass
import os

__all__ = ["default_actor", "os_identity"]


def default_actor() -> str:
    """The OS user running keylife, or ``unknown`` when it cannot be told."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def os_identity() -> str:
    """``os:USER uid=N``: the account running keylife, as the operating system knows it.

    The uid comes from the kernel (``os.geteuid``); the name from the password database for
    that uid, never from environment variables a caller could set.
    """
    uid_fn = getattr(os, "geteuid", None)
    if uid_fn is None:  # not POSIX
        return f"os:{default_actor()}"
    uid = uid_fn()
    try:
        import pwd

        name = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        name = "unknown"
    return f"os:{name} uid={uid}"
