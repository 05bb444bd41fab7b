"""Key policy: which key specs are approved for which purpose as of which date, and the
cryptoperiod, rotation lead time and grace period of each purpose.

Strength schedule (NIST SP 800-57 Part 1 Rev. 5 §5.6.3, SP 800-131A Rev. 2):

* ``default`` profile: at least 112-bit strength for new keys through 2030-12-31,
  at least 128-bit from 2031-01-01.
* ``128-bit`` profile: at least 128-bit strength on every date.

3DES, DSA, RSA below 2048 and P-224 are never generated, whatever the profile.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .durations import format_duration, parse_duration
from .errors import KeylifeError, PolicyError, SpecNotAllowedError
from .specs import SPECS, KeyKind, KeySpec

UTC = dt.UTC


class Purpose(enum.Enum):
    SIGNING = "signing"
    DATA_ENCRYPTION = "data-encryption"
    KEY_WRAPPING = "key-wrapping"
    KEY_AGREEMENT = "key-agreement"
    TLS_SERVER = "tls-server"
    TLS_CLIENT = "tls-client"
    AUTHENTICATION = "authentication"

    @classmethod
    def parse(cls, value: str) -> Purpose:
        try:
            return cls(value)
        except ValueError:
            raise PolicyError(
                f"unknown purpose {value!r}; allowed purposes: {', '.join(p.value for p in cls)}"
            ) from None


#: Which kinds of key can serve which purpose at all.
PURPOSE_KINDS: dict[Purpose, frozenset[KeyKind]] = {
    Purpose.SIGNING: frozenset({KeyKind.RSA, KeyKind.EC, KeyKind.ED25519, KeyKind.ED448}),
    Purpose.DATA_ENCRYPTION: frozenset({KeyKind.AES, KeyKind.CHACHA20}),
    Purpose.KEY_WRAPPING: frozenset({KeyKind.AES, KeyKind.RSA}),
    Purpose.KEY_AGREEMENT: frozenset({KeyKind.X25519, KeyKind.EC}),
    Purpose.TLS_SERVER: frozenset({KeyKind.RSA, KeyKind.EC, KeyKind.ED25519}),
    Purpose.TLS_CLIENT: frozenset({KeyKind.RSA, KeyKind.EC, KeyKind.ED25519}),
    Purpose.AUTHENTICATION: frozenset({KeyKind.HMAC}),
}

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class PurposeRules:
    """Lifecycle timing of one purpose.

    ``cryptoperiod``: how long a version applies protection (activation to deactivation).
    ``lead_time``: how long before the end of the cryptoperiod ``keylife rotate`` makes the
    successor. ``grace_period``: how long after deactivation a version still processes
    (decrypts, verifies). ``destroy_after``: when set, a deactivated version is destroyed this
    long after its deactivation (never sooner than the grace period). ``stage``: when set,
    rotation is staged: the successor is created pre-active and activated ``stage`` later, so
    services can load it before it is used. ``max_messages``: when set, ``keylife rotate``
    rotates once the primary has encrypted that many messages under random nonces (counted per
    version, :mod:`keylife.counters`); the default for AES-GCM purposes is half the NIST limit.
    """

    cryptoperiod: dt.timedelta
    lead_time: dt.timedelta
    grace_period: dt.timedelta
    default_type: str
    destroy_after: dt.timedelta | None = None
    stage: dt.timedelta | None = None
    allowed: tuple[str, ...] | None = None
    max_messages: int | None = None


# Defaults in the order of SP 800-57 Part 1 Rev. 5, Table 1 (originator-usage periods).
DEFAULT_RULES: dict[Purpose, PurposeRules] = {
    Purpose.SIGNING: PurposeRules(730 * DAY, 30 * DAY, 365 * DAY, "ec-p256"),
    Purpose.DATA_ENCRYPTION: PurposeRules(
        365 * DAY, 14 * DAY, 1095 * DAY, "aes-256", max_messages=1 << 31
    ),
    Purpose.KEY_WRAPPING: PurposeRules(
        365 * DAY, 14 * DAY, 730 * DAY, "aes-256", max_messages=1 << 31
    ),
    Purpose.KEY_AGREEMENT: PurposeRules(365 * DAY, 14 * DAY, 30 * DAY, "x25519"),
    Purpose.TLS_SERVER: PurposeRules(
        90 * DAY, 30 * DAY, 0 * DAY, "ec-p256", destroy_after=30 * DAY
    ),
    Purpose.TLS_CLIENT: PurposeRules(
        90 * DAY, 30 * DAY, 0 * DAY, "ec-p256", destroy_after=30 * DAY
    ),
    Purpose.AUTHENTICATION: PurposeRules(365 * DAY, 14 * DAY, 365 * DAY, "hmac-sha256"),
}

PROFILES = ("default", "128-bit")
TRANSITION_DATE = dt.datetime(2031, 1, 1, tzinfo=UTC)
#: The most messages one key may encrypt under random 96-bit nonces (NIST SP 800-38D §8.3);
#: ``max_messages`` may not exceed it. Purposes whose keys take a nonce may set it.
MESSAGE_LIMIT = 1 << 32
NONCE_PURPOSES = frozenset({Purpose.DATA_ENCRYPTION, Purpose.KEY_WRAPPING})


@dataclass(frozen=True)
class Policy:
    """An effective key policy. Load one with :func:`load_policy` or use :func:`default_policy`."""

    profile: str = "default"
    min_strength: int = 112
    purposes: Mapping[Purpose, PurposeRules] = field(default_factory=lambda: dict(DEFAULT_RULES))
    source: str = "<built-in>"
    #: Record every load of secret material in the audit log (batched: keylife.accesslog).
    audit_reads: bool = False
    #: How long an operator's ``destroy`` waits before ``keylife rotate`` carries it out (at
    #: least :data:`MIN_DESTROY_WAIT`; a compromised version may be destroyed sooner).
    destroy_wait: dt.timedelta = 7 * DAY
    #: Two-person rule: a scheduled destruction also waits for a second actor's approval.
    destroy_requires_second_actor: bool = False

    def __post_init__(self) -> None:
        if self.destroy_wait < DAY:  # the same floor as a policy file (MIN_DESTROY_WAIT)
            raise PolicyError(
                f"destroy_wait must be at least 1d, not {format_duration(self.destroy_wait)}: a "
                "scheduled destruction waits at least a day so a mistake can be cancelled (a "
                "compromised version may still be destroyed sooner with destroy(wait=...))"
            )

    def minimum_strength(self, at: dt.datetime) -> int:
        """Minimum security strength for a key generated at ``at``."""
        floor = 128 if self.profile == "128-bit" or at >= TRANSITION_DATE else 112
        return max(floor, self.min_strength)

    def rules(self, purpose: Purpose) -> PurposeRules:
        return self.purposes[purpose]

    def allowed_specs(self, purpose: Purpose, at: dt.datetime) -> list[KeySpec]:
        """Specs approved for new keys of ``purpose`` at ``at``."""
        rules = self.rules(purpose)
        floor = self.minimum_strength(at)
        names = rules.allowed if rules.allowed is not None else tuple(SPECS)
        return [
            SPECS[n]
            for n in names
            if SPECS[n].kind in PURPOSE_KINDS[purpose] and SPECS[n].strength >= floor
        ]

    def check(self, spec: KeySpec, purpose: Purpose, at: dt.datetime) -> None:
        """Raise :class:`SpecNotAllowedError` unless ``spec`` may be generated for ``purpose``."""
        floor, kinds, rules = self.minimum_strength(at), PURPOSE_KINDS[purpose], self.rules(purpose)
        base = SPECS.get(spec.name.partition(":")[0])
        listed = rules.allowed if rules.allowed is not None else SPECS
        if (
            spec.kind in kinds
            and spec.strength >= floor
            and base is not None
            and base.name in listed
            and base.kind in kinds
            and base.strength >= floor
        ):
            return  # allowed: the common case, without listing what else is
        allowed = self.allowed_specs(purpose, at)
        allowed_names = ", ".join(s.name for s in allowed) or "none"
        day = at.date().isoformat()
        if spec.kind not in PURPOSE_KINDS[purpose]:
            raise SpecNotAllowedError(
                f"{spec.name} cannot be used for {purpose.value}; allowed for {purpose.value} "
                f"on {day}: {allowed_names}"
            )
        floor = self.minimum_strength(at)
        if spec.strength < floor:
            why = (
                "the 128-bit profile"
                if self.profile == "128-bit"
                else "SP 800-131A from 2031-01-01"
                if at >= TRANSITION_DATE
                else "SP 800-131A"
            )
            raise SpecNotAllowedError(
                f"{spec.name} has {spec.strength}-bit security strength; {why} requires at least "
                f"{floor} bits for new keys on {day}. Allowed for {purpose.value}: "
                f"{allowed_names}"
            )
        if spec.name.partition(":")[0] not in {s.name for s in allowed}:
            raise SpecNotAllowedError(
                f"{spec.name} is not in the policy's allowed list for {purpose.value}; "
                f"allowed on {day}: {allowed_names}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON- and TOML-friendly view of the effective policy."""
        return {
            "source": self.source,
            "profile": self.profile,
            "min_strength": self.min_strength,
            "audit_reads": self.audit_reads,
            "destroy_wait": format_duration(self.destroy_wait),
            "destroy_requires_second_actor": self.destroy_requires_second_actor,
            "purposes": {
                p.value: {
                    "cryptoperiod": format_duration(r.cryptoperiod),
                    "lead_time": format_duration(r.lead_time),
                    "grace_period": format_duration(r.grace_period),
                    "destroy_after": None
                    if r.destroy_after is None
                    else format_duration(r.destroy_after),
                    "stage": None if r.stage is None else format_duration(r.stage),
                    "default_type": r.default_type,
                    "allowed": list(r.allowed) if r.allowed is not None else None,
                    "max_messages": r.max_messages,
                }
                for p, r in self.purposes.items()
            },
        }


