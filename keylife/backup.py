"""Encrypted backup archives of a whole store, and all-or-nothing restore into an empty store.

Archive layout::

    b"KEYLIFE-BACKUP-1\\n" || header JSON || b"\\n" || nonce(12) || AES-256-GCM(payload)

The header (authenticated as associated data) says how the archive key is derived: from a
passphrase with scrypt (:data:`SCRYPT_PARAMS`: N=2**15, r=8, p=1, random salt) or a 256-bit
backup key file. The header is read before anything is authenticated, so its scrypt parameters
are attacker-chosen: anything above what keylife writes is refused before deriving. The payload
is compressed JSON of every ring document, every version's material and the audit log. It is
never the master key: a backup opens without the store's master key, and a stolen master key
does not open backups.

Restore validates the whole archive first (ring names, documents, material references, sizes
and fingerprints, the audit chain) and then writes it in one transaction where the store offers
one (:class:`SnapshotImporter`, the embedded store): a refused restore leaves nothing behind.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .audit import AuditEntry, AuditRecord, replay, verify_chain
from .carriedcounts import counts_from_archive, counts_to_archive, read_counts
from .errors import BackupError, CorruptRecordError, IntegrityError, KeylifeError
from .files import atomic_write, read_capped
from .lifecycle import Ring, ring_from_dict, ring_to_dict
from .material import KeyMaterial
from .names import RING_NAME_RULE, is_ring_name
from .sealing import MasterKey
from .store.base import KeyStore

MAGIC = b"KEYLIFE-BACKUP-1\n"
#: The scrypt parameters keylife writes, and the most it accepts when reading (32 MiB, ~0.1 s).
SCRYPT_PARAMS = {"n": 2**15, "r": 8, "p": 1}
#: Size caps when reading an archive: the file, its header line, the decompressed payload.
MAX_ARCHIVE_BYTES = 1 << 30
MAX_HEADER_BYTES = 4096
MAX_PAYLOAD_BYTES = 1 << 30


@dataclass(frozen=True)
class BackupSecret:
    """A passphrase or a 32-byte backup key; repr is redacted."""

    passphrase: str | None = None
    key: bytes | None = None

    def __repr__(self) -> str:
        return "<BackupSecret [redacted]>"

    @classmethod
    def from_key_file(cls, path: str | Path) -> BackupSecret:
        try:
            with open(path, "rb") as fh:
                text = fh.read(4096)
            key = MasterKey.decode(text, source=str(path))
        except OSError as exc:
            raise BackupError(f"cannot read backup key file {path}: {exc.strerror}") from None
        except KeylifeError as exc:
            raise BackupError(
                str(exc).replace("master key", "backup key")
                + " (make one with `head -c 32 /dev/urandom | base64 > bk.key`; it is not the "
                "master key)"
            ) from None
        return cls(key=key._key)

    def derive(self, header: Mapping[str, Any]) -> bytes:
        if header.get("kdf") == "scrypt":
            if self.passphrase is None:
                raise BackupError("this archive is protected by a passphrase; give the passphrase")
            n, r, p = check_scrypt(header)
            return Scrypt(salt=_salt(header), length=32, n=n, r=r, p=p).derive(
                self.passphrase.encode()
            )
        if header.get("kdf") == "key":
            if self.key is None:
                raise BackupError("this archive is protected by a backup key; give the key file")
            return self.key
        raise BackupError(
            f"unknown key derivation {str(header.get('kdf'))[:40]!r} in archive header"
        )


def check_scrypt(header: Mapping[str, Any]) -> tuple[int, int, int]:
    """The header's scrypt (n, r, p), refused above :data:`SCRYPT_PARAMS` before any work."""
    n, r, p = header.get("n"), header.get("r"), header.get("p")
    top = SCRYPT_PARAMS
    if not (
        all(type(x) is int for x in (n, r, p))
        and isinstance(n, int)
        and isinstance(r, int)
        and isinstance(p, int)
        and 2 <= n <= top["n"]
        and n & (n - 1) == 0
        and 1 <= r <= top["r"]
        and 1 <= p <= top["p"]
    ):
        raise BackupError(
            f"archive header asks for scrypt n={str(n)[:20]}, r={str(r)[:20]}, p={str(p)[:20]}; "
            f"keylife accepts at most n=2^15 (a power of two), r={top['r']}, p={top['p']}, "
            "which is what it writes"
        )
    return n, r, p


