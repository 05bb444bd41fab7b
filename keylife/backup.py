"""Encrypted backup archives of a whole store, and restore into an empty store.

Archive layout::

    b"KEYLIFE-BACKUP-1\\n" || header JSON || b"\\n" || nonce(12) || AES-256-GCM(payload)

The header (authenticated as associated data) says how the archive key is derived: from a
passphrase with scrypt (N=2**15, r=8, p=1, random salt) or a 256-bit backup key file. The
payload is compressed JSON of every ring document, every version's material and the audit log.
It is never the master key: a backup opens without the store's master key, and a stolen
master key does not open backups.
"""

from __future__ import annotations

import base64
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .audit import AuditRecord, replay, verify_chain
from .errors import BackupError, IntegrityError, KeylifeError
from .lifecycle import ring_from_dict, ring_to_dict
from .material import KeyMaterial
from .sealing import MasterKey, write_secret_file
from .store.base import KeyStore

MAGIC = b"KEYLIFE-BACKUP-1\n"
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}


@dataclass(frozen=True)
class BackupSecret:
    """A passphrase or a 32-byte backup key; repr is redacted."""

    passphrase: str | None = None
    key: bytes | None = None

    def __repr__(self) -> str:
        return "<BackupSecret [redacted]>"

    @classmethod
    def from_key_file(cls, path: str | Path) -> BackupSecret:
        key = MasterKey.decode(Path(path).read_bytes(), source=str(path))
        return cls(key=key._key)

    def derive(self, header: dict[str, Any]) -> bytes:
        if header.get("kdf") == "scrypt":
            if self.passphrase is None:
                raise BackupError("this archive is protected by a passphrase; give the passphrase")
            n, r, p = header.get("n"), header.get("r"), header.get("p")
            # Bounded, so a corrupted or hostile header cannot ask for gigabytes of memory.
            if not (
                isinstance(n, int)
                and isinstance(r, int)
                and isinstance(p, int)
                and 2 <= n <= 2**20
                and 1 <= r <= 32
                and 1 <= p <= 16
            ):
                raise BackupError("archive header has missing or out-of-range scrypt parameters")
            salt = base64.b64decode(header["salt"])
            kdf = Scrypt(salt=salt, length=32, n=n, r=r, p=p)
            return kdf.derive(self.passphrase.encode())
        if header.get("kdf") == "key":
            if self.key is None:
                raise BackupError("this archive is protected by a backup key; give the key file")
            return self.key
        raise BackupError(f"unknown key derivation {header.get('kdf')!r} in archive header")


@dataclass(frozen=True)
class BackupSummary:
    rings: int
    versions_with_material: int
    audit_records: int


def _header(secret: BackupSecret) -> dict[str, Any]:
    if secret.passphrase is not None:
        if len(secret.passphrase) < 12:
            raise BackupError("the backup passphrase must be at least 12 characters")
        return {"kdf": "scrypt", "salt": base64.b64encode(os.urandom(16)).decode(), **_SCRYPT}
    if secret.key is not None:
        return {"kdf": "key"}
    raise BackupError("a backup needs a passphrase or a backup key file")


def snapshot(store: KeyStore) -> dict[str, Any]:
    """Everything in ``store`` as plain data (with material: keep it encrypted)."""
    rings = store.load_rings()
    material = []
    for ring in rings:
        for v in ring.versions:
            if v.has_material:
                m = store.get_material(ring.name, v.number, v.spec)
                material.append(
                    {
                        "ring": ring.name,
                        "version": v.number,
                        "key": base64.b64encode(m.reveal()).decode(),
                    }
                )
    audit = [r.to_dict() for r in store.read_audit()]
    return {
        "format": 1,
        "rings": [ring_to_dict(r) for r in rings],
        "material": material,
        "audit": audit,
    }