def default_policy(profile: str = "default") -> Policy:
    """The built-in policy, for the ``default`` or the ``128-bit`` profile."""
    if profile not in PROFILES:
        raise PolicyError(f"unknown profile {profile!r}; allowed profiles: {', '.join(PROFILES)}")
    return Policy(profile=profile, min_strength=128 if profile == "128-bit" else 112)


_PURPOSE_KEYS = {
    "cryptoperiod",
    "lead_time",
    "grace_period",
    "destroy_after",
    "stage",
    "default_type",
    "allowed",
    "max_messages",
}


def load_policy(path: str | Path) -> Policy:
    """Load and validate a TOML policy file.

    Every error names the file, the offending key and what is allowed there.
    """
    path = Path(path)
    where = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_POLICY_BYTES + 1)
    except FileNotFoundError:
        raise PolicyError(f"{where}: policy file not found") from None
    except IsADirectoryError:
        raise PolicyError(f"{where}: is a directory, not a policy file") from None
    except OSError as exc:
        raise PolicyError(f"{where}: cannot read the policy file: {exc.strerror}") from None
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(f"{where}: larger than {MAX_POLICY_BYTES >> 10} KiB; not a policy file")
    data = parse_toml(raw, where, PolicyError)
    return policy_from_dict(data, where)


