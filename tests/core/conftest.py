"""Fixtures for the core acceptance tests.

Every test runs against a real embedded store in a temporary directory. HOME and the XDG
directories point into the temporary directory too, so nothing here can touch a real
``~/.local`` or ``~/.config``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from keylife_cli.main import cli

import keylife

KEYLIFE = str(Path(sys.executable).with_name("keylife"))
PASSPHRASE = "correct horse battery staple"


@dataclass
class Env:
    """A sandboxed keylife installation: store, master key, HOME and XDG dirs under tmp."""

    root: Path
    db: Path
    key_file: Path
    environ: dict[str, str] = field(default_factory=dict)

    # ---- library -------------------------------------------------------------------------

    def init(self, **kw: Any) -> keylife.KeyManager:
        return keylife.init(str(self.db), master_key_file=self.key_file, **kw)

    def open(self, **kw: Any) -> keylife.KeyManager:
        return keylife.open(str(self.db), master_key_file=self.key_file, **kw)

    # ---- CLI -----------------------------------------------------------------------------

    def run(self, *args: str, input: str | None = None) -> Result:
        """``keylife ARGS`` in-process through click's CliRunner."""
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    def json(self, *args: str) -> Any:
        """``keylife --json ARGS``: assert exit 0 and exactly one JSON document on stdout."""
        result = self.run("--json", *args)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
        return json.loads(result.stdout)

    def sh(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The installed ``keylife`` console script in a subprocess."""
        return subprocess.run(
            [KEYLIFE, *args],
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def python(self, code: str, *args: str, **kw: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env=self.environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kw,
        )

    # ---- raw access (tampering) ----------------------------------------------------------

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(self.db, isolation_level=None)
        try:
            return db.execute(statement, params).fetchall()
        finally:
            db.close()

    def flip_blob(self, ring: str, version: int, offset: int = -1) -> None:
        """Change one byte of the sealed blob of ``ring`` v``version``."""
        (blob,) = self.sql("SELECT blob FROM material WHERE ring=? AND version=?", (ring, version))[
            0
        ]
        data = bytearray(blob)
        data[offset] ^= 0x01
        self.sql(
            "UPDATE material SET blob=? WHERE ring=? AND version=?", (bytes(data), ring, version)
        )

    def passphrase_file(self, text: str = PASSPHRASE) -> Path:
        path = self.root / f"pass-{abs(hash(text))}.txt"
        path.write_text(text + "\n")
        return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith("KEYLIFE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        monkeypatch.setenv(var, str(home / sub))
    db = tmp_path / "data" / "keylife.db"
    key_file = tmp_path / "conf" / "master.key"
    monkeypatch.setenv("KEYLIFE_STORE", str(db))
    monkeypatch.setenv("KEYLIFE_MASTER_KEY_FILE", str(key_file))
    yield Env(tmp_path, db, key_file, dict(os.environ))


@pytest.fixture
def store(env: Env) -> Env:
    """``env`` with an initialised, empty store."""
    env.init().close()
    return env


def secret_forms(raw: bytes) -> list[bytes]:
    """Every encoding of ``raw`` we look for: raw, hex (both cases), base64 (std, url, no pad),
    PEM body lines, and for private keys the PKCS#8 PEM, the traditional PEM and the raw
    private scalar/seed where there is one."""
    forms = [raw, raw.hex().encode(), raw.hex().upper().encode()]
    for b64 in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        forms += [b64, b64.rstrip(b"=")]
    return [f for f in forms if len(f) >= 16]


def material_forms(material: keylife.KeyMaterial) -> list[bytes]:
    """The secret forms of a loaded version's material, including its PEM encodings."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519

    raw = material.reveal()
    forms = secret_forms(raw)
    if material.spec.symmetric:
        return forms
    key = serialization.load_der_private_key(raw, password=None)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Interior lines of the PEM body (64 base64 characters each) must not appear either.
    forms += [pem] + [line for line in pem.splitlines()[1:-2] if len(line) == 64]
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        trad = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        forms += [trad]
        n = key.private_numbers()
        scalar = n.d if isinstance(n, rsa.RSAPrivateNumbers) else n.private_value
        size = (scalar.bit_length() + 7) // 8
        forms += secret_forms(scalar.to_bytes(size, "big"))
        forms.append(str(scalar).encode())
    if isinstance(
        key,
        ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | x25519.X25519PrivateKey,
    ):
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        forms += secret_forms(seed)
    return forms


def assert_no_secret(haystack: bytes | str, forms: list[bytes], where: str) -> None:
    data = haystack.encode() if isinstance(haystack, str) else haystack
    for form in forms:
        assert form not in data, f"key material ({len(form)}-byte form) found in {where}"


@pytest.fixture
def no_secret() -> Any:
    return assert_no_secret


@pytest.fixture
def forms_of() -> Any:
    return material_forms


@pytest.fixture
def t0() -> dt.datetime:
    return dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
