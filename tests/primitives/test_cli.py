"""``keylife encrypt|decrypt|sign|verify|rewrap`` and ``keylife key public``: binary-safe over
stdin/stdout and files, the library's formats, exit codes, resumable rewrap."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import keylife
from keylife import rewrap as rewrap_module

BINARY = bytes(range(256)) * 40 + b"\r\n\x00\x1a"


@pytest.fixture
def cli_env(sandbox: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["KEYLIFE_STORE"] = str(sandbox / "k.db")
    env["KEYLIFE_MASTER_KEY_FILE"] = str(sandbox / "mk")
    with keylife.init(env["KEYLIFE_STORE"], master_key_file=env["KEYLIFE_MASTER_KEY_FILE"]) as m:
        m.create_ring("orders", "aes-256", "data-encryption")
        m.create_ring("invoices", "aes-256", "data-encryption")
        m.create_ring("releases", "ed25519", "signing")
    return env


def keylife_(
    env: dict[str, str], *args: str, data: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "keylife_cli", *args],
        input=data,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_encrypt_decrypt_stdin_stdout_binary_safe(cli_env) -> None:
    box = keylife_(cli_env, "encrypt", "orders", data=BINARY)
    assert box.returncode == 0 and box.stdout[0] == 1
    back = keylife_(cli_env, "decrypt", "orders", data=box.stdout)
    assert back.returncode == 0 and back.stdout == BINARY
    other = keylife_(cli_env, "decrypt", "invoices", data=box.stdout)
    assert other.returncode == 1 and b"does not decrypt under ring invoices" in other.stderr
    text = keylife_(
        cli_env, "encrypt", "orders", "--base64", "--associated-data", "id-7", data=b"hi"
    )
    assert text.stdout.endswith(b"\n") and base64.b64decode(text.stdout)[0] == 1
    plain = keylife_(
        cli_env, "decrypt", "orders", "--base64", "--associated-data", "id-7", data=text.stdout
    )
    assert plain.stdout == b"hi"


def test_stream_files_in_and_out(cli_env, sandbox: Path) -> None:
    src, enc, dec = sandbox / "big", sandbox / "big.enc", sandbox / "big.out"
    src.write_bytes(BINARY * 20)
    assert (
        keylife_(
            cli_env, "encrypt", "orders", "--stream", "--in", str(src), "--out", str(enc)
        ).returncode
        == 0
    )
    assert enc.read_bytes()[0] == 2 and enc.stat().st_mode & 0o777 == 0o600
    assert (
        keylife_(cli_env, "decrypt", "orders", "--in", str(enc), "--out", str(dec)).returncode == 0
    )
    assert dec.read_bytes() == src.read_bytes()
    enc.write_bytes(enc.read_bytes()[:-1])
    dec.unlink()
    bad = keylife_(cli_env, "decrypt", "orders", "--in", str(enc), "--out", str(dec))
    assert bad.returncode == 1 and not dec.exists()  # nothing half-written is left
    assert not list(sandbox.glob(".big.out.*"))


def test_sign_verify_and_exit_codes(cli_env, sandbox: Path) -> None:
    signature = sandbox / "sig"
    signed = keylife_(cli_env, "sign", "releases", "--out", str(signature), data=BINARY)
    assert signed.returncode == 0 and signature.read_bytes()[0] == 5
    ok = keylife_(
        cli_env, "--json", "verify", "releases", "--signature", str(signature), data=BINARY
    )
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"kid": "releases:v1", "valid": True}
    bad = keylife_(cli_env, "verify", "releases", "--signature", str(signature), data=BINARY + b"!")
    assert bad.returncode == 1 and b"not valid" in bad.stderr
    jws = keylife_(cli_env, "sign", "releases", "--jws", data=b'{"sub":"x"}')
    assert jws.stdout.count(b".") == 2


def test_key_public_formats(cli_env) -> None:
    pem = keylife_(cli_env, "key", "public", "releases")
    assert pem.stdout.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert keylife_(cli_env, "key", "public", "releases", "--format", "ssh").stdout.startswith(
        b"ssh-ed25519 "
    )
    jwks = json.loads(keylife_(cli_env, "key", "public", "releases", "--format", "jwks").stdout)
    assert jwks["keys"][0]["kid"] == "releases:v1" and "d" not in jwks["keys"][0]
    der = keylife_(cli_env, "key", "public", "releases", "--format", "der", "--version", "1")
    assert der.returncode == 0 and der.stdout[0] == 0x30
    sym = keylife_(cli_env, "key", "public", "orders")
    assert sym.returncode == 1 and b"no public keys" in sym.stderr


def test_rewrap_file_resumes_after_an_interruption(cli_env, sandbox: Path, monkeypatch) -> None:
    db, mk = cli_env["KEYLIFE_STORE"], cli_env["KEYLIFE_MASTER_KEY_FILE"]
    lines = sandbox / "ciphertexts.txt"
    with keylife.open(db, master_key_file=mk) as m:
        ring = m.ring("orders")
        plains = [f"row {i}".encode() for i in range(25)]
        boxes = [base64.b64encode(ring.encrypt(p)).decode() for p in plains]
        lines.write_text("\n".join([*boxes[:10], "", *boxes[10:]]) + "\n")
        lines.chmod(0o640)
        m.rotate("orders")
        calls = {"n": 0}
        original = ring.rewrap

        def dying(blob: bytes, associated_data: bytes = b"") -> bytes:
            calls["n"] += 1
            if calls["n"] == 13:
                raise KeyboardInterrupt  # killed in the middle of the second batch
            return original(blob, associated_data)

        monkeypatch.setattr(ring, "rewrap", dying)
        with pytest.raises(KeyboardInterrupt):
            rewrap_module.rewrap_file(ring, lines, batch_size=10)
        checkpoint = json.loads((sandbox / "ciphertexts.txt.rewrap-checkpoint").read_text())
        assert checkpoint == {"ring": "orders", "target_version": 2, "next_line": 10}
    out = keylife_(cli_env, "--json", "rewrap", "orders", str(lines), "--batch-size", "10")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["resumed_from_line"] == 10 and doc["rewrapped"] == 15 and doc["target_version"] == 2
    assert not (sandbox / "ciphertexts.txt.rewrap-checkpoint").exists()
    assert lines.stat().st_mode & 0o777 == 0o640
    with keylife.open(db, master_key_file=mk) as m:
        ring = m.ring("orders")
        got = [line for line in lines.read_text().splitlines() if line]
        assert [ring.version_of(base64.b64decode(b)) for b in got] == [2] * 25
        assert [ring.decrypt(base64.b64decode(b)) for b in got] == plains
    again = json.loads(keylife_(cli_env, "--json", "rewrap", "orders", str(lines)).stdout)
    assert again["rewrapped"] == 0
    lines.write_text("not base64!\n")
    assert keylife_(cli_env, "rewrap", "orders", str(lines)).returncode == 1
