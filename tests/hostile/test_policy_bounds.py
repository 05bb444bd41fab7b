"""Issue 10 items 8 and 13: policy and config files with values and shapes nobody meant.

Durations have a documented upper bound (36500d, 100 years) checked at load, ASCII digits
only; files that are not UTF-8, nest without end or are directories give one-line errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keylife.durations import MAX_DURATION, parse_duration
from keylife.errors import KeylifeError, PolicyError
from keylife.policy import load_policy

from .files_support import Sandbox, one_line_error, sandbox

DURATION_KEYS = ("cryptoperiod", "lead_time", "grace_period", "stage", "destroy_after")


@pytest.fixture
def kl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return sandbox(tmp_path, monkeypatch)


def _policy(kl: Sandbox, body: str | bytes) -> Path:
    path = kl.root / "policy.toml"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    return path


@pytest.mark.parametrize(
    "value", ["999999999d", "99999999999d", "36501d", "5215w", "99999999999999999999s"]
)
def test_durations_past_the_bound_are_refused_at_load(kl: Sandbox, value: str) -> None:
    path = _policy(kl, f'[purposes.signing]\ncryptoperiod = "{value}"\n')
    line = one_line_error(kl.run("policy", "check", str(path)), 1)
    assert str(path) in line and "purposes.signing.cryptoperiod" in line
    assert "36500d (100 years)" in line


@pytest.mark.parametrize("key", DURATION_KEYS)
def test_every_duration_key_has_the_bound(kl: Sandbox, key: str) -> None:
    path = _policy(kl, f'[purposes.tls-server]\n{key} = "36501d"\n')
    with pytest.raises(PolicyError, match=f"purposes.tls-server.{key} .*at most 36500d"):
        load_policy(path)


def test_the_bound_itself_is_allowed(kl: Sandbox) -> None:
    path = _policy(kl, '[purposes.signing]\ncryptoperiod = "36500d"\n')
    assert kl.run("policy", "check", str(path)).exit_code == 0
    assert parse_duration("36500d") == MAX_DURATION


@pytest.mark.parametrize(
    "value", ["\u0663d", "\uff13d", "1\u00a0d", "\u00b2d", "-1d", "1.5d", "1y", ""]
)
def test_only_ascii_durations_parse(value: str) -> None:
    with pytest.raises(ValueError, match="ASCII digits"):
        parse_duration(value)


def test_unicode_digit_in_a_policy_file(kl: Sandbox) -> None:
    path = _policy(kl, '[purposes.signing]\ncryptoperiod = "\u0663d"\n')
    line = one_line_error(kl.run("policy", "check", str(path)), 1)
    assert "purposes.signing.cryptoperiod" in line


BAD_FILES = {
    "not UTF-8": b'[policy]\nprofile = "default"\n# caf\xe9\n',
    "deep nesting": b"a = " + b"[" * 10_000,
    "deep inline tables": b"a = " + b"{b = " * 5_000,
    "NUL byte": b"[policy]\x00\n",
    "tls table not UTF-8": b"[tls]\nmin_version = '\xff'\n",
}


@pytest.mark.parametrize("how", sorted(BAD_FILES))
def test_unreadable_policy_files_give_one_line(kl: Sandbox, how: str) -> None:
    path = _policy(kl, BAD_FILES[how])
    line = one_line_error(kl.run("policy", "check", str(path)), 1)
    assert str(path) in line
    kl.init().close()
    line = one_line_error(kl.run("--policy", str(path), "key", "list"), 1)
    assert str(path) in line


def test_a_policy_path_that_is_a_directory(kl: Sandbox) -> None:
    line = one_line_error(kl.run("policy", "check", str(kl.root)), 2)  # click: dir_okay=False
    kl.init().close()
    line = one_line_error(kl.run("--policy", str(kl.root), "key", "list"), 1)
    assert "is a directory" in line


@pytest.mark.parametrize("how", [*sorted(BAD_FILES), "directory"])
def test_unreadable_config_files_give_one_line(
    kl: Sandbox, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    config = kl.root / "config.toml"
    if how == "directory":
        config.mkdir()
    else:
        config.write_bytes(BAD_FILES[how])
    monkeypatch.setenv("KEYLIFE_CONFIG", str(config))
    monkeypatch.delenv("KEYLIFE_STORE")
    line = one_line_error(kl.run("key", "list"), 1)
    assert str(config) in line
    from keylife.config import file_settings

    with pytest.raises(KeylifeError):
        file_settings()
