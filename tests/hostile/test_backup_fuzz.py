"""Fuzzing backup archives (issue 10, "fuzzing that keeps it fixed").

Mutated real archives, at the byte level (header, nonce, ciphertext) and at the payload level
(re-sealed under the right key, so validation is what refuses them). Property: BackupError or
a valid archive, never another exception; a payload that passes validation restores exactly.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import zlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keylife
from keylife.backup import MAGIC, BackupSecret, check_archive, read_backup, restore_snapshot
from keylife.errors import BackupError
from keylife.rotation import run as rotate_run

from .files_support import mutate

FUZZ = settings(
    max_examples=120,
    deadline=dt.timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
KEY = os.urandom(32)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, Any]]:
    """A real archive (backup key) of a small store, and its payload."""
    from keylife.backup import write_backup

    root = tmp_path_factory.mktemp("fuzz-backup")
    with keylife.init(str(root / "k.db"), master_key_file=root / "m.key", actor="ops") as m:
        m.create_ring("sig", "ed25519", "signing")
        m.rotate("sig")
        m.create_ring("data", "aes-128", "data-encryption")
        m.create_ring("mac", "hmac-sha256", "authentication")
        m.deactivate("mac", 1)
        m.destroy("mac", 1)  # scheduled; the planner carries it out a destroy_wait later
        rotate_run(m, now=m.now() + m.policy.destroy_wait, rings=["mac"])
        m.store.add_encryptions({("data", 1): 7})  # message counts: the archive's "counts"
        write_backup(m.store, root / "a.klb", BackupSecret(key=KEY))
    blob = (root / "a.klb").read_bytes()
    return blob, read_backup(root / "a.klb", BackupSecret(key=KEY))


@FUZZ
@given(data=st.data())
def test_mutated_archive_bytes(
    archive: tuple[bytes, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory, data: Any
) -> None:
    raw = bytearray(archive[0])
    head_end = raw.index(b"\n", len(MAGIC))
    for _ in range(data.draw(st.integers(1, 3))):
        # Most edits land in the header, where parsing happens before authentication.
        limit = data.draw(st.sampled_from([head_end + 1, len(raw)]))
        at = data.draw(st.integers(0, max(0, limit - 1)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        chunk = data.draw(st.binary(min_size=1, max_size=8))
        if op == "insert":
            raw[at:at] = chunk
        elif op == "delete":
            del raw[at : at + len(chunk)]
        elif op == "replace":
            raw[at : at + len(chunk)] = chunk
        else:
            del raw[at:]
    path = tmp_path_factory.mktemp("bytes") / "a.klb"
    path.write_bytes(bytes(raw))
    with contextlib.suppress(BackupError):
        read_backup(path, BackupSecret(key=KEY, passphrase="a passphrase that is long"))


@FUZZ
@given(
    header=st.dictionaries(
        st.sampled_from(["kdf", "n", "r", "p", "salt"]),
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.text(max_size=30)
        | st.sampled_from(["scrypt", "key"]),
    )
)
def test_random_headers(
    archive: tuple[bytes, dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
    header: dict[str, Any],
) -> None:
    head = json.dumps(header).encode()
    path = tmp_path_factory.mktemp("header") / "a.klb"
    path.write_bytes(MAGIC + head + b"\n" + os.urandom(40))
    with pytest.raises(BackupError):
        read_backup(path, BackupSecret(key=KEY, passphrase="a passphrase that is long"))


def _seal(data: Any) -> bytes:
    head = b'{"kdf": "key"}'
    nonce = os.urandom(12)
    payload = zlib.compress(json.dumps(data).encode())
    return MAGIC + head + b"\n" + nonce + AESGCM(KEY).encrypt(nonce, payload, MAGIC + head)


@FUZZ
@given(data=st.data())
def test_mutated_payloads(
    archive: tuple[bytes, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory, data: Any
) -> None:
    payload = mutate(archive[1], data)
    if data.draw(st.booleans()) and isinstance(payload, dict):
        material = payload.get("material")  # the mutation may have replaced the list
        items = [i for i in material if isinstance(i, dict)] if isinstance(material, list) else []
        if items:  # right shape, wrong bytes: the size and fingerprint checks
            size = data.draw(st.integers(0, 80))
            items[0]["key"] = base64.b64encode(os.urandom(size)).decode()
    root = tmp_path_factory.mktemp("payload")
    (root / "a.klb").write_bytes(_seal(payload))
    try:
        read = read_backup(root / "a.klb", BackupSecret(key=KEY))
        check_archive(read)
    except BackupError as exc:
        assert "\n" not in str(exc)
        return
    with keylife.init(str(root / "k.db"), master_key_file=root / "m.key") as m:
        restore_snapshot(m.store, read)  # what validation let through restores exactly
        assert len(m.rings()) == len(read["rings"])


def test_the_real_archive_restores(archive: tuple[bytes, dict[str, Any]], tmp_path: Path) -> None:
    with keylife.init(str(tmp_path / "k.db"), master_key_file=tmp_path / "m.key") as m:
        summary = restore_snapshot(m.store, archive[1])
        assert m.store.encryption_counts("data") == {1: 7}
    assert summary.rings == 3 and summary.versions_with_material == 3
