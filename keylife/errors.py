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
    │   ├── InvalidTransitionError  transition not allowed from the current state
    │   ├── RingNotEmptyError       delete refused: versions still hold material (``versions``)
    │   └── DestroyScheduleError    a destruction request refused (wait, approval, nothing due)
    ├── NotFoundError               ring or version does not exist
    ├── AlreadyExistsError          ring already exists
    │   └── RingDeletedError        the name belonged to a deleted ring: never reused (``ring``)
    ├── MaterialUnavailableError    material destroyed, or version not usable at that time
    │   └── MessageLimitError       a version encrypted as many messages as random nonces allow
    ├── KeyUsageError               the ring's purpose or type does not do that operation
    ├── DecryptionError             ciphertext, stream or wrapped key does not open (opaque)
    ├── InvalidSignatureError       signature or MAC does not verify (opaque)
    ├── StoreError                  a backend failed
    │   ├── StoreUnavailableError   backend cannot be reached (Vault down, file missing)
    │   │   ├── LeaseLostError      the run's lease lapsed or was taken over: stop before writing
    │   │   └── TokenExpiredError   the Vault token expired or was revoked during a run
    │   ├── VaultPermissionError    Vault refused the request (403/401): the token's policies
    │   ├── ConflictError           check-and-set lost against another writer
    │   │   └── CasMismatch         one KV v2 check-and-set write lost (``path`` attached)
    │   ├── IntegrityError          AEAD tag or hash chain does not verify
    │   │   ├── TransitKeyWeakenedError  a Transit key exportable, backed up, deletable or imported
    │   │   └── FingerprintMismatchError  unsealed material is not the key its version records
    │   ├── CorruptRecordError      a stored ring or version document does not decode
    │   └── LockHeldError           another rotation run holds the lease
    ├── BackupError                 archive corrupted, truncated, wrongly keyed, or target not empty
    ├── AuditError                  audit log could not be written or read
    │   └── CheckpointError         a checkpoint is malformed or its signature fails (``line``)
    ├── AcmeError                   the ACME CA refused or failed (problem document attached)
    │   ├── ChallengeFailedError    one or more identifiers failed validation
    │   │   └── ChallengeFailures   ... with the CA's reason per identifier (``failures``)
    │   ├── RateLimitedError        the CA asked to retry later (``retry_after``)
    │   ├── AcmeResponseError       the CA's answer is malformed or too large (``url``, ``field``)
    │   ├── AcmeTimeoutError        an ACME operation passed its overall deadline (``url``)
    │   └── CertificateCheckError   an issued certificate failed keylife's checks (``problem``)
    └── TlsError                    TLS check could not be performed
        ├── TlsPolicyError          invalid [tls] policy (also a PolicyError)
        ├── TlsTargetError          a host or SNI name that is not a valid host name (``rule``)
        ├── ProbeError              the endpoint could not be probed (unreachable, not TLS, slow)
        └── HelloParseError         bytes that are not a TLS flight (also a ValueError)
            └── FlightLimitError    a peer's handshake flight exceeds a cap (``limit``)
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping


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


