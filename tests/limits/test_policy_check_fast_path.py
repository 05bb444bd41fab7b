"""`Policy.check` answers the common (allowed) case without listing every allowed spec (the
benchmark of issue 11's checks); it must still agree with `allowed_specs` everywhere."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from keylife.errors import SpecNotAllowedError
from keylife.policy import PURPOSE_KINDS, Purpose, default_policy, load_policy
from keylife.specs import SPECS, parse_spec

DATES = [dt.datetime(2026, 12, 1, tzinfo=dt.UTC), dt.datetime(2031, 6, 1, tzinfo=dt.UTC)]


@pytest.mark.parametrize("profile", ["default", "128-bit", "file"])
def test_check_agrees_with_allowed_specs(profile: str, tmp_path: Path) -> None:
    if profile == "file":
        path = tmp_path / "p.toml"
        path.write_text(
            '[policy]\n[purposes.signing]\nallowed = ["ed25519", "rsa-3072"]\n'
            'default_type = "ed25519"\n'
        )
        policy = load_policy(path)
    else:
        policy = default_policy(profile)
    for at in DATES:
        for purpose in Purpose:
            allowed = {s.name for s in policy.allowed_specs(purpose, at)}
            for name in SPECS:
                spec = parse_spec(name)
                expected = (
                    name in allowed
                    and spec.kind in PURPOSE_KINDS[purpose]
                    and spec.strength >= policy.minimum_strength(at)
                )
                try:
                    policy.check(spec, purpose, at)
                except SpecNotAllowedError:
                    assert not expected, (profile, at, purpose, name)
                else:
                    assert expected, (profile, at, purpose, name)