def _salt(header: Mapping[str, Any]) -> bytes:
    salt = header.get("salt")
    try:
        raw = base64.b64decode(salt, validate=True) if isinstance(salt, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if not 16 <= len(raw) <= 64:
        raise BackupError("archive header has a missing or malformed scrypt salt")
    return raw


@dataclass(frozen=True)
class BackupSummary:
    rings: int
    versions_with_material: int
    audit_records: int
    #: SHA-256 of the archive file (hex), as the audit record of the backup or restore names it.
    sha256: str = ""


#: ``RingWriter.entry``: (action, ring, version, reason) -> the audit entry, by whoever acts.
EntryMaker = Callable[[str, str | None, int | None, str], AuditEntry]


def archive_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of the archive at ``path``: its fingerprint in the audit log."""
    blob = read_capped(path, MAX_ARCHIVE_BYTES, what="backup archive", error=BackupError)
    return hashlib.sha256(blob).hexdigest()


def _counts(summary: BackupSummary) -> str:
    return (
        f"{summary.rings} rings, {summary.versions_with_material} versions with material, "
        f"{summary.audit_records} audit records"
    )


def _header(secret: BackupSecret) -> dict[str, Any]:
    if secret.passphrase is not None:
        if len(secret.passphrase) < 12:
            raise BackupError("the backup passphrase must be at least 12 characters")
        salt = base64.b64encode(os.urandom(16)).decode()
        return {"kdf": "scrypt", "salt": salt, **SCRYPT_PARAMS}
    if secret.key is not None:
        return {"kdf": "key"}
    raise BackupError("a backup needs a passphrase or a backup key file")


def snapshot(store: KeyStore) -> dict[str, Any]:
    """Everything in ``store`` as plain data (with material: keep it encrypted).

    A damaged ring or audit record is refused: its archive could never be restored.
    """
    from .keygen import check_fingerprint

    rings = store.load_rings()
    records = store.read_audit()
    for damage in [r.damage for r in rings] + [r.damage for r in records]:
        if damage:
            raise BackupError(f"{damage}; repair the store (keylife audit verify) first")
    material = []
    for ring in rings:
        for v in ring.versions:
            if v.has_material:
                m = store.get_material(ring.name, v.number, v.spec)
                check_fingerprint(m, v.fingerprint, ring.name, v.number)  # restorable only
                material.append(
                    {
                        "ring": ring.name,
                        "version": v.number,
                        "key": base64.b64encode(m.reveal()).decode(),
                    }
                )
    return {
        "format": 1,
        "rings": [ring_to_dict(r) for r in rings],
        "material": material,
        "audit": [r.to_dict() for r in records],
        "counts": counts_to_archive(read_counts(store, rings)),
    }


def write_backup(
    store: KeyStore, path: str | Path, secret: BackupSecret, *, entry: EntryMaker | None = None
) -> BackupSummary:
    """Write an encrypted archive of ``store`` to ``path`` (0600, atomically).

    With ``entry`` (a manager's ``entry``), the backup is recorded in ``store``'s audit log
    afterwards, with the archive's SHA-256 and counts (the archive holds the log before it).
    """
    header = _header(secret)
    data = snapshot(store)
    payload = zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)
    head = json.dumps(header, sort_keys=True).encode()
    nonce = os.urandom(12)
    key = secret.derive(header)
    blob = MAGIC + head + b"\n" + nonce + AESGCM(key).encrypt(nonce, payload, MAGIC + head)
    atomic_write(path, blob, mode=0o600, error=BackupError)
    digest = hashlib.sha256(blob).hexdigest()
    summary = BackupSummary(len(data["rings"]), len(data["material"]), len(data["audit"]), digest)
    if entry is not None:
        reason = f"archive {path} sha256:{digest}: {_counts(summary)}"
        store.append_audit([entry("backup", None, None, reason)])
    return summary


def read_backup(path: str | Path, secret: BackupSecret) -> dict[str, Any]:
    """Decrypt and parse an archive; any corruption, truncation or wrong key is refused."""
    blob = read_capped(path, MAX_ARCHIVE_BYTES, what="backup archive", error=BackupError)
    if not blob.startswith(MAGIC):
        raise BackupError(f"{path} is not a keylife backup archive (bad magic)")
    rest = blob[len(MAGIC) :]
    head, sep, body = rest[: MAX_HEADER_BYTES + 1].partition(b"\n")
    if not sep:
        raise BackupError(f"{path} is truncated or its header is corrupted")
    body = rest[len(head) + 1 :]
    if len(body) < 12 + 16:
        raise BackupError(f"{path} is truncated")
    try:
        header = json.loads(head)
    except (ValueError, RecursionError):
        raise BackupError(f"{path}: archive header is corrupted") from None
    if not isinstance(header, dict):
        raise BackupError(f"{path}: archive header is corrupted")
    key = secret.derive(header)
    try:
        payload = AESGCM(key).decrypt(body[:12], body[12:], MAGIC + head)
    except InvalidTag:
        raise BackupError(
            f"{path}: archive does not decrypt: wrong passphrase or key, or the archive was "
            "corrupted or truncated"
        ) from None
    try:
        inflate = zlib.decompressobj()
        text = inflate.decompress(payload, MAX_PAYLOAD_BYTES)
        if inflate.unconsumed_tail:
            raise BackupError(f"{path}: archive payload is over {MAX_PAYLOAD_BYTES >> 20} MiB")
        data = json.loads(text)
    except (zlib.error, ValueError, RecursionError):
        raise BackupError(f"{path}: archive payload is corrupted") from None
    if not isinstance(data, dict) or data.get("format") != 1:
        raise BackupError(f"{path}: unsupported archive format")
    return data


@dataclass(frozen=True)
class ArchiveContents:
    """A validated archive: decoded rings, their material, the audit chain, message counts."""

    rings: tuple[Ring, ...]
    materials: Mapping[str, Mapping[int, KeyMaterial]]
    records: tuple[AuditRecord, ...]
    counts: Mapping[tuple[str, int], int] = field(default_factory=dict)

    @property
    def material_count(self) -> int:
        return sum(len(m) for m in self.materials.values())

    def normalised(self) -> dict[str, Any]:
        """The archive as :func:`snapshot` of a store holding exactly this would give it."""
        return {
            "format": 1,
            "rings": [ring_to_dict(r) for r in self.rings],
            "material": [
                {"ring": ring, "version": n, "key": base64.b64encode(m.reveal()).decode()}
                for ring, by_number in self.materials.items()
                for n, m in by_number.items()
            ],
            "audit": [r.to_dict() for r in self.records],
            "counts": counts_to_archive(self.counts),
        }


def _items(data: Mapping[str, Any], key: str) -> list[Any]:
    items = data.get(key)
    if not isinstance(items, list):
        raise BackupError(f"archive content is malformed: {key!r} is not a list")
    return items


def _check_rings(items: list[Any]) -> tuple[Ring, ...]:
    rings: dict[str, Ring] = {}
    for i, item in enumerate(items, start=1):
        try:
            ring = ring_from_dict(item, 0)
        except CorruptRecordError as exc:
            raise BackupError(f"archive ring #{i}: {exc}") from None
        if not is_ring_name(ring.name):
            raise BackupError(
                f"archive ring #{i} is named {ring.name[:80]!r}; ring names are {RING_NAME_RULE}"
            )
        if ring.name in rings:
            raise BackupError(f"archive holds ring {ring.name!r} twice")
        rings[ring.name] = ring
    return tuple(rings.values())


def _check_material(rings: Sequence[Ring], items: list[Any]) -> dict[str, dict[int, KeyMaterial]]:
    versions = {(r.name, v.number): v for r in rings for v in r.versions}
    found: dict[str, dict[int, KeyMaterial]] = {}
    for i, item in enumerate(items, start=1):
        ring = item.get("ring") if isinstance(item, dict) else None
        number = item.get("version") if isinstance(item, dict) else None
        key = item.get("key") if isinstance(item, dict) else None
        if not (isinstance(ring, str) and type(number) is int and isinstance(key, str)):
            raise BackupError(f"archive material #{i} is malformed (needs ring, version, key)")
        where = f"{ring[:80]!r} v{number}"
        version = versions.get((ring, number))
        if version is None:
            raise BackupError(f"archive material #{i} refers to unknown version {where}")
        if not version.has_material:
            raise BackupError(
                f"archive holds extra material for {where}, which is {version.state.value}"
            )
        if number in found.get(ring, {}):
            raise BackupError(f"archive holds material for {where} twice")
        try:
            raw = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise BackupError(f"archive material for {where} is not valid base64") from None
        material = KeyMaterial(raw, version.spec)
        problem = material_problem(material, version.fingerprint)
        if problem:
            raise BackupError(f"archive material for {where}: {problem}")
        found.setdefault(ring, {})[number] = material
    for (ring, number), version in versions.items():
        if version.has_material and number not in found.get(ring, {}):
            raise BackupError(
                f"archive has no material for {ring!r} v{number}, which is {version.state.value}"
            )
    return found


def material_problem(material: KeyMaterial, expected_fingerprint: str) -> str:
    """Why ``material`` cannot be the key its version describes ("" when it can)."""
    from .keygen import fingerprint

    spec = material.spec
    if spec.symmetric and len(material) * 8 != spec.key_bits:
        return f"{len(material)} bytes where {spec.name} needs {spec.key_bits // 8}"
    try:
        actual = fingerprint(material)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return f"not a {spec.name} private key ({type(exc).__name__})"
    if actual != expected_fingerprint:
        return f"does not match the version's fingerprint (not the {spec.name} key it names)"
    return ""


def check_archive(data: Mapping[str, Any]) -> ArchiveContents:
    """Validate everything in ``data`` (from :func:`read_backup`) before anything is written."""
    records = []
    for i, item in enumerate(_items(data, "audit"), start=1):
        try:
            records.append(AuditRecord.from_dict(item, i))
        except CorruptRecordError as exc:
            raise BackupError(f"archive {exc}") from None
    chain_report = verify_chain(records)
    if not chain_report.ok:
        raise BackupError(f"the archive's audit log does not verify: {chain_report.problem}")
    for r in records:
        if r.to_entry().at.isoformat() != r.at:  # replay could not reproduce its hash
            raise BackupError(f"archive audit record {r.seq} has a non-canonical timestamp")
    rings = _check_rings(_items(data, "rings"))
    materials = _check_material(rings, _items(data, "material"))
    counts = counts_from_archive(rings, data.get("counts"))
    return ArchiveContents(rings, materials, tuple(records), counts)


@runtime_checkable
class SnapshotImporter(Protocol):
    """A store that writes a whole restore in one transaction (the embedded store)."""

    def import_snapshot(
        self,
        rings: Sequence[Ring],
        materials: Mapping[str, Mapping[int, KeyMaterial]],
        audit: Sequence[AuditEntry],
        *,
        check: Callable[[], None] | None = None,
        counts: Mapping[tuple[str, int], int] | None = None,
    ) -> None: ...


def restore_snapshot(
    store: KeyStore,
    data: dict[str, Any],
    *,
    entry: EntryMaker | None = None,
    source: str = "",
    sha256: str = "",
) -> BackupSummary:
    """Load ``data`` (from :func:`snapshot`) into an EMPTY store and verify the result.

    The archive is validated whole first; on the embedded store the writes and the
    verification happen in one transaction, so a refused restore leaves nothing behind. With
    ``entry``, the restore is then recorded after the restored log: the source archive
    (``source``, ``sha256``) and the counts.
    """
    contents = check_archive(data)
    if store.list_ring_names() or store.read_audit():
        raise BackupError(
            "restore needs an empty store (no rings, no audit records); "
            "initialise a new store and restore into it"
        )
    expected = contents.normalised()
    if isinstance(store, SnapshotImporter):
        entries = [r.to_entry() for r in contents.records]
        store.import_snapshot(
            contents.rings,
            contents.materials,
            entries,
            check=lambda: verify_restore(store, expected),
            counts=contents.counts,
        )
    else:
        for ring in contents.rings:
            store.commit(ring, expected_revision=0, materials=contents.materials.get(ring.name))
        if contents.counts:
            store.add_encryptions(contents.counts)
        replay(contents.records, store)
        verify_restore(store, expected)
    summary = BackupSummary(
        len(contents.rings), contents.material_count, len(contents.records), sha256
    )
    if entry is not None:
        where = (source or "an archive") + (f" sha256:{sha256}" if sha256 else "")
        store.append_audit([entry("restore", None, None, f"from {where}: {_counts(summary)}")])
    return summary


def verify_restore(store: KeyStore, data: Mapping[str, Any]) -> None:
    """Check that ``store`` now holds exactly what ``data`` describes."""
    again = snapshot(store)
    for key in ("rings", "material", "audit", "counts"):
        ours = sorted(json.dumps(x, sort_keys=True) for x in again[key])
        theirs = sorted(json.dumps(x, sort_keys=True) for x in data.get(key) or [])
        if ours != theirs:
            raise IntegrityError(f"restored store differs from the archive in its {key}")


def restore(
    store: KeyStore, path: str | Path, secret: BackupSecret, *, entry: EntryMaker | None = None
) -> BackupSummary:
    """Read, validate and restore the archive at ``path`` into the empty ``store`` (recorded
    in its audit log with ``entry``)."""
    data = read_backup(path, secret)
    digest = archive_sha256(path)
    return restore_snapshot(store, data, entry=entry, source=str(path), sha256=digest)
