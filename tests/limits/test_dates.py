"""Issue 11, item 1: a version's dates stay inside the policy at every door, and an exception
is explicit, recorded on the version and audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

import keylife
from keylife.errors import PolicyError
from keylife.limits import POLICY_EXCEPTION
from keylife.material import KeyMaterial

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
YEAR = dt.timedelta(days=365)


@pytest.fixture
def m(tmp_path: Path) -> Iterator[keylife.KeyManager]:
    with keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "mk") as manager:
        yield manager.at(keylife.FixedClock(T0))


def test_deactivation_beyond_the_cryptoperiod_is_refused_naming_the_limit(m) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyError) as refused:
        m.create_ring("long", purpose="data-encryption", deactivate_at=dt.datetime(2035, 1, 1))
    text = str(refused.value)
    assert "cryptoperiod allows at most 365 days" in text and "--exceed-policy" in text
    assert not m.store.list_ring_names()
    # `rotate --dry-run` can no longer be fooled into "nothing due" for eight years


def test_an_exception_is_explicit_recorded_and_audited(m) -> None:  # type: ignore[no-untyped-def]
    v = m.create_ring(
        "long",
        purpose="data-encryption",
        deactivate_at=dt.datetime(2035, 1, 1),
        exceed_policy="archive key, approved in CHG-1234",
    )
    assert v.deactivation == dt.datetime(2035, 1, 1, tzinfo=dt.UTC)
    assert v.attributes[POLICY_EXCEPTION] == "archive key, approved in CHG-1234"
    records = [r for r in m.audit_records("long") if r.action == "policy-exception"]
    assert [r.reason for r in records] == ["archive key, approved in CHG-1234"]


def test_a_new_key_may_not_activate_in_the_past(m) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyError, match="in the past"):
        m.create_ring("old", purpose="signing", activate_at=T0 - dt.timedelta(days=30))


def test_imported_material_may_be_back_dated_but_not_beyond_the_cryptoperiod(m) -> None:  # type: ignore[no-untyped-def]
    from keylife.keygen import generate

    spec = keylife.parse_spec("ec-p256")
    material: KeyMaterial = generate(spec)
    v = m.create_ring("cert", "ec-p256", "signing", material=material, activate_at=T0 - YEAR)
    assert v.activation == T0 - YEAR
    with pytest.raises(PolicyError, match="cryptoperiod"):
        m.add_version(
            "cert",
            generate(spec),
            activate_at=T0 - YEAR,
            deactivate_at=T0 + 5 * YEAR,
        )


def test_early_activation_recomputes_deactivation_from_the_actual_activation(m) -> None:  # type: ignore[no-untyped-def]
    v = m.create_ring("orders", purpose="data-encryption", activate_at=dt.datetime(2030, 1, 1))
    assert v.deactivation == dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    active = m.activate("orders", 1)
    assert active.activation == T0
    assert active.deactivation == T0 + YEAR  # not 2031: the cryptoperiod runs from now


def test_cli_refuses_and_accepts_with_a_reason(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from keylife_cli.main import cli

    env = {
        "KEYLIFE_STORE": str(tmp_path / "c.db"),
        "KEYLIFE_MASTER_KEY_FILE": str(tmp_path / "cmk"),
    }
    run = CliRunner(env=env).invoke
    assert run(cli, ["init"]).exit_code == 0
    refused = run(
        cli,
        ["key", "create", "long", "--purpose", "data-encryption", "--deactivate-at", "2035-01-01"],
    )
    assert refused.exit_code == 1 and "cryptoperiod" in refused.output
    accepted = run(
        cli,
        [
            "--json",
            "key", "create", "long", "--purpose", "data-encryption",
            "--deactivate-at", "2035-01-01", "--exceed-policy", "legal hold",
        ],
    )  # fmt: skip
    assert accepted.exit_code == 0, accepted.output
    assert '"policy_exception": "legal hold"' in accepted.output
