"""TLS policy profiles and user policies loaded from the ``[tls]`` table of a TOML policy file.

Every rule has a stable, versioned id (``tls.<area>.<name>.v<N>``). A rule's meaning never
changes under the same id: a stricter or different reading gets a new version, and policy files
name the version they were written against.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from keylife.errors import TlsPolicyError
from keylife.tls.ciphersuites import group_by_name, suite_by_name
from keylife.tls.clienthello import TlsVersion

__all__ = [
    "PROFILES",
    "RULES",
    "TlsPolicy",
    "TlsPolicyError",
    "load_policy",
    "policy_from_mapping",
]

Action = Literal["fail", "warn", "off"]


# rule id -> (title, default action)
RULES: Mapping[str, tuple[str, Action]] = MappingProxyType(
    {
        "tls.protocol.min-version.v1": ("protocol version below the minimum is enabled", "fail"),
        "tls.protocol.tls13-required.v1": ("TLS 1.3 is not supported", "fail"),
        "tls.cipher.min-strength.v1": ("cipher suite below the minimum strength", "fail"),
        "tls.cipher.null.v1": ("NULL (unencrypted) cipher suite", "fail"),
        "tls.cipher.anonymous.v1": ("anonymous (unauthenticated) cipher suite", "fail"),
        "tls.cipher.export.v1": ("EXPORT-grade cipher suite", "fail"),
        "tls.cipher.rc4.v1": ("RC4 cipher suite (RFC 7465)", "fail"),
        "tls.cipher.allowlist.v1": ("cipher suite outside the policy's list", "fail"),
        "tls.kex.forward-secrecy.v1": ("cipher suite without forward secrecy", "fail"),
        "tls.kex.dh-size.v1": ("finite-field DH group below the minimum size", "fail"),
        "tls.kex.group.v1": ("key-exchange group not allowed", "fail"),
        "tls.cert.key-size.v1": ("certificate key below the minimum size", "fail"),
        "tls.cert.key-type.v1": ("certificate key type not allowed", "fail"),
        "tls.cert.signature-hash.v1": ("certificate signed with a weak hash", "fail"),
        "tls.cert.expired.v1": ("certificate expired", "fail"),
        "tls.cert.not-yet-valid.v1": ("certificate not yet valid", "fail"),
        "tls.cert.expiring.v1": ("certificate expires soon", "warn"),
        "tls.cert.hostname.v1": ("certificate does not match the host name", "fail"),
        "tls.cert.self-signed.v1": ("self-signed leaf certificate", "fail"),
        "tls.cert.chain-complete.v1": ("certificate chain incomplete", "fail"),
        "tls.cert.chain-order.v1": ("certificate chain out of order", "fail"),
        "tls.cert.trusted.v1": ("certificate chain not trusted", "fail"),
        "tls.cert.missing.v1": ("no certificate", "fail"),
        "tls.context.verify-mode.v1": ("client context does not verify certificates", "fail"),
        "tls.context.hostname-check.v1": ("client context does not check host names", "fail"),
    }
)


@dataclass(frozen=True)
class TlsPolicy:
    """What a compliant TLS endpoint or context looks like."""

    name: str
    min_version: TlsVersion = TlsVersion.TLS1_2
    require_tls13: bool = False
    min_cipher_bits: int = 128
    forward_secrecy: bool = True
    allowed_suites: frozenset[str] | None = None  # IANA names; None: any that pass the rules
    allowed_ciphers: frozenset[str] | None = None  # bulk ciphers ("AES_128_GCM"); None: any
    min_dh_bits: int = 2048
    min_group_strength: int = 128  # security bits of an EC group
    allowed_groups: frozenset[str] | None = None
    min_rsa_bits: int = 2048
    min_ec_bits: int = 256
    allowed_key_types: frozenset[str] = frozenset({"RSA", "EC", "Ed25519", "Ed448"})
    weak_signature_hashes: frozenset[str] = frozenset({"md5", "sha1"})
    expiry_warning_days: int = 30
    rules: Mapping[str, Action] = field(default_factory=lambda: MappingProxyType({}))

    def action(self, rule_id: str) -> Action:
        """fail, warn or off for ``rule_id`` under this policy."""
        return self.rules.get(rule_id, RULES[rule_id][1])

    def allows_suite(self, iana_name: str, cipher: str) -> bool:
        if self.allowed_suites is not None and iana_name not in self.allowed_suites:
            return False
        return self.allowed_ciphers is None or cipher in self.allowed_ciphers


_TLS13_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")

_DEFAULT = TlsPolicy(name="default")

# https://wiki.mozilla.org/Security/Server_Side_TLS (guidelines 5.7)
_MOZILLA_INTERMEDIATE = TlsPolicy(
    name="mozilla-intermediate",
    allowed_suites=frozenset(
        (
            *_TLS13_SUITES,
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        )
    ),
    allowed_groups=frozenset({"x25519", "secp256r1", "secp384r1", "ffdhe2048", "ffdhe3072"}),
    allowed_key_types=frozenset({"RSA", "EC"}),
)

_MOZILLA_MODERN = dataclasses.replace(
    _MOZILLA_INTERMEDIATE,
    name="mozilla-modern",
    min_version=TlsVersion.TLS1_3,
    require_tls13=True,
    allowed_suites=frozenset(_TLS13_SUITES),
    allowed_groups=frozenset({"x25519", "secp256r1", "secp384r1"}),
    allowed_key_types=frozenset({"EC"}),
)

# NIST SP 800-52 Rev. 2: TLS 1.2 minimum, TLS 1.3 support required since 2024-01-01, AES in
# GCM, CCM or CBC mode, ephemeral key exchange preferred (RSA key transport still permitted),
# NIST curves or X25519/X448, DH and RSA of at least 2048 bits.
_NIST = TlsPolicy(
    name="nist-800-52r2",
    require_tls13=True,
    allowed_ciphers=frozenset(
        {
            "AES_128_GCM",
            "AES_256_GCM",
            "AES_128_CCM",
            "AES_256_CCM",
            "AES_128_CCM_8",
            "AES_256_CCM_8",
            "AES_128_CBC",
            "AES_256_CBC",
        }
    ),
    allowed_groups=frozenset(
        {"secp256r1", "secp384r1", "secp521r1", "x25519", "x448"}
        | {f"ffdhe{n}" for n in (2048, 3072, 4096, 6144, 8192)}
    ),
    rules=MappingProxyType({"tls.kex.forward-secrecy.v1": "warn"}),
)

PROFILES: Mapping[str, TlsPolicy] = MappingProxyType(
    {p.name: p for p in (_DEFAULT, _MOZILLA_INTERMEDIATE, _MOZILLA_MODERN, _NIST)}
)


def load_policy(spec: str | Path | TlsPolicy | None = None) -> TlsPolicy:
    """A profile by name, a policy from a TOML file's ``[tls]`` table, or ``default``."""
    if spec is None:
        return _DEFAULT
    if isinstance(spec, TlsPolicy):
        return spec
    if isinstance(spec, str) and spec in PROFILES:
        return PROFILES[spec]
    path = Path(spec)
    if not path.is_file():
        known = ", ".join(PROFILES)
        raise TlsPolicyError(
            f"no TLS policy profile or file named {str(spec)!r} (profiles: {known})"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise TlsPolicyError(f"cannot read TLS policy {path}: {_one_line(exc)}") from exc
    table = data.get("tls")
    if not isinstance(table, dict):
        raise TlsPolicyError(f"{path} has no [tls] table")
    return policy_from_mapping(table, default_name=path.stem)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "values nested too deeply to parse"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


_LIST_FIELDS = {"allowed_suites", "allowed_ciphers", "allowed_groups", "allowed_key_types"}
_INT_FIELDS = {
    "min_cipher_bits",
    "min_dh_bits",
    "min_group_strength",
    "min_rsa_bits",
    "min_ec_bits",
    "expiry_warning_days",
}
_BOOL_FIELDS = {"require_tls13", "forward_secrecy"}


def policy_from_mapping(table: Mapping[str, Any], *, default_name: str = "custom") -> TlsPolicy:
    """Build a policy from a ``[tls]`` table (already parsed TOML)."""
    base_name = table.get("extends", "default")
    if base_name not in PROFILES:
        raise TlsPolicyError(f"[tls] extends unknown profile {base_name!r}")
    changes: dict[str, Any] = {"name": str(table.get("name", default_name))}
    for key, value in table.items():
        if key in ("extends", "name", "rules"):
            continue
        if key == "min_version":
            try:
                changes[key] = TlsVersion.from_label(str(value))
            except ValueError as exc:
                raise TlsPolicyError(f"[tls] min_version: {exc}") from exc
        elif key in _INT_FIELDS:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TlsPolicyError(f"[tls] {key} must be a non-negative integer")
            changes[key] = value
        elif key in _BOOL_FIELDS:
            if not isinstance(value, bool):
                raise TlsPolicyError(f"[tls] {key} must be true or false")
            changes[key] = value
        elif key in _LIST_FIELDS or key == "weak_signature_hashes":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TlsPolicyError(f"[tls] {key} must be a list of strings")
            changes[key] = frozenset(_normalise(key, v) for v in value)
        else:
            raise TlsPolicyError(f"[tls] unknown setting {key!r}")
    base = PROFILES[base_name]
    rules = dict(base.rules)
    for rule_id, action in dict(table.get("rules", {})).items():
        if rule_id not in RULES:
            raise TlsPolicyError(_unknown_rule_message(rule_id))
        if action not in ("fail", "warn", "off"):
            raise TlsPolicyError(f"[tls.rules] {rule_id} must be 'fail', 'warn' or 'off'")
        rules[rule_id] = action
    changes["rules"] = MappingProxyType(rules)
    return dataclasses.replace(base, **changes)


def _normalise(key: str, value: str) -> str:
    if key == "allowed_suites":
        suite = suite_by_name(value)
        if suite is None:
            raise TlsPolicyError(f"[tls] allowed_suites: unknown cipher suite {value!r}")
        return suite.name
    if key == "allowed_groups":
        group = group_by_name(value)
        if group is None:
            raise TlsPolicyError(f"[tls] allowed_groups: unknown group {value!r}")
        return group.name
    if key == "weak_signature_hashes":
        return value.lower()
    return value


def _unknown_rule_message(rule_id: str) -> str:
    stem = rule_id.rsplit(".v", 1)[0]
    versions = sorted(r for r in RULES if r.rsplit(".v", 1)[0] == stem)
    if versions:
        return f"[tls.rules] unknown rule version {rule_id!r}; this keylife knows {versions}"
    return f"[tls.rules] unknown rule {rule_id!r}"
