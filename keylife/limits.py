"""The policy's limits on a version's dates: the cryptoperiod is a limit, not a default.

:func:`check_dates` is pure. Every door a version comes through (create, import, add a
CA-issued key, activate early) calls it with the purpose's rules and ``now``. A request outside
the limits is refused with an error that names the limit and the way round it; the way round
is an explicit, audited exception (``exceed_policy="reason"``), recorded on the version in the
attribute :data:`POLICY_EXCEPTION`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .clock import as_utc
from .errors import KeylifeError, LifecycleError, PolicyError
from .lifecycle import KeyVersion, Ring
from .policy import Policy, Purpose, PurposeRules

__all__ = [
    "POLICY_EXCEPTION",
    "VersionDates",
    "Violation",
    "check_dates",
    "spec_violation",
    "version_dates",
    "violations",
]

#: Version attribute holding the reason an operator gave for exceeding the policy.
POLICY_EXCEPTION = "policy_exception"

#: A new key's activation may trail ``now`` by this much (clock skew between the caller and
#: keylife); older activations would claim protection before the key existed.
SKEW = dt.timedelta(minutes=5)


def _days(delta: dt.timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:g} days" if days != 1 else "1 day"


def check_dates(
    rules: PurposeRules,
    purpose: str,
    *,
    now: dt.datetime,
    activation: dt.datetime,
    deactivation: dt.datetime,
    protect_stop: dt.datetime | None = None,
    process_start: dt.datetime | None = None,
    imported: bool = False,
    exceed_policy: str = "",
) -> None:
    """Refuse dates outside ``rules`` unless ``exceed_policy`` gives a reason.

    - deactivation after activation, and no more than the purpose's cryptoperiod after it;
    - a key keylife generates may not be activated in the past (``imported`` material, such
      as a certificate whose notBefore the CA set, may be);
    - protect-stop no later than deactivation, process-start before deactivation.
    """
    if deactivation <= activation:
        raise LifecycleError(
            f"deactivation ({deactivation.isoformat()}) must be after activation "
            f"({activation.isoformat()})"
        )
    if protect_stop is not None and protect_stop > deactivation:
        raise LifecycleError("protect-stop must be no later than deactivation")
    if process_start is not None and process_start >= deactivation:
        raise LifecycleError("process-start must be before deactivation")
    if exceed_policy:
        return
    if not imported and activation < now - SKEW:
        raise PolicyError(
            f"activation {activation.isoformat()} is in the past: a new key may not protect "
            "data from before it existed (import existing material with `keylife key import`, "
            "or pass --exceed-policy REASON)"
        )
    period = deactivation - activation
    if period > rules.cryptoperiod:
        raise PolicyError(
            f"deactivation {deactivation.isoformat()} is {_days(period)} after activation; the "
            f"{purpose} cryptoperiod allows at most {_days(rules.cryptoperiod)} (deactivate by "
            f"{(activation + rules.cryptoperiod).isoformat()}, or pass --exceed-policy REASON "
            "to record an exception)"
        )


@dataclass(frozen=True)
class VersionDates:
    activation: dt.datetime
    deactivation: dt.datetime
    protect_stop: dt.datetime | None = None
    process_start: dt.datetime | None = None


def version_dates(
    rules: PurposeRules,
    purpose: str,
    *,
    now: dt.datetime,
    activate_at: dt.datetime | None = None,
    deactivate_at: dt.datetime | None = None,
    protect_stop_at: dt.datetime | None = None,
    process_start_at: dt.datetime | None = None,
    imported: bool = False,
    exceed_policy: str = "",
) -> VersionDates:
    """A new version's dates: activation now and deactivation one cryptoperiod later unless
    given, checked with :func:`check_dates`."""
    activation = now if activate_at is None else as_utc(activate_at)
    deactivation = (
        activation + rules.cryptoperiod if deactivate_at is None else as_utc(deactivate_at)
    )
    dates = VersionDates(
        activation,
        deactivation,
        None if protect_stop_at is None else as_utc(protect_stop_at),
        None if process_start_at is None else as_utc(process_start_at),
    )
    check_dates(
        rules,
        purpose,
        now=now,
        activation=dates.activation,
        deactivation=dates.deactivation,
        protect_stop=dates.protect_stop,
        process_start=dates.process_start,
        imported=imported,
        exceed_policy=exceed_policy,
    )
    return dates


@dataclass(frozen=True)
class Violation:
    """One version outside the policy in force, and why."""

    ring: str
    version: int
    rule: str  # "spec" or "cryptoperiod"
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {
            "ring": self.ring,
            "version": self.version,
            "rule": self.rule,
            "reason": self.reason,
        }


def spec_violation(ring: Ring, version: KeyVersion, policy: Policy, now: dt.datetime) -> str:
    """Why ``version``'s spec would not be allowed for a new key today ("" when it would)."""
    try:
        policy.check(version.spec, Purpose(ring.purpose), now)
    except ValueError:
        return f"unknown purpose {ring.purpose!r}"
    except KeylifeError as exc:
        return str(exc)
    return ""


def violations(rings: list[Ring], policy: Policy, now: dt.datetime) -> list[Violation]:
    """Every version that still holds material and falls outside today's policy: a spec the
    policy no longer allows, or a cryptoperiod longer than the purpose's without a recorded
    exception."""
    out: list[Violation] = []
    for ring in rings:
        if ring.damage:
            continue
        try:
            rules = policy.rules(Purpose(ring.purpose))
        except ValueError:
            continue
        for v in ring.versions:
            if not v.has_material:
                continue
            why = spec_violation(ring, v, policy, now)
            if why:
                out.append(Violation(ring.name, v.number, "spec", why))
            period = (
                None
                if v.activation is None or v.deactivation is None
                else v.deactivation - v.activation
            )
            too_long = period is not None and period > rules.cryptoperiod
            if too_long and period is not None and POLICY_EXCEPTION not in v.attributes:
                out.append(
                    Violation(
                        ring.name,
                        v.number,
                        "cryptoperiod",
                        f"active for {_days(period)}; the {ring.purpose} cryptoperiod is "
                        f"{_days(rules.cryptoperiod)}",
                    )
                )
    return out
