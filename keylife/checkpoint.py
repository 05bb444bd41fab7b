"""Signed audit checkpoints: anchors of the audit log kept outside the store.

A checkpoint names the log's head (record count and the hash of the last record), the time and
the store, signed with an Ed25519 key from a dedicated ring (:data:`DEFAULT_RING`). Kept in a
file, syslog or a ticket, it proves later that the log still contains that record unchanged:
:func:`check_checkpoints` reports a log that was truncated, wiped or rolled back, which the
hash chain alone cannot see (whoever controls the store can rewrite the whole chain).

A checkpoint is one JSON line::

    {"format": "keylife-checkpoint/1", "store": ..., "seq": 42, "head": "<sha256 hex>",
     "at": "2026-12-02T02:00:00+00:00", "ring": "keylife-audit-checkpoint", "version": 1,
     "public_key": "<base64 DER SubjectPublicKeyInfo>", "signature": "<base64>"}

The signature covers the canonical JSON of every other field. The public key travels with the
checkpoint, so it verifies without the store; its fingerprint is also checked against the
ring's versions in the store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .audit import AuditRecord, verify_chain
from .errors import CheckpointError, IntegrityError, NotFoundError

if TYPE_CHECKING:
    from .lifecycle import Ring
    from .manager import KeyManager

__all__ = [
    "DEFAULT_RING",
    "FORMAT",
    "Checkpoint",
    "CheckpointReport",
    "append_checkpoint",
    "check_checkpoints",
    "make_checkpoint",
    "parse_checkpoint",
    "read_checkpoints",
]

FORMAT = "keylife-checkpoint/1"
#: The ring whose Ed25519 key signs checkpoints (created on the first checkpoint).
DEFAULT_RING = "keylife-audit-checkpoint"
#: The longest checkpoint line, and the largest checkpoint file, read.
MAX_LINE = 4096
MAX_FILE = 16 * 1024 * 1024

_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_FIELDS = ("format", "store", "seq", "head", "at", "ring", "version", "public_key", "signature")


@dataclass(frozen=True)
class Checkpoint:
    store: str
    seq: int
    head: str
    at: str
    ring: str
    version: int
    public_key: str
    signature: str = ""
    format: str = FORMAT

    def payload(self) -> bytes:
        """The signed bytes: canonical JSON of every field but the signature."""
        body = asdict(self)
        body.pop("signature")
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def to_line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @property
    def fingerprint(self) -> str:
        """The signing key's fingerprint, as keylife records it on the ring version."""
        return "sha256:" + hashlib.sha256(base64.b64decode(self.public_key)).hexdigest()


def _b64(value: object, what: str, line: int | None) -> bytes:
    if not isinstance(value, str) or len(value) > 1024:
        raise CheckpointError(f"checkpoint {what} must be base64 text", line=line)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(f"checkpoint {what} is not valid base64", line=line) from None


def parse_checkpoint(text: str, *, line: int | None = None) -> Checkpoint:
    """Decode and verify one checkpoint line; :class:`CheckpointError` when it is malformed or
    its signature does not verify."""
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    where = f"line {line}: " if line is not None else ""
    if len(text) > MAX_LINE:
        raise CheckpointError(f"{where}a checkpoint is at most {MAX_LINE} characters", line=line)
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise CheckpointError(f"{where}not a JSON checkpoint", line=line) from None
    if not isinstance(doc, dict) or set(doc) != set(_FIELDS):
        raise CheckpointError(f"{where}a checkpoint has exactly {', '.join(_FIELDS)}", line=line)
    if doc["format"] != FORMAT:
        raise CheckpointError(f"{where}unknown checkpoint format (expected {FORMAT})", line=line)
    for key in ("seq", "version"):
        value = doc[key]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 2**31:
            raise CheckpointError(f"{where}checkpoint {key} must be a number", line=line)
    for key in ("store", "at", "ring"):
        if not isinstance(doc[key], str) or len(doc[key]) > 1024:
            raise CheckpointError(f"{where}checkpoint {key} must be text", line=line)
    if not isinstance(doc["head"], str) or not _HEX64.fullmatch(doc["head"]):
        raise CheckpointError(f"{where}checkpoint head must be 64 hex digits", line=line)
    der = _b64(doc["public_key"], "public_key", line)
    signature = _b64(doc["signature"], "signature", line)
    checkpoint = Checkpoint(**doc)
    try:
        public = load_der_public_key(der)
        if not isinstance(public, Ed25519PublicKey):
            raise CheckpointError(f"{where}checkpoint key is not Ed25519", line=line)
        public.verify(signature, checkpoint.payload())
    except (ValueError, UnsupportedAlgorithm, InvalidSignature):
        raise CheckpointError(f"{where}checkpoint signature does not verify", line=line) from None
    return checkpoint