#: The largest policy or config file keylife reads.
MAX_POLICY_BYTES = 1 << 20


def parse_toml(raw: bytes, where: str, error: type[KeylifeError]) -> dict[str, Any]:
    """Parse a TOML file's bytes; every problem is one ``error`` line naming ``where``."""
    import tomllib

    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{where}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where}: not valid TOML: {exc}") from None
    except RecursionError:
        raise error(f"{where}: not valid TOML: nested too deeply") from None


def _key(name: str) -> str:
    """A TOML key as written in a message: bare if it can be, else quoted and escaped."""
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name, re.ASCII):
        return name
    return json.dumps(name[:64])


def policy_from_dict(data: Mapping[str, Any], where: str = "<policy>") -> Policy:
    unknown = set(data) - {"policy", "purposes", "tls"}
    if unknown:
        raise PolicyError(
            f"{where}: unknown table {sorted(unknown)[0]!r}; allowed tables: policy, purposes, tls"
        )
    head = data.get("policy", {})
    if not isinstance(head, Mapping):
        raise PolicyError(f"{where}: 'policy' must be a table")
    bad = set(head) - {"profile", "min_strength", "audit_reads", *_DESTROY_KEYS}
    if bad:
        raise PolicyError(
            f"{where}: unknown key policy.{_key(sorted(bad)[0])}; "
            f"allowed keys: profile, min_strength, audit_reads, {', '.join(_DESTROY_KEYS)}"
        )
    audit_reads = head.get("audit_reads", False)
    if not isinstance(audit_reads, bool):
        raise PolicyError(
            f"{where}: policy.audit_reads = {audit_reads!r:.40} is not allowed; "
            "allowed values: true, false"
        )
    profile = head.get("profile", "default")
    if profile not in PROFILES:
        raise PolicyError(
            f"{where}: policy.profile = {profile!r} is not allowed; allowed values: "
            f"{', '.join(PROFILES)}"
        )
    base = default_policy(profile)
    min_strength = head.get("min_strength", base.min_strength)
    if not isinstance(min_strength, int) or min_strength not in (112, 128, 192, 256):
        raise PolicyError(
            f"{where}: policy.min_strength = {min_strength!r} is not allowed; allowed values: "
            "112, 128, 192, 256"
        )
    if min_strength < base.min_strength:
        raise PolicyError(
            f"{where}: policy.min_strength = {min_strength} is below the {profile} profile's "
            f"minimum of {base.min_strength}; allowed values: {base.min_strength} or more"
        )
    purposes = dict(DEFAULT_RULES)
    table = data.get("purposes", {})
    if not isinstance(table, Mapping):
        raise PolicyError(f"{where}: 'purposes' must be a table")
    for pname, body in table.items():
        try:
            purpose = Purpose(pname)
        except ValueError:
            raise PolicyError(
                f"{where}: unknown purpose purposes.{_key(pname)}; allowed purposes: "
                f"{', '.join(p.value for p in Purpose)}"
            ) from None
        purposes[purpose] = _purpose_rules(purposes[purpose], purpose, body, where)
    policy = Policy(
        profile=profile,
        min_strength=min_strength,
        purposes=purposes,
        source=where,
        audit_reads=audit_reads,
    )
    policy = replace(policy, **_destroy_settings(head, where))
    for purpose, rules in purposes.items():
        _check_default_type(policy, purpose, rules, where)
    return policy


