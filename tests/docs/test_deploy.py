"""The one deployment path: scripts/install-system into a temporary root, the files, modes and
config it writes, and `systemd-analyze verify` on the units it installs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.docs.runner import REPO

SCRIPT = REPO / "scripts" / "install-system"
DEPLOY = REPO / "deploy"
CONFIG = "/etc/keylife/config.toml"
KEYLIFE = "/opt/keylife/bin/keylife"
METRICS = "/var/lib/keylife/metrics/keylife.prom"


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "--destdir", str(root), "--no-user", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real install (virtualenv included) under a temporary root."""
    root = tmp_path_factory.mktemp("sysroot")
    proc = install(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_files_modes_and_config(root: Path) -> None:
    expected = {
        "etc/keylife": 0o750,
        "etc/keylife/config.toml": 0o644,
        "etc/keylife/policy.toml": 0o644,
        "etc/keylife/master.key": 0o600,
        "var/lib/keylife": 0o755,
        "var/lib/keylife/keylife.db": 0o600,
        "var/lib/keylife/metrics": 0o755,
        "var/log/keylife": 0o750,
        "etc/systemd/system/keylife-rotate.service": 0o644,
        "etc/systemd/system/keylife-rotate.timer": 0o644,
        "opt/keylife/bin/keylife": 0o755,
    }
    for rel, want in expected.items():
        assert oct(mode(root / rel)) == oct(want), rel
    config = tomllib.loads((root / CONFIG.lstrip("/")).read_text())
    assert config == {
        "store": "/var/lib/keylife/keylife.db",
        "master_key_file": "/etc/keylife/master.key",
        "policy": "/etc/keylife/policy.toml",
    }
    assert not (root / "etc/cron.d").exists()  # the timer, unless --cron


def test_the_installed_keylife_uses_the_installed_store(root: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(root / "nohome"),
        "KEYLIFE_STORE": str(root / "var/lib/keylife/keylife.db"),
        "KEYLIFE_MASTER_KEY_FILE": str(root / "etc/keylife/master.key"),
        "KEYLIFE_POLICY": str(root / "etc/keylife/policy.toml"),
    }
    keylife = str(root / KEYLIFE.lstrip("/"))
    made = subprocess.run(
        [keylife, "key", "create", "deploy-check", "--purpose", "signing"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    again = install(root, "--no-venv")  # an upgrade keeps the store, key and config
    assert again.returncode == 0, again.stderr
    assert "kept /etc/keylife/config.toml" in again.stdout
    listed = subprocess.run(
        [keylife, "key", "list"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert listed.returncode == 0 and "deploy-check" in listed.stdout, listed.stderr


def test_service_timer_and_cron_share_one_config() -> None:
    service = (DEPLOY / "keylife-rotate.service").read_text()
    cron = (DEPLOY / "keylife.cron").read_text()
    assert f"Environment=KEYLIFE_CONFIG={CONFIG}\n" in service
    assert f"KEYLIFE_CONFIG={CONFIG}\n" in cron
    assert f"ExecStart={KEYLIFE} rotate --metrics-file {METRICS}\n" in service
    job = [line for line in cron.splitlines() if re.match(r"^[*0-9]", line)]
    assert len(job) == 1 and f" keylife  {KEYLIFE} rotate " in job[0], job
    assert f"--metrics-file {METRICS}" in job[0]
    assert "User=keylife\n" in service


def test_operations_doc_shows_the_deployed_files() -> None:
    doc = (REPO / "docs" / "operations.md").read_text()
    for name in ("keylife-rotate.service", "keylife-rotate.timer", "keylife.cron", "config.toml"):
        assert (DEPLOY / name).read_text() in doc, f"docs/operations.md lost deploy/{name}"
    assert "/usr/local/bin/keylife" not in doc


def test_cron_flag_installs_the_cron_file(tmp_path: Path) -> None:
    proc = install(tmp_path, "--no-venv", "--cron")
    assert proc.returncode != 0 and "drop --no-venv" in proc.stderr  # no keylife to init with
    assert (tmp_path / "etc/cron.d/keylife").read_text() == (DEPLOY / "keylife.cron").read_text()


def test_dry_run_changes_nothing_and_names_every_step(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(SCRIPT), "--destdir", str(tmp_path), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []
    out = proc.stdout
    assert "useradd --system" in out or "keylife" in subprocess.getoutput("getent passwd keylife")
    assert re.search(r"chown keylife:keylife \S+/etc/keylife/master.key", out), out
    assert re.search(r"chmod 0600 \S+/etc/keylife/master.key", out), out
    assert "pip install" in out and " init" in out


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze") or (
        "/usr/bin/systemd-analyze" if os.access("/usr/bin/systemd-analyze", os.X_OK) else None
    )
    if found is None:
        pytest.fail(
            "systemd-analyze is missing: install the Debian package `systemd` "
            "(scripts/test does) to verify deploy/keylife-rotate.{service,timer}"
        )
    return found


def verify(root: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` with the installed tree as root, so ExecStart is checked
    against the keylife that install-system put there."""
    units = root / "usr/lib/systemd/system"
    if not units.exists():
        shutil.copytree("/usr/lib/systemd/system", units, symlinks=True)
    return subprocess.run(
        [
            systemd_analyze(),
            "verify",
            f"--root={root}",
            "/etc/systemd/system/keylife-rotate.timer",
            "/etc/systemd/system/keylife-rotate.service",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_systemd_analyze_verify_passes(root: Path) -> None:
    proc = verify(root)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


def test_systemd_analyze_verify_catches_a_broken_unit(root: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(root / "etc", broken / "etc", symlinks=True)
    (broken / "opt/keylife/bin").mkdir(parents=True)  # no keylife in it
    proc = verify(broken)
    assert proc.returncode != 0 and KEYLIFE in proc.stderr, proc.stderr
