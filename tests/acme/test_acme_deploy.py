"""Deployed PEM files: content, modes, atomic replacement, deploy hook environment."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading

import pytest

from keylife.acme.deploy import atomic_write, deploy_files, run_deploy_hook
from keylife.errors import AcmeError


def fake_pems(i: int, size: int = 20000) -> tuple[str, str, bytes]:
    body = (f"{i:08d}" * (size // 8))[:size]
    cert = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
    chain = f"-----BEGIN CERTIFICATE-----\nchain{body}\n-----END CERTIFICATE-----\n"
    key = f"-----BEGIN PRIVATE KEY-----\nkey{body}\n-----END PRIVATE KEY-----\n".encode()
    return cert, chain, key


def test_files_content_and_modes(tmp_path):
    cert, chain, key = fake_pems(1, 100)
    old_umask = os.umask(0o077)  # a strict umask must not make public files unreadable
    try:
        files = deploy_files(
            tmp_path / "live", certificate_pem=cert, chain_pem=chain, private_key_pem=key
        )
    finally:
        os.umask(old_umask)
    assert files.cert.read_text() == cert
    assert files.chain.read_text() == chain
    assert files.fullchain.read_text() == cert + chain
    assert files.privkey.read_bytes() == key
    assert stat.S_IMODE(files.privkey.stat().st_mode) == 0o600
    for public in (files.cert, files.chain, files.fullchain):
        assert stat.S_IMODE(public.stat().st_mode) == 0o644
    assert sorted(p.name for p in files.directory.iterdir()) == [
        "cert.pem",
        "chain.pem",
        "fullchain.pem",
        "privkey.pem",
    ], "no temporary files left behind"


def test_private_key_is_never_group_readable_even_briefly(tmp_path, monkeypatch):
    """The key's temp file is created 0600 by os.open itself (no chmod-after-write window)."""
    modes = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *a, **kw):
        if str(path).endswith(".tmp") and "privkey" in str(path):
            modes.append(mode)
        return real_open(path, flags, mode, *a, **kw)

    monkeypatch.setattr(os, "open", spy)
    cert, chain, key = fake_pems(1, 100)
    deploy_files(tmp_path, certificate_pem=cert, chain_pem=chain, private_key_pem=key)
    assert modes == [0o600]


def test_replacing_keeps_mode_and_never_shows_partial_files(tmp_path):
    versions = [fake_pems(i) for i in range(40)]
    cert, chain, key = versions[0]
    files = deploy_files(tmp_path, certificate_pem=cert, chain_pem=chain, private_key_pem=key)
    valid = {
        "fullchain.pem": {(c + ch).encode() for c, ch, _ in versions},
        "privkey.pem": {k for _, _, k in versions},
        "cert.pem": {c.encode() for c, _, _ in versions},
    }
    stop = threading.Event()
    seen: list[tuple[str, bytes]] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            for name in valid:
                data = (tmp_path / name).read_bytes()
                reads[0] += 1
                if data not in valid[name]:
                    seen.append((name, data[:40]))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for cert, chain, key in versions[1:]:
            deploy_files(tmp_path, certificate_pem=cert, chain_pem=chain, private_key_pem=key)
    finally:
        stop.set()
        thread.join()
    assert reads[0] > 40
    assert seen == []
    assert stat.S_IMODE(files.privkey.stat().st_mode) == 0o600
    assert files.fullchain.read_bytes() == (versions[-1][0] + versions[-1][1]).encode()


def test_a_plain_write_would_be_seen_half_written(tmp_path):
    """Guard for the test above: the same reader does catch partial files when writing is
    not atomic, so its silence above means something."""
    path = tmp_path / "fullchain.pem"
    good = {b"A" * 2_000_000, b"B" * 2_000_000}
    path.write_bytes(b"A" * 2_000_000)
    stop = threading.Event()
    partial = []

    def reader() -> None:
        while not stop.is_set():
            if path.read_bytes() not in good:
                partial.append(1)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(60):
            with open(path, "wb") as handle:  # truncate + write: not atomic
                handle.write(b"AB"[i % 2 : i % 2 + 1] * 2_000_000)
    finally:
        stop.set()
        thread.join()
    assert partial


def test_atomic_write_failure_is_clear(tmp_path):
    with pytest.raises(AcmeError, match="cannot write"):
        atomic_write(tmp_path / "missing-dir" / "x.pem", b"x", 0o644)


def test_deploy_hook_environment(tmp_path):
    cert, chain, key = fake_pems(2, 100)
    files = deploy_files(tmp_path, certificate_pem=cert, chain_pem=chain, private_key_pem=key)
    out = tmp_path / "env.json"
    script = (
        "import json, os, sys; json.dump({k: v for k, v in os.environ.items() "
        "if k.startswith(('KEYLIFE_', 'RENEWED_'))}, open(sys.argv[1], 'w'))"
    )
    run_deploy_hook(
        f'{sys.executable} -c "{script}" {out}',
        ring="web",
        version=3,
        domains=["example.com", "www.example.com"],
        files=files,
    )
    env = json.loads(out.read_text())
    assert env["KEYLIFE_RING"] == "web"
    assert env["KEYLIFE_VERSION"] == "3"
    assert env["KEYLIFE_DOMAINS"] == "example.com www.example.com"
    assert env["KEYLIFE_FULLCHAIN"] == str(files.fullchain)
    assert env["KEYLIFE_PRIVKEY"] == str(files.privkey)
    assert env["RENEWED_LINEAGE"] == str(tmp_path)
    assert not any("PRIVATE KEY" in v for v in env.values())


def test_deploy_hook_failure(tmp_path):
    with pytest.raises(AcmeError, match="deploy hook exited with status 4"):
        run_deploy_hook("exit 4", ring="web", version=1, domains=["example.com"])
