"""keylife's exception tree.

Every error that crosses the public API is a :class:`KeylifeError`. Errors raised by the
libraries keylife uses underneath (sqlite3, hvac, requests, acme, josepy, OpenSSL) are wrapped
in one of these classes with the original kept as ``__cause__``. No message ever contains key
material.

::

    KeylifeError
    ├── PolicyError                 policy file invalid, or a request outside the policy
    │   └── SpecNotAllowedError     key spec not approved for that purpose on that date
    ├── UnknownSpecError            spec name not recognised at all
    ├── LifecycleError              state machine refusal
    │   └── InvalidTransitionError  transition not allowed from the current state
    ├── NotFoundError               ring or version does not exist
    ├── AlreadyExistsError          ring already exists
    ├── MaterialUnavailableError    material destroyed, or version not usable at that time
    ├── KeyUsageError               the ring's purpose or type does not do that operation
    ├── DecryptionError             ciphertext, stream or wrapped key does not open (opaque)
    ├── InvalidSignatureError       signature or MAC does not verify (opaque)
    ├── StoreError                  a backend failed
    │   ├── StoreUnavailableError   backend cannot be reached (Vault down, file missing)
    │   ├── ConflictError           check-and-set lost against another writer
    │   ├── IntegrityError          AEAD tag or hash chain does not verify
    │   └── LockHeldError           another rotation run holds the lease
    ├── BackupError                 archive corrupted, truncated, wrongly keyed, or target not empty
    ├── AuditError                  audit log could not be written or read
    ├── AcmeError                   the ACME CA refused or failed (problem document attached)
    │   ├── ChallengeFailedError    one or more identifiers failed validation
    │   └── RateLimitedError        the CA asked to retry later (``retry_after``)
    └── TlsError                    TLS check could not be performed
"""

from __future__ import annotations

import datetime as _dt


class KeylifeError(Exception):
    """Base of every error keylife raises."""


class PolicyError(KeylifeError):
    """The policy is invalid, or a request falls outside it."""


class SpecNotAllowedError(PolicyError):
    """A key spec is not approved for the purpose on the date asked."""


class UnknownSpecError(KeylifeError):
    """A key spec name is not one keylife knows."""


class LifecycleError(KeylifeError):
    """The key lifecycle refused an operation."""


class InvalidTransitionError(LifecycleError):
    """A state transition that the lifecycle does not allow.

    ``ring``, ``version``, ``from_state`` and ``action`` say which request was refused.
    """

    def __init__(
        self,
        message: str,
        *,
        ring: str | None = None,
        version: int | None = None,
        from_state: str | None = None,
        action: str | None = None,
    ) -> None:
        super().__init__(message)
        self.ring = ring
        self.version = version
        self.from_state = from_state
        self.action = action


class NotFoundError(KeylifeError):
    """A ring or version does not exist."""


class AlreadyExistsError(KeylifeError):
    """A ring with that name already exists."""


class MaterialUnavailableError(KeylifeError):
    """Key material is destroyed or the version may not be used for that operation now."""


class KeyUsageError(KeylifeError):
    """The ring's purpose or key type does not do the operation asked (encrypt on a signing
    ring, sign on an encryption ring). ``ring`` and ``operation`` say which."""

    def __init__(self, message: str, *, ring: str | None = None, operation: str = "") -> None:
        super().__init__(message)
        self.ring = ring
        self.operation = operation


class DecryptionError(KeylifeError):
    """A ciphertext, stream or wrapped key does not open under the ring: malformed, altered,
    truncated, reordered, or made by another ring or key. Deliberately says no more (which
    check failed would help an attacker); ``ring`` names the ring that was asked."""

    def __init__(self, message: str, *, ring: str | None = None) -> None:
        super().__init__(message)
        self.ring = ring


class InvalidSignatureError(KeylifeError):
    """A signature or MAC does not verify under the ring (malformed, altered, or made by
    another ring or key); ``ring`` names the ring that was asked."""

    def __init__(self, message: str, *, ring: str | None = None) -> None:
        super().__init__(message)
        self.ring = ring


class StoreError(KeylifeError):
    """A storage backend failed."""


class StoreUnavailableError(StoreError):
    """The storage backend cannot be reached."""


class ConflictError(StoreError):
    """A check-and-set write lost against a concurrent writer."""


class IntegrityError(StoreError):
    """Stored data failed its integrity check (AEAD tag, hash chain)."""


class LockHeldError(StoreError):
    """Another run holds the rotation lease."""


class BackupError(KeylifeError):
    """A backup archive cannot be written or restored."""


class AuditError(KeylifeError):
    """The audit log cannot be written or read."""


class AcmeError(KeylifeError):
    """The ACME CA refused a request or could not be reached."""


class ChallengeFailedError(AcmeError):
    """Validation failed for one or more identifiers."""


class RateLimitedError(AcmeError):
    """The CA rate-limited the request."""

    def __init__(self, message: str, retry_after: _dt.datetime | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TlsError(KeylifeError):
    """A TLS check could not be performed."""


__all__ = [
    "AcmeError",
    "AlreadyExistsError",
    "AuditError",
    "BackupError",
    "ChallengeFailedError",
    "ConflictError",
    "DecryptionError",
    "IntegrityError",
    "InvalidSignatureError",
    "InvalidTransitionError",
    "KeyUsageError",
    "KeylifeError",
    "LifecycleError",
    "LockHeldError",
    "MaterialUnavailableError",
    "NotFoundError",
    "PolicyError",
    "RateLimitedError",
    "SpecNotAllowedError",
    "StoreError",
    "StoreUnavailableError",
    "TlsError",
    "UnknownSpecError",
]
