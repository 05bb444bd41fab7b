"""Issue 11 item 3: transit-resident keys under the same policy as keys keylife generates.
Their type and strength are checked against the policy for the purpose on the day, at create
and at rotation, with the message `keylife key create` gives; their dates come from the
purpose's cryptoperiod (keylife.limits)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from keylife_cli.main import cli

from keylife.clock import FixedClock
from keylife.errors import SpecNotAllowedError
from keylife.policy import Purpose, default_policy

pytestmark = pytest.mark.vault

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _error(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--json", *args])
    return result.exit_code, json.loads(result.output)["error"]["message"]


def test_weak_transit_key_refused_like_key_create(vault_store: Any, tmp_path: Path) -> None:
    """The issue's example: `--policy 128-bit keylife vault transit create weak1 --type
    rsa-2048` is refused, with the words `keylife key create` uses for the same key."""
    vault = ["--store", vault_store.url, "--policy", "128-bit", "vault", "transit", "create"]
    local = ["--store", str(tmp_path / "k.db"), "--master-key-file", str(tmp_path / "mk")]
    assert CliRunner().invoke(cli, [*local, "init"]).exit_code == 0
    expected = {
        "signing": "rsa-2048 has 112-bit security strength; the 128-bit profile requires at "
        "least 128 bits for new keys on",
        "data-encryption": "rsa-2048 cannot be used for data-encryption; allowed for",
    }
    for purpose, words in expected.items():
        code, message = _error([*vault, "weak1", "--type", "rsa-2048", "--purpose", purpose])
        assert code == 1 and message.startswith(words), message
        create = ["key", "create", "weak1", "--type", "rsa-2048", "--purpose", purpose]
        key_code, key_message = _error([*local, "--policy", "128-bit", *create])
        assert key_code == 1 and message == key_message
    code, message = _error([*vault, "weak1", "--type", "rsa-2048"])  # the issue's own words
    assert code == 1 and "rsa-2048" in message
    assert vault_store.transit.key("kl-weak1") is None  # nothing was made in Transit
    refusals = [r for r in vault_store.read_audit() if r.ring == "transit:weak1"]
    assert refusals and all(r.outcome.startswith("failure: ") for r in refusals)


def test_signing_key_gets_its_purpose_and_cryptoperiod(vault_store: Any) -> None:
    policy = default_policy("128-bit")
    tk = vault_store.transit_rings(actor="ops", clock=FixedClock(T0), policy=policy)
    view = tk.create("sig", "ecdsa-p256", purpose="signing")
    v1 = view.version(1)
    assert view.ring.purpose == "signing" and view.to_dict()["purpose"] == "signing"
    assert v1.deactivation - v1.activation == policy.rules(Purpose.SIGNING).cryptoperiod
    again = tk.load("sig")  # read back from the record
    assert again.purpose == "signing" and again.versions[0].deactivation == v1.deactivation
    plain = tk.create("plain")  # default purpose, document shape as before
    assert plain.ring.purpose == "data-encryption"
    assert "purpose" not in vault_store.kv.read("tk/plain", what="t").data


def test_rotation_refused_when_the_policy_no_longer_allows_the_type(vault_store: Any) -> None:
    old = vault_store.transit_rings(actor="ops", clock=FixedClock(T0), policy=default_policy())
    old.create("legacy", "rsa-2048", purpose="signing")  # allowed (112 bits) until 2031
    later = T0 + dt.timedelta(days=30)
    strict = vault_store.transit_rings(
        actor="ops", clock=FixedClock(later), policy=default_policy("128-bit")
    )
    with pytest.raises(SpecNotAllowedError) as err:
        strict.rotate("legacy")
    message = str(err.value)
    assert message.startswith("transit ring legacy is not rotated: rsa-2048 has 112-bit")
    assert "keylife vault transit create NEW --type T --purpose signing" in message
    assert vault_store.transit.key("kl-legacy").latest_version == 1  # Transit untouched
    last = vault_store.read_audit()[-1]
    assert (last.ring, last.action) == ("transit:legacy", "rotate")
    assert last.outcome.startswith("failure: transit ring legacy is not rotated")
    # the same key under the policy that allows it rotates
    assert old.rotate("legacy", now=later).latest == 2
    # and after SP 800-131A's 2031 transition the default policy refuses it as well
    with pytest.raises(SpecNotAllowedError, match="SP 800-131A from 2031-01-01"):
        old.rotate("legacy", now=dt.datetime(2031, 2, 1, tzinfo=dt.UTC))
