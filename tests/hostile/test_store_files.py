"""Issue 10 item 2 (and the file parts of 13): keylife's files against another local user.

Whoever can write a directory keylife writes in may plant symlinks at the names keylife used to
write through (``.NAME.<pid>.tmp``); keylife must never follow them. Directories keylife makes
are 0700 and secret files 0600 whatever the umask; a master key others may read is refused.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from keylife.errors import KeylifeError, StoreError
from keylife.rotation import metrics
from keylife.rotation.results import RunReport
from keylife.sealing import MasterKey, MasterKeyFile

from .files_support import Sandbox, one_line_error, sandbox


@pytest.fixture
def kl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return sandbox(tmp_path, monkeypatch)


def _plant(directory: Path, name: str, bait: Path) -> list[Path]:
    """Symlinks at every name the old writer used for this process and the next PIDs."""
    directory.mkdir(parents=True, exist_ok=True)
    links = []
    for pid in range(os.getpid() - 2, os.getpid() + 64):
        link = directory / f".{name}.{pid}.tmp"
        link.symlink_to(bait)
        links.append(link)
    return links


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_master_key_is_not_written_through_a_planted_symlink(kl: Sandbox) -> None:
    bait = kl.root / "attacker-reads-this"
    _plant(kl.key_file.parent, kl.key_file.name, bait)
    kl.init().close()
    assert not bait.exists(), "the master key was written through a planted symlink"
    assert stat.S_ISREG(os.lstat(kl.key_file).st_mode)
    assert _mode(kl.key_file) == 0o600


def test_backup_archive_is_not_written_through_a_planted_symlink(kl: Sandbox) -> None:
    with kl.init() as m:
        m.create_ring("sig", "ec-p256", "signing")
    out = kl.root / "backups"
    bait = kl.root / "attacker-reads-this"
    _plant(out, "keylife.klb", bait)
    pf = str(kl.passphrase_file())
    result = kl.run("backup", str(out / "keylife.klb"), "--passphrase-file", pf)
    assert result.exit_code == 0, result.stderr
    assert not bait.exists()
    assert _mode(out / "keylife.klb") == 0o600


def test_metrics_file_is_not_written_through_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "etc-shadow"
    victim.write_text("root:secret\n")
    victim.chmod(0o600)
    out = tmp_path / "textfile"
    _plant(out, "keylife.prom", victim)
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    metrics.write(out / "keylife.prom", RunReport(now, False, (), 0))
    assert victim.read_text() == "root:secret\n" and _mode(victim) == 0o600
    assert _mode(out / "keylife.prom") == 0o644
    assert "keylife_rotate_last_run_timestamp_seconds" in (out / "keylife.prom").read_text()


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("umask_000")
def test_umask_000_still_gives_private_files_and_directories(tmp_path: Path) -> None:
    import keylife

    db = tmp_path / "a" / "b" / "data" / "keylife.db"
    key = tmp_path / "c" / "d" / "conf" / "master.key"
    with keylife.init(str(db), master_key_file=key) as m:
        m.create_ring("sig", "ec-p256", "signing")
    for d in (db.parent, db.parent.parent, tmp_path / "a", key.parent, tmp_path / "c"):
        assert _mode(d) == 0o700, d
    assert _mode(key) == 0o600 and _mode(db) == 0o600
    pending = MasterKeyFile(key)
    pending.write(MasterKey.generate(), pending=True)
    assert _mode(pending.pending) == 0o600


def test_master_key_readable_by_others_is_refused_with_the_chmod_to_run(kl: Sandbox) -> None:
    kl.init().close()
    for mode in (0o644, 0o640, 0o602):
        kl.key_file.chmod(mode)
        line = one_line_error(kl.run("key", "list"), 1)
        assert f"chmod 600 {kl.key_file}" in line, line
    kl.key_file.chmod(0o600)
    assert kl.run("key", "list").exit_code == 0


def test_master_key_path_that_is_a_directory(kl: Sandbox) -> None:
    kl.init().close()
    kl.key_file.unlink()
    kl.key_file.mkdir()
    line = one_line_error(kl.run("key", "list"), 1)
    assert "not a regular file" in line and str(kl.key_file) in line
    with pytest.raises(StoreError):
        MasterKeyFile(kl.key_file).load()


def test_dangling_symlink_at_the_store_path(kl: Sandbox) -> None:
    kl.db.parent.mkdir(parents=True)
    kl.db.symlink_to(kl.root / "nowhere" / "keylife.db")
    for args in (("init",), ("key", "list")):
        line = one_line_error(kl.sh(*args), 3)
        assert "symbolic link" in line and "does not exist" in line, line


def test_metrics_file_in_a_missing_directory_is_caught_before_the_run(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "keylife.prom"
    with pytest.raises(KeylifeError, match="does not exist"):
        metrics.check_writable(target)
    with pytest.raises(KeylifeError, match="is a directory"):
        metrics.check_writable(tmp_path)
    metrics.check_writable(tmp_path / "keylife.prom")  # fine: nothing raised
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with pytest.raises(KeylifeError, match="cannot write in"):
        metrics.write(target, RunReport(now, False, (), 0))


def test_a_symlinked_data_directory_still_works(tmp_path: Path) -> None:
    import keylife

    real = tmp_path / "big-disk"
    real.mkdir()
    (tmp_path / "data").symlink_to(real)
    with keylife.init(str(tmp_path / "data" / "k.db"), master_key_file=tmp_path / "k") as m:
        m.create_ring("sig", "ec-p256", "signing")
    assert (real / "k.db").exists()
