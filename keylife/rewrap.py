"""Rewrapping a file of ciphertexts to a ring's primary, resumably: :func:`rewrap_file` (behind
``keylife rewrap RING FILE``), the embedded-store counterpart of ``keylife vault rewrap``.

The file holds one base64 keylife blob per line (a message from ``encrypt`` or a wrapped key
from ``wrap``); blank lines are kept. After each batch the whole file is replaced atomically
(:func:`keylife.files.atomic_write`, keeping the file's mode) and then
``FILE.rewrap-checkpoint`` records the next line, so a killed run resumes there; lines already
on the primary are skipped in any case. The checkpoint is removed when the file is done.
Plaintext never leaves :meth:`KeyRing.rewrap`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import DecryptionError, KeylifeError
from .files import atomic_write
from .keyring import KeyRing

__all__ = ["MAX_FILE_BYTES", "RewrapResult", "checkpoint_path", "rewrap_file"]

#: Files larger than this are refused (the file is read whole to be replaced atomically).
MAX_FILE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class RewrapResult:
    ring: str
    target_version: int
    lines: int
    rewrapped: int
    batches: int
    resumed_from_line: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def checkpoint_path(path: Path) -> Path:
    return path.with_name(path.name + ".rewrap-checkpoint")


def _read_lines(path: Path) -> list[str]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise KeylifeError(f"{path} is {size} bytes; rewrap takes files up to 256 MiB")
        return path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeylifeError(f"cannot read {path}: {exc}") from exc


def _start(cp: Path, ring: str, target: int, lines: int) -> int:
    try:
        saved = json.loads(cp.read_text())
    except (OSError, ValueError):
        return 0
    if not isinstance(saved, dict) or saved.get("ring") != ring:
        return 0
    if saved.get("target_version") != target or not isinstance(saved.get("next_line"), int):
        return 0
    return max(0, min(int(saved["next_line"]), lines))


def _decode(line: str, number: int, ring: str) -> bytes:
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError(
            f"line {number} is not a base64 keylife ciphertext for ring {ring}", ring=ring
        ) from None


def rewrap_file(
    ring: KeyRing,
    path: str | Path,
    *,
    batch_size: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> RewrapResult:
    """Re-encrypt every line of ``path`` not yet on ``ring``'s primary."""
    if batch_size < 1:
        raise KeylifeError("batch size must be at least 1")
    p = Path(path)
    target = ring.primary().number
    lines = _read_lines(p)
    mode = stat.S_IMODE(p.stat().st_mode)
    cp = checkpoint_path(p)
    start = i = _start(cp, ring.name, target, len(lines))
    rewrapped = batches = 0
    while i < len(lines):
        end = min(i + batch_size, len(lines))
        changed = 0
        for k in range(i, end):
            text = lines[k].strip()
            if not text:
                continue
            blob = _decode(text, k + 1, ring.name)
            if ring.version_of(blob) == target:
                continue
            try:
                lines[k] = base64.b64encode(ring.rewrap(blob)).decode()
            except DecryptionError as exc:
                raise DecryptionError(f"line {k + 1}: {exc}", ring=ring.name) from None
            changed += 1
        if changed:
            data = "".join(line + "\n" for line in lines).encode()
            atomic_write(p, data, mode=mode)
            rewrapped += changed
            batches += 1
        checkpoint = {"ring": ring.name, "target_version": target, "next_line": end}
        atomic_write(cp, json.dumps(checkpoint).encode(), mode=0o600)
        i = end
        if progress is not None:
            progress(i, len(lines))
    with contextlib.suppress(FileNotFoundError):
        cp.unlink()
    return RewrapResult(ring.name, target, len(lines), rewrapped, batches, start)