def write_backup(store: KeyStore, path: str | Path, secret: BackupSecret) -> BackupSummary:
    """Write an encrypted archive of ``store`` to ``path`` (0600, atomically)."""
    header = _header(secret)
    data = snapshot(store)
    payload = zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)
    head = json.dumps(header, sort_keys=True).encode()
    nonce = os.urandom(12)
    key = secret.derive(header)
    blob = MAGIC + head + b"\n" + nonce + AESGCM(key).encrypt(nonce, payload, MAGIC + head)
    write_secret_file(Path(path), blob)
    return BackupSummary(len(data["rings"]), len(data["material"]), len(data["audit"]))


def read_backup(path: str | Path, secret: BackupSecret) -> dict[str, Any]:
    """Decrypt and parse an archive; any corruption, truncation or wrong key is refused."""
    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    if not blob.startswith(MAGIC):
        raise BackupError(f"{path} is not a keylife backup archive (bad magic)")
    rest = blob[len(MAGIC) :]
    head, sep, body = rest.partition(b"\n")
    if not sep or len(body) < 12 + 16:
        raise BackupError(f"{path} is truncated")
    try:
        header = json.loads(head)
    except ValueError:
        raise BackupError(f"{path}: archive header is corrupted") from None
    if not isinstance(header, dict):
        raise BackupError(f"{path}: archive header is corrupted")
    try:
        key = secret.derive(header)
    except (KeyError, TypeError, ValueError):  # bad salt encoding, n not a power of 2, ...
        raise BackupError(f"{path}: archive header is corrupted") from None
    try:
        payload = AESGCM(key).decrypt(body[:12], body[12:], MAGIC + head)
    except InvalidTag:
        raise BackupError(
            f"{path}: archive does not decrypt: wrong passphrase or key, or the archive was "
            "corrupted or truncated"
        ) from None
    try:
        data = json.loads(zlib.decompress(payload))
    except (zlib.error, ValueError):
        raise BackupError(f"{path}: archive payload is corrupted") from None
    if not isinstance(data, dict) or data.get("format") != 1:
        raise BackupError(f"{path}: unsupported archive format")
    return data


def restore_snapshot(store: KeyStore, data: dict[str, Any]) -> BackupSummary:
    """Load ``data`` (from :func:`snapshot`) into an EMPTY store and verify the result."""
    if store.list_ring_names() or store.read_audit():
        raise BackupError(
            "restore needs an empty store (no rings, no audit records); "
            "initialise a new store and restore into it"
        )
    records = [AuditRecord.from_dict(r) for r in data["audit"]]
    chain_report = verify_chain(records)
    if not chain_report.ok:
        raise BackupError(f"the archive's audit log does not verify: {chain_report.problem}")
    rings = [ring_from_dict(r, 0) for r in data["rings"]]
    by_ring: dict[str, dict[int, KeyMaterial]] = {}
    specs = {(r.name, v.number): v.spec for r in rings for v in r.versions}
    for item in data["material"]:
        spec = specs[(item["ring"], item["version"])]
        by_ring.setdefault(item["ring"], {})[item["version"]] = KeyMaterial(
            base64.b64decode(item["key"]), spec
        )
    for ring in rings:
        store.commit(ring, expected_revision=0, materials=by_ring.get(ring.name, {}))
    replay(records, store)
    verify_restore(store, data)
    return BackupSummary(len(rings), len(data["material"]), len(records))


def verify_restore(store: KeyStore, data: dict[str, Any]) -> None:
    """Check that ``store`` now holds exactly what ``data`` describes."""
    again = snapshot(store)
    for key in ("rings", "material", "audit"):
        ours = sorted(json.dumps(x, sort_keys=True) for x in again[key])
        theirs = sorted(json.dumps(x, sort_keys=True) for x in data[key])
        if ours != theirs:
            raise IntegrityError(f"restored store differs from the archive in its {key}")


def restore(store: KeyStore, path: str | Path, secret: BackupSecret) -> BackupSummary:
    data = read_backup(path, secret)
    try:
        return restore_snapshot(store, data)
    except BackupError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupError(f"{path}: archive content is malformed ({type(exc).__name__})") from None
    except KeylifeError:
        raise
