"""Fuzzing policy and config files, durations and dates (issue 10, "fuzzing that keeps it fixed").

Property: a keylife error (one line) or a valid result, never another exception; a valid
policy's durations stay within the documented bound, and a valid date plus the largest
duration does not overflow.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keylife.clock import MAX_YEAR, MIN_YEAR, parse_time
from keylife.config import file_settings
from keylife.durations import MAX_DURATION, parse_duration
from keylife.errors import KeylifeError, PolicyError
from keylife.policy import load_policy, policy_from_dict

from .files_support import mutate

FUZZ = settings(
    max_examples=150,
    deadline=dt.timedelta(milliseconds=500),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

VALID_POLICY = """\
[policy]
profile = "default"
min_strength = 112

[purposes.signing]
cryptoperiod = "730d"
lead_time = "30d"
grace_period = "365d"
default_type = "ec-p256"
allowed = ["ec-p256", "ec-p384", "ed25519"]

[purposes.tls-server]
cryptoperiod = "90d"
lead_time = "30d"
stage = "2d"
grace_period = "0s"
destroy_after = "30d"

[tls]
profile = "intermediate"
"""


def _check(policy: Any) -> None:
    for rules in policy.purposes.values():
        for value in (rules.cryptoperiod, rules.lead_time, rules.grace_period):
            assert dt.timedelta(0) <= value <= MAX_DURATION
        for value in (rules.stage, rules.destroy_after):
            assert value is None or value <= MAX_DURATION
    policy.to_dict()


def _one_line(exc: Exception) -> None:
    assert "\n" not in str(exc).strip() or "TOML" in str(exc), str(exc)


@FUZZ
@given(data=st.data())
def test_mutated_policy_documents(data: Any) -> None:
    doc = mutate(tomllib.loads(VALID_POLICY), data)
    try:
        policy = policy_from_dict(doc, "fuzz.toml") if isinstance(doc, dict) else None
    except PolicyError as exc:
        _one_line(exc)
        return
    if policy is not None:
        _check(policy)


@FUZZ
@given(data=st.data())
def test_mutated_policy_files(tmp_path_factory: pytest.TempPathFactory, data: Any) -> None:
    raw = bytearray(VALID_POLICY.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = data.draw(
            st.binary(min_size=1, max_size=6) | st.sampled_from([b"[" * 600, b"9" * 30])
        )
        if op == "insert":
            raw[at:at] = chunk
        elif op == "delete":
            del raw[at : at + len(chunk)]
        else:
            raw[at : at + len(chunk)] = chunk
    path = tmp_path_factory.mktemp("policy") / "policy.toml"
    path.write_bytes(bytes(raw))
    try:
        _check(load_policy(path))
    except PolicyError as exc:
        assert str(path) in str(exc)


@FUZZ
@given(text=st.binary(max_size=300))
def test_random_config_files(tmp_path_factory: pytest.TempPathFactory, text: bytes) -> None:
    path: Path = tmp_path_factory.mktemp("config") / "config.toml"
    path.write_bytes(text)
    try:
        settings_ = file_settings({"KEYLIFE_CONFIG": str(path), "HOME": str(path.parent)})
    except KeylifeError as exc:
        assert str(path) in str(exc)
        return
    assert all(isinstance(v, str) and v for v in settings_.values())


@FUZZ
@given(
    text=st.text(max_size=16)
    | st.from_regex("\\s*[0-9\u0660-\u0669\uff10-\uff19]{1,20}\\s*[wdhmsy]\\s*", fullmatch=True)
)
def test_durations(text: str) -> None:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        assert "at most 36500d" in str(exc)
        return
    assert text.isascii() and dt.timedelta(0) <= value <= MAX_DURATION


@FUZZ
@given(
    text=st.text(max_size=40)
    | st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [dt.UTC, dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-12))]
        ),
    ).map(lambda d: d.isoformat())
)
def test_dates(text: str) -> None:
    try:
        value = parse_time(text)
    except ValueError as exc:
        assert "\n" not in str(exc).replace(repr(text), "")
        return
    assert value.tzinfo is not None and MIN_YEAR <= value.year <= MAX_YEAR
    assert (value + MAX_DURATION + MAX_DURATION).year > (value - MAX_DURATION).year  # no overflow
