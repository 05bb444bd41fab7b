"""The CLI's main commands, each once succeeding and once failing, under
``python -X dev -W error::ResourceWarning``, print no warning (issue 16, acceptance 3).

The installed ``keylife`` console script runs under the interpreter running the tests: in CI's
3.13 pass that is the 3.13 virtualenv's keylife, where sqlite3 reports a connection collected
while open; under 3.11 the same commands run on 3.11 (``-X dev`` shows every other warning
there too). A ResourceWarning raised in a finaliser is printed as "Exception ignored in".
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from keylife.sealing import MasterKey, MasterKeyFile
from tests.tls.peers import PythonTlsServer
from tests.tls.pki import issue

SCRIPT = Path(sys.executable).with_name("keylife")


def keylife_dev(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    entry = [str(SCRIPT)] if SCRIPT.exists() else ["-m", "keylife_cli"]
    return subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", *entry, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    return {
        **keep,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "KEYLIFE_STORE": str(tmp_path / "store" / "keylife.db"),
        "KEYLIFE_MASTER_KEY_FILE": str(tmp_path / "keys" / "master.key"),
        "KEYLIFE_BACKUP_PASSPHRASE": "correct horse battery staple",
    }


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    pki = tmp_path / "pki"
    pki.mkdir()
    root = issue(pki, "root", ca=True)
    leaf = issue(pki, "leaf", issuer=root)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    ctx.load_cert_chain(leaf.cert_path, leaf.key_path)
    with PythonTlsServer(ctx) as server:
        yield server.port, root.cert_path


@pytest.fixture
def closed_port() -> Iterator[int]:
    """Bound, not listening: a connection is refused, and no one else takes the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_main_commands_print_no_warning_in_dev_mode(
    env: dict[str, str], tmp_path: Path, tls_server: tuple[int, Path], closed_port: int
) -> None:
    (tmp_path / "not-a-dir").write_text("")
    other_key = tmp_path / "other" / "master.key"
    MasterKeyFile(other_key).write(MasterKey.generate())
    bad_policy = tmp_path / "policy.toml"
    bad_policy.write_text("[policy]\nmin_strength = 100\n")
    junk = tmp_path / "junk.bak"
    junk.write_bytes(b"not a keylife backup\n")
    archive = str(tmp_path / "keys.bak")
    port, ca = tls_server
    wrong_key = ("--master-key-file", str(other_key))
    weak = ("--type", "rsa-1024")  # refused by the policy
    runs: list[tuple[str, bool, tuple[str, ...]]] = [
        ("init", True, ("init",)),
        ("init", False, ("--store", str(tmp_path / "not-a-dir" / "keylife.db"), "init")),
        ("key create", True, ("key", "create", "k1", "--purpose", "signing")),
        ("key create", False, ("key", "create", "k2", *weak, "--purpose", "signing")),
        ("key list", True, ("key", "list")),
        ("key list", False, ("--store", str(tmp_path / "missing.db"), "key", "list")),
        ("rotate", True, ("rotate",)),
        ("rotate", False, ("--policy", str(bad_policy), "rotate")),
        ("backup", True, ("backup", archive)),
        ("backup", False, (*wrong_key, "backup", str(tmp_path / "other.bak"))),
        ("restore", True, ("--store", str(tmp_path / "r1" / "keylife.db"), "restore", archive)),
        ("restore", False, ("--store", str(tmp_path / "r2" / "keylife.db"), "restore", str(junk))),
        ("tls check", True, ("tls", "check", f"127.0.0.1:{port}", "--sni", "localhost",
                             "--ca-file", str(ca))),
        ("tls check", False, ("tls", "check", f"127.0.0.1:{closed_port}", "--deadline", "2")),
    ]  # fmt: skip
    # The one diagnostic expected: tls check logs the unreachable target (a log line, not a
    # Python warning; the CLI prints both as "keylife: warning:").
    logged = f"keylife: warning: 127.0.0.1:{closed_port}: "
    for what, succeeds, args in runs:
        result = keylife_dev(env, *args)
        shown = f"keylife {' '.join(args)} -> {result.returncode}\n{result.stderr}"
        assert (result.returncode == 0) is succeeds, shown
        rest = "".join(
            line for line in result.stderr.splitlines(keepends=True) if not line.startswith(logged)
        )
        for sign in ("Warning", "keylife: warning:", "Exception ignored", "Traceback"):
            assert sign not in rest, f"{what}: {shown}"