class RingNotEmptyError(LifecycleError):
    """``keylife key delete`` refused: ``versions`` of ``ring`` still hold key material."""

    def __init__(self, message: str, *, ring: str = "", versions: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.ring = ring
        self.versions = versions


class DestroyScheduleError(LifecycleError):
    """A request about a scheduled destruction was refused: a wait below the minimum, nothing
    scheduled to cancel or approve, an approval by the requester, or a destruction not yet due.
    ``ring`` and ``version`` say which; ``requester`` is who asked for the destruction (when
    one was scheduled)."""

    def __init__(
        self, message: str, *, ring: str = "", version: int | None = None, requester: str = ""
    ) -> None:
        super().__init__(message)
        self.ring = ring
        self.version = version
        self.requester = requester


class NotFoundError(KeylifeError):
    """A ring or version does not exist."""


class AlreadyExistsError(KeylifeError):
    """A ring with that name already exists."""


class RingDeletedError(AlreadyExistsError):
    """A ring of that name was deleted: its name (and version numbers) are never reused, so
    the audit history and old ciphertext headers can only mean the deleted ring. ``ring``."""

    def __init__(self, message: str, *, ring: str = "") -> None:
        super().__init__(message)
        self.ring = ring


class MaterialUnavailableError(KeylifeError):
    """Key material is destroyed or the version may not be used for that operation now."""


class MessageLimitError(MaterialUnavailableError):
    """A version has encrypted as many messages under random nonces as is safe (NIST SP
    800-38D: 2**32 per AES-GCM key); ``ring``, ``version`` and ``count`` say which."""

    def __init__(self, message: str, *, ring: str, version: int, count: int) -> None:
        super().__init__(message)
        self.ring = ring
        self.version = version
        self.count = count


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


class LeaseLostError(StoreUnavailableError):
    """The rotation lease this process held lapsed or was taken over; nothing more is written.

    ``lease`` names the lease and ``ring`` the ring whose write was stopped.
    """

    def __init__(self, message: str, *, lease: str = "", ring: str = "") -> None:
        super().__init__(message)
        self.lease = lease
        self.ring = ring


class TokenExpiredError(StoreUnavailableError):
    """Vault refused the token itself (expired or revoked), not one request: a run stops.

    ``address`` is the Vault address that refused it.
    """

    def __init__(self, message: str, *, address: str = "") -> None:
        super().__init__(message)
        self.address = address


class ConflictError(StoreError):
    """A check-and-set write lost against a concurrent writer."""


class VaultPermissionError(StoreError):
    """Vault refused the request (HTTP 403 or 401): the token's policies do not allow it.

    ``path`` is the API path refused and ``address`` the Vault address that refused it.
    """

    def __init__(self, message: str, *, path: str = "", address: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.address = address


class CasMismatch(ConflictError):
    """A KV v2 check-and-set write lost; ``path`` is the KV path (inside the mount) written."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class IntegrityError(StoreError):
    """Stored data failed its integrity check (AEAD tag, hash chain)."""


class TransitKeyWeakenedError(IntegrityError):
    """A Transit key keylife manages is exportable, allows plaintext backup, may be deleted, or
    was imported (its material known outside Vault): keylife refuses to use or schedule it.

    ``key`` names the Transit key, ``settings`` the weakened settings (e.g. ``exportable``).
    """

    def __init__(self, message: str, *, key: str = "", settings: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.key = key
        self.settings = settings


class FingerprintMismatchError(IntegrityError):
    """A version's unsealed material does not match the fingerprint its ring document records
    (a sealed blob swapped with another version's or another store's). ``ring`` and
    ``version`` name it; the fix is restoring that version from a backup."""

    def __init__(self, message: str, *, ring: str = "", version: int = 0) -> None:
        super().__init__(message)
        self.ring = ring
        self.version = version


class CorruptRecordError(StoreError):
    """A stored ring or version document is malformed (unknown state, bad date, missing key).

    ``ring`` names the ring (``version`` the version, where known) so one bad row fails that
    ring only.
    """

    def __init__(self, message: str, *, ring: str = "", version: int | None = None) -> None:
        super().__init__(message)
        self.ring = ring
        self.version = version


class LockHeldError(StoreError):
    """Another run holds the rotation lease."""


class BackupError(KeylifeError):
    """A backup archive cannot be written or restored."""


class AuditError(KeylifeError):
    """The audit log cannot be written or read."""


class CheckpointError(AuditError):
    """An audit checkpoint is malformed, too large, or its signature does not verify.

    ``line`` is its line number in the checkpoint file, when it came from one.
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class AcmeError(KeylifeError):
    """The ACME CA refused a request or could not be reached."""


class ChallengeFailedError(AcmeError):
    """Validation failed for one or more identifiers."""


class ChallengeFailures(ChallengeFailedError):
    """Validation failed; ``failures`` maps each failed identifier to the CA's reason."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        self.failures = dict(failures)
        lines = "; ".join(f"{ident}: {reason}" for ident, reason in self.failures.items())
        super().__init__(f"validation failed for {len(self.failures)} identifier(s): {lines}")


class RateLimitedError(AcmeError):
    """The CA rate-limited the request."""

    def __init__(self, message: str, retry_after: _dt.datetime | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AcmeResponseError(AcmeError):
    """The CA answered with something that is not a valid ACME message (or is too large).

    ``url`` is where the answer came from and ``field`` the offending part (``body`` for the
    whole answer).
    """

    def __init__(self, message: str, *, url: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.field = field


class AcmeTimeoutError(AcmeError):
    """An ACME operation did not finish within its overall deadline."""

    def __init__(self, message: str, *, url: str | None = None, timeout: float = 0.0) -> None:
        super().__init__(message)
        self.url = url
        self.timeout = timeout


class CertificateCheckError(AcmeError):
    """A certificate the CA issued failed a check (names, key, chain, validity); nothing was
    stored. ``problem`` is one of ``names``, ``key``, ``chain``, ``validity``."""

    def __init__(self, message: str, *, problem: str) -> None:
        super().__init__(message)
        self.problem = problem


class TlsError(KeylifeError):
    """A TLS check could not be performed."""


class TlsPolicyError(TlsError, PolicyError):
    """A TLS policy (built-in profile name or ``[tls]`` table) is invalid."""


class TlsTargetError(TlsError):
    """A ``tls check`` host or server name breaks the host-name rule named in ``rule``."""

    def __init__(self, message: str, *, name: str, rule: str) -> None:
        super().__init__(message)
        self.name = name
        self.rule = rule


class ProbeError(TlsError):
    """The endpoint could not be probed: unreachable, not TLS, too slow or too large."""


class HelloParseError(TlsError, ValueError):
    """The peer's bytes are not a TLS server flight (or not a ClientHello)."""


class FlightLimitError(HelloParseError):
    """A peer's handshake flight exceeds one of the prober's caps (``limit``, in ``unit``)."""

    def __init__(self, message: str, *, limit: int, unit: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.unit = unit


__all__ = [
    "AcmeError",
    "AcmeResponseError",
    "AcmeTimeoutError",
    "AlreadyExistsError",
    "AuditError",
    "BackupError",
    "CasMismatch",
    "CertificateCheckError",
    "ChallengeFailedError",
    "ChallengeFailures",
    "ConflictError",
    "CorruptRecordError",
    "DecryptionError",
    "DestroyScheduleError",
    "FlightLimitError",
    "HelloParseError",
    "IntegrityError",
    "InvalidSignatureError",
    "InvalidTransitionError",
    "KeyUsageError",
    "KeylifeError",
    "LeaseLostError",
    "LifecycleError",
    "LockHeldError",
    "MaterialUnavailableError",
    "MessageLimitError",
    "NotFoundError",
    "PolicyError",
    "ProbeError",
    "RateLimitedError",
    "RingDeletedError",
    "RingNotEmptyError",
    "SpecNotAllowedError",
    "StoreError",
    "StoreUnavailableError",
    "TlsError",
    "TlsPolicyError",
    "TlsTargetError",
    "TokenExpiredError",
    "TransitKeyWeakenedError",
    "UnknownSpecError",
    "VaultPermissionError",
]
