"""Issue 10 item 1: deploy and DNS hooks get an explicit environment, never keylife's secrets.

Each test sets secrets in keylife's own environment, runs a hook that dumps its environment to
a file, and checks that nothing but the documented allow-list and hook variables arrived.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import keylife
from keylife.acme import issue_certificate
from keylife.acme.challenges import (
    HOOK_ENV_ALLOWED,
    HOOK_VARIABLES,
    ChallengeTask,
    DnsHook01,
    hook_environment,
)
from keylife.acme.deploy import run_deploy_hook
from keylife.errors import AcmeError
from tests.acme.stub import StubAcme, stub_settings

SECRETS = {
    "KEYLIFE_MASTER_KEY": "mk-s3cr3t",
    "KEYLIFE_BACKUP_PASSPHRASE": "bp-s3cr3t",
    "KEYLIFE_EAB_HMAC_KEY": "eab-s3cr3t",
    "VAULT_TOKEN": "hvs.s3cr3t",
    "BAO_TOKEN": "s.s3cr3t",
    "AWS_SECRET_ACCESS_KEY": "aws-s3cr3t",
    "SOME_OTHER_VAR": "other-s3cr3t",
}
#: What /bin/sh itself may add to the environment it exports.
SHELL_ADDED = {"PWD", "SHLVL", "_", "OLDPWD"}


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("TZ", "UTC")


@pytest.fixture
def acme_stub(tmp_path: Path) -> Iterator[StubAcme]:
    stub = StubAcme(tmp_path)
    try:
        yield stub
    finally:
        stub.stop()


def dumped(path: Path) -> dict[str, str]:
    text = path.read_text()
    for value in SECRETS.values():
        assert value not in text, "a secret reached the hook"
    env = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    allowed = set(HOOK_ENV_ALLOWED) | HOOK_VARIABLES | SHELL_ADDED
    extra = {k for k in env if k not in allowed and not k.startswith("LC_")}
    assert not extra, extra
    return env


def task() -> ChallengeTask:
    return ChallengeTask(
        identifier="hook.example.com",
        identifier_type="dns",
        wildcard=False,
        token="tok",
        validation="txt-value",
        challenge_url="https://ca.invalid/c/1",
        authorization_url="https://ca.invalid/a/1",
    )


def test_dns_hooks_get_only_allowed_variables(secret_env, tmp_path):
    auth, cleanup = tmp_path / "auth.env", tmp_path / "cleanup.env"
    hook = DnsHook01(f"env > {auth}", f"env > {cleanup}")
    hook.prepare([task()])
    hook.cleanup([task()])
    for path in (auth, cleanup):
        env = dumped(path)
        assert env["KEYLIFE_ACME_TXT_VALUE"] == "txt-value"
        assert env["KEYLIFE_ACME_TXT_NAME"] == "_acme-challenge.hook.example.com"
        assert env["LC_ALL"] == "C.UTF-8" and env["TZ"] == "UTC"
        assert "PATH" in env and "HOME" in env


def test_deploy_hook_gets_only_allowed_variables(secret_env, tmp_path):
    out = tmp_path / "deploy.env"
    run_deploy_hook(f"env > {out}", ring="web", version=3, domains=["a.example", "b.example"])
    env = dumped(out)
    assert env["KEYLIFE_RING"] == "web" and env["KEYLIFE_VERSION"] == "3"
    assert env["RENEWED_DOMAINS"] == "a.example b.example"


def test_issue_with_deploy_hook_end_to_end(acme_stub, tmp_path, monkeypatch):
    manager = keylife.init(tmp_path / "data" / "k.db", master_key_file=tmp_path / "mk" / "key")
    for name, value in SECRETS.items():  # as if keylife had been started with them
        monkeypatch.setenv(name, value)
    out = tmp_path / "issued.env"
    settings = stub_settings(
        acme_stub, "env.example.com", deploy_to=str(tmp_path / "live"), deploy_hook=f"env > {out}"
    )
    with manager:
        result = issue_certificate(manager, "web", settings)
    env = dumped(out)
    assert env["KEYLIFE_RING"] == "web" and env["KEYLIFE_VERSION"] == str(result.version)
    assert env["KEYLIFE_PRIVKEY"] == str(tmp_path / "live" / "privkey.pem")


def test_only_documented_variables_can_be_added():
    with pytest.raises(AcmeError, match="not a documented hook variable"):
        hook_environment({"VAULT_TOKEN": "x"}, {})
    assert hook_environment({}, {"PATH": "/bin", "VAULT_TOKEN": "x"}) == {"PATH": "/bin"}