#: The shortest ``policy.destroy_wait`` a policy file may set.
MIN_DESTROY_WAIT = DAY
_DESTROY_KEYS = ("destroy_wait", "destroy_requires_second_actor")


def _destroy_settings(head: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``policy.destroy_wait`` (at least a day) and ``policy.destroy_requires_second_actor``."""
    out: dict[str, Any] = {}
    if "destroy_wait" in head:
        value = head["destroy_wait"]
        shown = repr(value) if len(repr(value)) <= 40 else "this value"
        try:
            wait = parse_duration(value)
        except ValueError as exc:
            raise PolicyError(
                f"{where}: policy.destroy_wait = {shown} is not allowed; expected {exc}"
            ) from None
        if wait < MIN_DESTROY_WAIT:
            raise PolicyError(
                f"{where}: policy.destroy_wait = {shown} is below the minimum of 1d; a scheduled "
                "destruction waits at least a day so a mistake can be cancelled (a compromised "
                "version may still be destroyed sooner with `key destroy --wait`)"
            )
        out["destroy_wait"] = wait
    if "destroy_requires_second_actor" in head:
        flag = head["destroy_requires_second_actor"]
        if not isinstance(flag, bool):
            raise PolicyError(
                f"{where}: policy.destroy_requires_second_actor must be true or false, not a "
                f"{type(flag).__name__}"
            )
        out["destroy_requires_second_actor"] = flag
    return out


def _purpose_rules(base: PurposeRules, purpose: Purpose, body: Any, where: str) -> PurposeRules:
    prefix = f"purposes.{purpose.value}"
    if not isinstance(body, Mapping):
        raise PolicyError(f"{where}: {prefix} must be a table")
    bad = set(body) - _PURPOSE_KEYS
    if bad:
        raise PolicyError(
            f"{where}: unknown key {prefix}.{_key(sorted(bad)[0])}; allowed keys: "
            f"{', '.join(sorted(_PURPOSE_KEYS))}"
        )
    changes: dict[str, Any] = {}
    for key in ("cryptoperiod", "lead_time", "grace_period", "destroy_after", "stage"):
        if key in body:
            try:
                changes[key] = parse_duration(body[key])
            except ValueError as exc:
                shown = repr(body[key]) if len(repr(body[key])) <= 40 else "this value"
                raise PolicyError(
                    f"{where}: {prefix}.{key} = {shown} is not allowed; expected {exc}"
                ) from None
    if "allowed" in body:
        allowed = body["allowed"]
        kinds = PURPOSE_KINDS[purpose]
        names = sorted(n for n, s in SPECS.items() if s.kind in kinds)
        if not isinstance(allowed, list) or not allowed:
            raise PolicyError(f"{where}: {prefix}.allowed must be a non-empty list of key types")
        for item in allowed:
            if item not in names:
                raise PolicyError(
                    f"{where}: {prefix}.allowed contains {item!r}; allowed values for "
                    f"{purpose.value}: {', '.join(names)}"
                )
        changes["allowed"] = tuple(allowed)
    if "default_type" in body:
        changes["default_type"] = str(body["default_type"])
    if "max_messages" in body:
        changes["max_messages"] = _max_messages(body["max_messages"], purpose, prefix, where)
    rules = replace(base, **changes)
    if rules.cryptoperiod <= dt.timedelta(0):
        raise PolicyError(f"{where}: {prefix}.cryptoperiod must be longer than zero")
    if rules.lead_time >= rules.cryptoperiod:
        raise PolicyError(
            f"{where}: {prefix}.lead_time ({format_duration(rules.lead_time)}) must be shorter "
            f"than the cryptoperiod ({format_duration(rules.cryptoperiod)})"
        )
    if rules.stage is not None and rules.stage >= rules.lead_time:
        raise PolicyError(
            f"{where}: {prefix}.stage ({format_duration(rules.stage)}) must be shorter than "
            f"lead_time ({format_duration(rules.lead_time)}) so the successor activates in time"
        )
    if rules.destroy_after is not None and rules.destroy_after < rules.grace_period:
        raise PolicyError(
            f"{where}: {prefix}.destroy_after must be at least the grace_period "
            f"({format_duration(rules.grace_period)})"
        )
    return rules


def _max_messages(value: Any, purpose: Purpose, prefix: str, where: str) -> int:
    if purpose not in NONCE_PURPOSES:
        counted = ", ".join(sorted(p.value for p in NONCE_PURPOSES))
        raise PolicyError(
            f"{where}: {prefix}.max_messages is not allowed: only purposes whose keys encrypt "
            f"with random nonces count messages ({counted})"
        )
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MESSAGE_LIMIT:
        shown = repr(value) if len(repr(value)) <= 40 else "this value"
        raise PolicyError(
            f"{where}: {prefix}.max_messages = {shown} is not allowed; expected a whole number "
            f"from 1 to {MESSAGE_LIMIT} (2**32, the NIST limit for random 96-bit nonces)"
        )
    return value


def _check_default_type(policy: Policy, purpose: Purpose, rules: PurposeRules, where: str) -> None:
    # The default type only has to be allowed by kind and list; its date check happens at
    # generation time, so a policy written today stays loadable in 2031.
    spec = SPECS.get(rules.default_type)
    kinds = PURPOSE_KINDS[purpose]
    allowed = rules.allowed if rules.allowed is not None else tuple(SPECS)
    if spec is None or spec.kind not in kinds or spec.name not in allowed:
        choices = ", ".join(n for n in allowed if n in SPECS and SPECS[n].kind in kinds)
        raise PolicyError(
            f"{where}: purposes.{purpose.value}.default_type = {rules.default_type!r} is not "
            f"allowed; allowed values: {choices}"
        )
