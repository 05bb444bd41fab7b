"""``keylife vault rewrap``: move a file of Transit ciphertexts to a ring's newest version.

:func:`rewrap_file` rewraps a file of ``vault:vN:...`` ciphertexts (one per line) to the newest
version in batches; after each batch the file is replaced atomically and a checkpoint records
the position, so a killed run resumes where it stopped. :func:`plan_rewrap` is its dry run.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import KeylifeError
from ..files import atomic_write
from .transit import CIPHERTEXT
from .transit_rings import TransitRings

__all__ = ["MAX_FILE_BYTES", "RewrapPlan", "RewrapResult", "plan_rewrap", "rewrap_file"]

#: The largest ciphertext file read (a file is rewritten whole after each batch).
MAX_FILE_BYTES = 256 * 1024 * 1024
_MAX_CHECKPOINT = 4096


@dataclass(frozen=True)
class RewrapPlan:
    """Which lines of a ciphertext file are not on the newest version, by version."""

    path: str
    target: int
    total: int
    by_version: dict[int, list[int]]  # version -> line numbers (1-based)
    states: dict[int, str]
    unusable: list[int]  # lines on a version Transit no longer decrypts (already trimmed)
    invalid: list[int]  # lines that are not vault:vN: ciphertexts

    @property
    def to_rewrap(self) -> int:
        return sum(len(v) for n, v in self.by_version.items() if n < self.target)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "target_version": self.target,
            "lines": self.total,
            "to_rewrap": self.to_rewrap,
            "versions": [
                {
                    "version": n,
                    "state": self.states.get(n, "unknown"),
                    "ciphertexts": len(lines),
                    "lines": lines,
                    "trimmed_if_compromised_or_destroyed": n < self.target,
                }
                for n, lines in sorted(self.by_version.items())
                if n < self.target
            ],
            "unusable_lines": self.unusable,
            "invalid_lines": self.invalid,
        }


@dataclass(frozen=True)
class RewrapResult:
    target: int
    rewrapped: int
    batches: int
    resumed_from: int  # line index the run started at (0: from the start)

    def to_dict(self) -> dict[str, int]:
        return {
            "target_version": self.target,
            "rewrapped": self.rewrapped,
            "batches": self.batches,
            "resumed_from_line": self.resumed_from,
        }


def _lines(path: Path) -> list[str]:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise KeylifeError(
                f"{path} is larger than {MAX_FILE_BYTES // 2**20} MiB; split it and rewrap "
                "each part"
            )
        return path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeylifeError(f"cannot read {path}: {exc}") from exc


def plan_rewrap(rings: TransitRings, name: str, path: str | Path) -> RewrapPlan:
    """The dry run of :func:`rewrap_file`: which ciphertexts still sit on which older version
    (they become undecryptable once that version is compromised, destroyed or trimmed)."""
    view = rings.show(name)
    p = Path(path)
    by_version: dict[int, list[int]] = {}
    invalid: list[int] = []
    unusable: list[int] = []
    floor = view.transit.get("min_decryption_version", 1) or 1
    lines = _lines(p)
    for i, line in enumerate(lines, 1):
        m = CIPHERTEXT.match(line.strip())
        if not m:
            if line.strip():
                invalid.append(i)
            continue
        n = int(m.group(1))
        by_version.setdefault(n, []).append(i)
        if n < floor:
            unusable.append(i)
    states = {v.number: v.state.value for v in view.ring.versions}
    return RewrapPlan(str(p), view.latest, len(lines), by_version, states, unusable, invalid)


def _checkpoint(path: Path) -> Path:
    return path.with_name(path.name + ".rewrap-checkpoint")


def _resume_at(cp: Path, target: int, total: int) -> int:
    """The line to start at: the checkpoint's, if it is for ``target`` (else 0)."""
    try:
        with open(cp, "rb") as fh:
            saved = json.loads(fh.read(_MAX_CHECKPOINT))
        if isinstance(saved, dict) and saved.get("target_version") == target:
            line = saved.get("next_line", 0)
            return min(line, total) if isinstance(line, int) and line > 0 else 0
    except (OSError, ValueError):
        pass
    return 0


def rewrap_file(
    rings: TransitRings,
    name: str,
    path: str | Path,
    *,
    batch_size: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> RewrapResult:
    """Rewrap every ciphertext of ``path`` that is older than the newest version.

    After each batch the whole file is replaced atomically (temporary file, fsync, rename)
    and then ``<file>.rewrap-checkpoint`` records the next line; a killed run resumes there
    (and lines already on the newest version are skipped in any case). The checkpoint is
    removed when the file is done. ``progress(done_lines, total_lines)`` runs after each batch.
    """
    if batch_size < 1:
        raise KeylifeError("batch size must be at least 1")
    view = rings.show(name)
    target = view.latest
    p = Path(path)
    lines = _lines(p)
    mode = p.stat().st_mode & 0o777
    cp = _checkpoint(p)
    start = _resume_at(cp, target, len(lines))
    rewrapped = batches = 0
    i = start
    while i < len(lines):
        todo: list[int] = []
        j = i
        while j < len(lines) and len(todo) < batch_size:
            m = CIPHERTEXT.match(lines[j].strip())
            if m and int(m.group(1)) < target:
                todo.append(j)
            j += 1
        if todo:
            new = rings.transit.rewrap(view.key, target, [lines[k].strip() for k in todo])
            for k, ct in zip(todo, new, strict=True):
                lines[k] = ct
            text = "".join(line + "\n" for line in lines)
            atomic_write(p, text.encode("ascii"), mode=mode)
            rewrapped += len(todo)
            batches += 1
        checkpoint = {"target_version": target, "next_line": j}
        atomic_write(cp, json.dumps(checkpoint).encode(), mode=0o600)
        i = j
        if progress is not None:
            progress(i, len(lines))
    with contextlib.suppress(FileNotFoundError):
        cp.unlink()
    return RewrapResult(target, rewrapped, batches, start)
