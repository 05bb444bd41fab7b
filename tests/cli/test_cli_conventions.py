"""CLI conventions people expect from the tools they know (issue 14): ``--json`` before or after
the subcommand, one JSON error document with the exit code on every failure, shell completion,
and help that ends with examples. Run through the installed console script, as users do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KEYLIFE = str(Path(sys.executable).with_name("keylife"))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KEYLIFE_", "VAULT_"))}
    environ.update(
        HOME=str(tmp_path),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    subprocess.run([KEYLIFE, "init"], env=environ, check=True, capture_output=True)
    return environ


def kl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KEYLIFE, *args], env=env, capture_output=True, text=True, timeout=60)


def test_json_is_accepted_before_or_after_the_subcommand(env: dict[str, str]) -> None:
    assert kl(env, "key", "create", "orders", "--purpose", "data-encryption").returncode == 0
    before, after = kl(env, "--json", "key", "list"), kl(env, "key", "list", "--json")
    assert before.returncode == after.returncode == 0
    assert json.loads(before.stdout) == json.loads(after.stdout)
    assert json.loads(after.stdout)["rings"][0]["name"] == "orders"


@pytest.mark.parametrize(
    ("args", "code", "kind"),
    [
        (["key", "create", "x", "--purpose", "nope"], 2, "BadParameter"),
        (["key", "create"], 2, "MissingParameter"),
        (["no-such-command"], 2, "NoSuchCommand"),
        (["key", "show", "missing"], 1, "NotFoundError"),
    ],
)
def test_every_failure_under_json_is_one_document_with_its_exit_code(
    env: dict[str, str], args: list[str], code: int, kind: str
) -> None:
    done = kl(env, *args, "--json")
    assert done.returncode == code, done.stderr
    document = json.loads(done.stdout)  # exactly one document, nothing else on stdout
    assert document["exit_code"] == code
    assert document["error"]["type"] == kind and document["error"]["message"]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(env: dict[str, str], shell: str) -> None:
    done = kl(env, "completion", shell)
    assert done.returncode == 0 and "_KEYLIFE_COMPLETE" in done.stdout


@pytest.mark.parametrize(
    "command",
    [["key", "create"], ["rotate"], ["audit", "verify"], ["tls", "check"], ["completion"]],
)
def test_help_ends_with_examples(env: dict[str, str], command: list[str]) -> None:
    done = kl(env, *command, "--help")
    assert done.returncode == 0
    tail = done.stdout.rstrip().split("Examples:")[-1]
    assert "Examples:" in done.stdout and f"keylife {' '.join(command)}" in tail


def test_policy_show_has_every_setting_and_labels_the_date(env: dict[str, str]) -> None:
    text = kl(env, "policy", "show", "--as-of", "2031-01-01").stdout
    assert "ALLOWED ON 2031-01-01" in text and "ALLOWED NOW" not in text
    assert "STAGE" in text and "DESTROY" in text
    assert "ALLOWED NOW" in kl(env, "policy", "show").stdout