def read_checkpoints(path: str | Path) -> list[Checkpoint]:
    """Every checkpoint in the file at ``path`` (one per line; blank lines skipped)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE + 1)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE:
        raise CheckpointError(f"{path} is larger than {MAX_FILE >> 20} MiB")
    text = raw.decode("utf-8", errors="replace")
    return [
        parse_checkpoint(line, line=i)
        for i, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def _signing_ring(manager: KeyManager, ring: str) -> Ring:
    try:
        return manager.load(ring)
    except NotFoundError:
        manager.create_ring(ring, "ed25519", "signing", reason="audit checkpoint signing key")
        return manager.load(ring)


def make_checkpoint(manager: KeyManager, *, ring: str = DEFAULT_RING) -> Checkpoint:
    """Sign the current head of ``manager``'s audit log with ``ring``'s primary (created, as an
    Ed25519 signing ring, when missing) and record the checkpoint in the log."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    signing = _signing_ring(manager, ring)
    if signing.spec.name != "ed25519":
        raise CheckpointError(f"ring {ring} is {signing.spec.name}; checkpoints need ed25519")
    records = manager.store.read_audit()
    head_fn = getattr(manager.store, "audit_head", None)
    head = head_fn() if callable(head_fn) else None
    report = verify_chain(records, head=head)
    if not report.ok:
        raise IntegrityError(
            f"the audit log does not verify ({report.problem}); a checkpoint would anchor a "
            "damaged log: investigate with `keylife audit verify` first"
        )
    seq = len(records)
    last = records[-1].hash if records else "0" * 64
    loaded = manager.ring(ring).primary()
    key = loaded.key
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"ring {ring}'s primary is not an Ed25519 key")
    public = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    unsigned = Checkpoint(
        store=manager.store.url,
        seq=seq,
        head=last,
        at=manager.now().isoformat(),
        ring=ring,
        version=loaded.number,
        public_key=base64.b64encode(public).decode(),
    )
    signature = base64.b64encode(key.sign(unsigned.payload())).decode()
    checkpoint = Checkpoint(**{**asdict(unsigned), "signature": signature})
    entry = manager.entry(
        "checkpoint", ring, loaded.number, f"signed head: record {seq}, hash {last}"
    )
    manager.store.append_audit([entry])
    return checkpoint


def append_checkpoint(path: str | Path, checkpoint: Checkpoint) -> None:
    """Append ``checkpoint``'s line to the file at ``path`` (created 0644: it holds nothing
    secret), replacing the file atomically; refused past :data:`MAX_FILE`."""
    from .files import atomic_write

    try:
        with open(path, "rb") as fh:
            before = fh.read(MAX_FILE + 1)
    except FileNotFoundError:
        before = b""
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(before) > MAX_FILE:
        raise CheckpointError(f"{path} is larger than {MAX_FILE >> 20} MiB")
    if before and not before.endswith(b"\n"):
        before += b"\n"
    line = checkpoint.to_line().encode() + b"\n"
    atomic_write(path, before + line, mode=0o644, error=CheckpointError)


@dataclass(frozen=True)
class CheckpointReport:
    ok: bool
    checked: int
    problems: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "problems": list(self.problems)}


def check_checkpoints(
    records: Sequence[AuditRecord], checkpoints: Sequence[Checkpoint], rings: Sequence[Ring]
) -> CheckpointReport:
    """Does the log still hold every checkpointed head? (pure)

    A checkpoint beyond the end of the log means records were removed (truncated or wiped); a
    different hash at its position means the log was rewritten or rolled back. A checkpoint
    key that is no version of its ring in the store is reported too.
    """
    problems: list[str] = []
    fingerprints = {(r.name, v.fingerprint) for r in rings for v in r.versions}
    for cp in checkpoints:
        label = f"checkpoint of {cp.at} (record {cp.seq})"
        if cp.seq > len(records):
            problems.append(
                f"{label}: the log holds only {len(records)} records; records were removed "
                "(truncated or wiped)"
            )
        elif cp.seq and records[cp.seq - 1].hash != cp.head:
            problems.append(
                f"{label}: record {cp.seq} is not the one checkpointed; the log was rewritten "
                "or rolled back"
            )
        if (cp.ring, cp.fingerprint) not in fingerprints:
            problems.append(
                f"{label}: its signing key is not a version of ring {cp.ring} in this store"
            )
    return CheckpointReport(not problems, len(checkpoints), tuple(problems))
