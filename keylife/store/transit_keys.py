"""Transit-resident keys: keys that never leave Vault, their versions under keylife's lifecycle.

A transit-resident ring ``NAME`` is the Transit key ``kl-NAME`` (non-exportable, no plaintext
backup, not deletable) plus a KV v2 document ``tk/NAME`` in keylife's mount that holds each
version's state and dates (check-and-set). Applications encrypt and decrypt through Vault;
keylife never sees key material. The states are the intent; Transit's floors are derived from
them and re-applied (idempotently, only ever raised) by every operation:

- ``min_encryption_version`` = the lowest version that is still ``active``;
- ``min_decryption_version`` = one above the highest ``compromised`` or ``destroyed`` version;
  versions below it are trimmed (``trim``), so they are gone from Vault.

Transit floors are floors, not sets: deactivating version *v* deactivates every older active
version too, and compromising or destroying *v* makes every older version unusable (older
versions not already compromised are recorded as destroyed, reason "below the decryption
floor"). Compromising the newest version rotates first, so a usable version remains.

:func:`rewrap_file` rewraps a file of ``vault:vN:...`` ciphertexts (one per line) to the newest
version in batches; after each batch the file is replaced atomically and a checkpoint records
the position, so a killed run resumes where it stopped. :func:`plan_rewrap` is its dry run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, KeylifeError, NotFoundError, StoreError
from .vault_client import q

if TYPE_CHECKING:
    from .vault import VaultKeyStore

KEY_PREFIX = "kl-"
DOC_PREFIX = "tk/"
ACTIVE, DEACTIVATED, COMPROMISED, DESTROYED = "active", "deactivated", "compromised", "destroyed"
_GONE = (COMPROMISED, DESTROYED)
_CT = re.compile(r"^vault:v(\d+):\S+$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class TransitVersion:
    number: int
    state: str
    created: str
    deactivated: str | None = None
    compromised: str | None = None
    destroyed: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": self.state,
            "created": self.created,
            "deactivated": self.deactivated,
            "compromised": self.compromised,
            "destroyed": self.destroyed,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class TransitRing:
    name: str
    key: str
    key_type: str
    versions: tuple[TransitVersion, ...]
    revision: int = 0
    #: what Transit reports (after the last sync)
    transit: Mapping[str, int] = field(default_factory=dict)

    @property
    def latest(self) -> int:
        return max(v.number for v in self.versions)

    def version(self, number: int) -> TransitVersion:
        for v in self.versions:
            if v.number == number:
                return v
        raise NotFoundError(f"transit ring {self.name} has no version {number}")

    def floors(self) -> tuple[int, int]:
        """``(min_decryption_version, min_encryption_version)`` implied by the states."""
        gone = [v.number for v in self.versions if v.state in _GONE]
        dec = max(gone, default=0) + 1
        active = [v.number for v in self.versions if v.state == ACTIVE]
        enc = min(active, default=self.latest)
        return dec, max(enc, dec)

    def to_dict(self) -> dict[str, Any]:
        dec, enc = self.floors()
        return {
            "name": self.name,
            "key": self.key,
            "key_type": self.key_type,
            "revision": self.revision,
            "latest_version": self.latest,
            "min_decryption_version": dec,
            "min_encryption_version": enc,
            "transit": dict(self.transit),
            "versions": [v.to_dict() for v in self.versions],
        }


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _now(now: dt.datetime | None) -> str:
    return (now or dt.datetime.now(dt.UTC)).isoformat()


class TransitKeys:
    """Transit-resident rings of one :class:`~keylife.store.vault.VaultKeyStore`."""

    def __init__(self, store: VaultKeyStore, *, actor: str | None = None) -> None:
        self.store = store
        self.transit = store.transit_mount
        self.actor = actor or _os_user()

    def _audit(
        self, action: str, name: str, version: int | None, reason: str, now: dt.datetime | None
    ) -> None:
        """Every change leaves an audit record in keylife's log (ring ``transit:NAME``)."""
        from ..audit import AuditEntry

        at = now or dt.datetime.now(dt.UTC)
        self.store.append_audit(
            [AuditEntry(at, self.actor, action, f"transit:{name}", version, reason=reason)]
        )

    # ---- plumbing ---------------------------------------------------------------------------

    def key_name(self, name: str) -> str:
        if not _NAME.match(name):
            raise KeylifeError(
                f"invalid transit ring name {name!r}: lower-case letters, digits, '.', '_', '-'"
            )
        return KEY_PREFIX + name

    def _key_info(self, key: str) -> dict[str, Any]:
        status, body, _ = self.store.client.request(
            "GET", f"{self.transit}/keys/{q(key)}", what=f"read Transit key {key}"
        )
        if status == 404:
            raise NotFoundError(f"no Transit key {key}")
        return dict((body or {}).get("data") or {})

    def _post(self, path: str, body: Mapping[str, Any], what: str) -> dict[str, Any]:
        _s, resp, _ = self.store.client.request(
            "POST", f"{self.transit}/{path}", json=body, what=what
        )
        return dict((resp or {}).get("data") or {})

    def _read(self, name: str) -> tuple[dict[str, Any], int]:
        got = self.store._kv_read(f"{DOC_PREFIX}{q(name)}", what=f"read transit ring {name}")
        if got is None:
            raise NotFoundError(f"no transit-resident ring named {name!r}")
        return got

    def _write(self, name: str, doc: Mapping[str, Any], cas: int) -> int:
        return self.store._kv_cas(
            f"{DOC_PREFIX}{q(name)}",
            doc,
            cas=cas,
            what=f"write transit ring {name}",
            ours=lambda d: d == dict(doc),
        )

    @staticmethod
    def _ring(doc: Mapping[str, Any], revision: int, transit: Mapping[str, int]) -> TransitRing:
        versions = tuple(
            TransitVersion(**v) for v in sorted(doc["versions"], key=lambda v: v["number"])
        )
        return TransitRing(doc["name"], doc["key"], doc["type"], versions, revision, transit)

    # ---- reading ----------------------------------------------------------------------------

    def get(self, name: str) -> TransitRing:
        doc, revision = self._read(name)
        info = self._key_info(doc["key"])
        return self._ring(doc, revision, _transit_view(info))

    def list(self) -> list[str]:
        return sorted(
            k for k in self.store._kv_list(DOC_PREFIX, "list transit rings") if "/" not in k
        )

    # ---- changes ----------------------------------------------------------------------------

    def create(
        self, name: str, key_type: str = "aes256-gcm96", *, now: dt.datetime | None = None
    ) -> TransitRing:
        key = self.key_name(name)
        status, _b, _ = self.store.client.request(
            "GET", f"{self.transit}/keys/{q(key)}", what=f"read Transit key {key}"
        )
        if status != 404:
            raise ConflictError(f"Transit key {key} exists already")
        self._post(
            f"keys/{q(key)}",
            {"type": key_type, "exportable": False, "allow_plaintext_backup": False},
            f"create Transit key {key}",
        )
        doc = {
            "name": name,
            "key": key,
            "type": key_type,
            "versions": [TransitVersion(1, ACTIVE, _now(now)).to_dict()],
        }
        self._write(name, doc, 0)
        self._audit("create", name, 1, f"transit-resident {key_type} key {key}", now)
        return self.get(name)

    def _change(
        self, name: str, change: Callable[[TransitRing, dict[str, Any]], TransitRing]
    ) -> TransitRing:
        """Read, add versions Transit has that the document lacks, apply ``change``, write
        with check-and-set, then raise Transit's floors to what the states imply."""
        for _ in range(8):
            doc, revision = self._read(name)
            info = self._key_info(doc["key"])
            ring = _adopt(self._ring(doc, revision, _transit_view(info)), info)
            new = change(ring, info)
            body = {
                "name": ring.name,
                "key": ring.key,
                "type": ring.key_type,
                "versions": [v.to_dict() for v in new.versions],
            }
            try:
                revision = self._write(name, body, revision)
            except ConflictError:
                continue
            return self.sync(name)
        raise ConflictError(f"transit ring {name} kept changing underneath")

    def sync(self, name: str) -> TransitRing:
        """Raise Transit's min_decryption/min_encryption versions to the floors the states
        imply and trim below the decryption floor. Idempotent; floors never go down."""
        doc, revision = self._read(name)
        key = doc["key"]
        info = self._key_info(key)
        ring = self._ring(doc, revision, _transit_view(info))
        dec, enc = ring.floors()
        dec = max(dec, int(info.get("min_decryption_version") or 1))
        enc = max(enc, int(info.get("min_encryption_version") or 0), dec)
        if (dec, enc) != (
            int(info.get("min_decryption_version") or 1),
            int(info.get("min_encryption_version") or 0),
        ):
            self._post(
                f"keys/{q(key)}/config",
                {"min_decryption_version": dec, "min_encryption_version": enc},
                f"raise the version floors of {key}",
            )
        if dec > int(info.get("min_available_version") or 0) and dec > 1:
            self._post(
                f"keys/{q(key)}/trim",
                {"min_available_version": dec},
                f"trim {key} below v{dec}",
            )
        return self._ring(doc, revision, _transit_view(self._key_info(key)))

    def rotate(self, name: str, *, now: dt.datetime | None = None) -> TransitRing:
        doc, _rev = self._read(name)
        before = max(int(v["number"]) for v in doc["versions"])
        self._post(f"keys/{q(doc['key'])}/rotate", {}, f"rotate {doc['key']}")
        stamp = _now(now)

        def change(ring: TransitRing, _info: dict[str, Any]) -> TransitRing:
            # _change adopts the new Transit version as active; date it by keylife's clock
            # (the one the cryptoperiod is counted on), not Vault's.
            return _set(
                ring,
                lambda v: v.number > before and v.state == ACTIVE,
                lambda v: dataclasses.replace(v, created=stamp),
            )

        ring = self._change(name, change)
        self._audit("rotate", name, ring.latest, "new Transit key version", now)
        return ring

    def deactivate(self, name: str, version: int, *, now: dt.datetime | None = None) -> TransitRing:
        """``version`` and every older active version stop encrypting (still decrypt)."""

        def change(ring: TransitRing, _info: dict[str, Any]) -> TransitRing:
            ring.version(version)
            if version >= ring.latest:
                raise KeylifeError(
                    f"v{version} is the newest version of {name}: rotate before deactivating it"
                )
            return _set(
                ring,
                lambda v: v.number <= version and v.state == ACTIVE,
                lambda v: TransitVersion(
                    v.number, DEACTIVATED, v.created, deactivated=_now(now), reason=v.reason
                ),
            )

        ring = self._change(name, change)
        self._audit("deactivate", name, version, f"v{version} and older stop encrypting", now)
        return ring

    def compromise(
        self, name: str, version: int, *, now: dt.datetime | None = None, reason: str = ""
    ) -> TransitRing:
        """``version`` compromised: Transit refuses to decrypt it and trims it (and every
        older version, recorded as destroyed). The newest version is rotated first."""
        return self._remove(name, version, COMPROMISED, now, reason)

    def destroy(
        self, name: str, version: int, *, now: dt.datetime | None = None, reason: str = ""
    ) -> TransitRing:
        """``version`` and every older version destroyed: trimmed from Transit."""
        ring = self.get(name)
        if version >= ring.latest:
            raise KeylifeError(f"v{version} is the newest version of {name}: rotate first")
        return self._remove(name, version, DESTROYED, now, reason)

    def _remove(
        self, name: str, version: int, state: str, now: dt.datetime | None, reason: str
    ) -> TransitRing:
        ring = self.get(name)
        ring.version(version)
        if version >= ring.latest:
            ring = self.rotate(name, now=now)
        stamp = _now(now)

        def mark(v: TransitVersion) -> TransitVersion:
            if v.number == version:
                return TransitVersion(
                    v.number,
                    state,
                    v.created,
                    v.deactivated or stamp,
                    stamp if state == COMPROMISED else v.compromised,
                    stamp if state == DESTROYED else v.destroyed,
                    reason,
                )
            return TransitVersion(
                v.number,
                DESTROYED,
                v.created,
                v.deactivated or stamp,
                v.compromised,
                stamp,
                f"below the decryption floor v{version + 1}",
            )

        def change(ring: TransitRing, _info: dict[str, Any]) -> TransitRing:
            return _set(
                ring,
                lambda v: v.number == version or (v.number < version and v.state not in _GONE),
                mark,
            )

        ring = self._change(name, change)
        action = "compromise" if state == COMPROMISED else "destroy"
        self._audit(
            action,
            name,
            version,
            (reason or state) + f"; Transit decrypts only v{version + 1} and newer",
            now,
        )
        return ring


def _transit_view(info: Mapping[str, Any]) -> dict[str, int]:
    return {
        k: int(info.get(k) or 0)
        for k in (
            "latest_version",
            "min_decryption_version",
            "min_encryption_version",
            "min_available_version",
        )
    }


def _adopt(ring: TransitRing, info: Mapping[str, Any]) -> TransitRing:
    """Versions Transit has but the document lacks (a rotation whose document write was cut
    short) are added as active, dated from Transit."""
    known = {v.number for v in ring.versions}
    keys = info.get("keys") or {}
    extra = []
    for number in range(1, int(info.get("latest_version") or 0) + 1):
        if number not in known:
            created = keys.get(str(number))
            when = (
                dt.datetime.fromtimestamp(int(created), dt.UTC).isoformat()
                if isinstance(created, int)
                else _now(None)
            )
            extra.append(TransitVersion(number, ACTIVE, when))
    if not extra:
        return ring
    versions = tuple(sorted((*ring.versions, *extra), key=lambda v: v.number))
    return TransitRing(ring.name, ring.key, ring.key_type, versions, ring.revision, ring.transit)


def _set(
    ring: TransitRing,
    which: Callable[[TransitVersion], bool],
    how: Callable[[TransitVersion], TransitVersion],
) -> TransitRing:
    versions = tuple(how(v) if which(v) else v for v in ring.versions)
    return TransitRing(ring.name, ring.key, ring.key_type, versions, ring.revision, ring.transit)


# ---- scheduling: what `keylife rotate` does for transit-resident rings ----------------------


@dataclass(frozen=True)
class TransitStep:
    kind: str  # rotate | deactivate | destroy
    name: str
    version: int | None
    reason: str
    due: dt.datetime


def plan_transit(
    ring: TransitRing,
    cryptoperiod: dt.timedelta,
    lead_time: dt.timedelta,
    destroy_after: dt.timedelta | None,
    now: dt.datetime,
) -> tuple[list[TransitStep], dt.datetime | None]:
    """Pure: steps due for a transit-resident ring at ``now`` (and when the next falls due).

    The newest version is rotated ``lead_time`` before the end of its cryptoperiod (counted
    from its creation); older versions still active are deactivated at once (superseded: they
    keep decrypting); with ``destroy_after``, deactivated versions are destroyed (trimmed)
    that long after their deactivation.
    """
    steps: list[TransitStep] = []
    future: list[dt.datetime] = []
    latest = ring.version(ring.latest)
    if latest.state == ACTIVE:
        due = dt.datetime.fromisoformat(latest.created) + cryptoperiod - lead_time
        if due <= now:
            steps.append(TransitStep("rotate", ring.name, latest.number, "cryptoperiod ends", due))
        else:
            future.append(due)
    older = [v.number for v in ring.versions if v.state == ACTIVE and v.number < ring.latest]
    if older:
        steps.append(
            TransitStep("deactivate", ring.name, max(older), "superseded by a newer version", now)
        )
    if destroy_after is not None:
        expired = []
        for v in ring.versions:
            if v.state == DEACTIVATED and v.deactivated and v.number < ring.latest:
                when = dt.datetime.fromisoformat(v.deactivated) + destroy_after
                if when <= now:
                    expired.append(v.number)
                else:
                    future.append(when)
        if expired:
            steps.append(
                TransitStep("destroy", ring.name, max(expired), "retention period ended", now)
            )
    return steps, min(future, default=None)


# ---- rewrapping stored ciphertexts --------------------------------------------------------------


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


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="ascii").splitlines()


def plan_rewrap(keys: TransitKeys, name: str, path: str | Path) -> RewrapPlan:
    """The dry run of :func:`rewrap_file`: which ciphertexts still sit on which older version
    (they become undecryptable once that version is compromised, destroyed or trimmed)."""
    ring = keys.get(name)
    p = Path(path)
    by_version: dict[int, list[int]] = {}
    invalid: list[int] = []
    unusable: list[int] = []
    floor = ring.transit.get("min_decryption_version", 1) or 1
    lines = _lines(p)
    for i, line in enumerate(lines, 1):
        m = _CT.match(line.strip())
        if not m:
            if line.strip():
                invalid.append(i)
            continue
        n = int(m.group(1))
        by_version.setdefault(n, []).append(i)
        if n < floor:
            unusable.append(i)
    states = {v.number: v.state for v in ring.versions}
    return RewrapPlan(str(p), ring.latest, len(lines), by_version, states, unusable, invalid)


def _checkpoint_path(path: Path) -> Path:
    return path.with_name(path.name + ".rewrap-checkpoint")


def _replace_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


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


def rewrap_file(
    keys: TransitKeys,
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
    ring = keys.get(name)
    target = ring.latest
    p = Path(path)
    lines = _lines(p)
    cp = _checkpoint_path(p)
    start = 0
    if cp.exists():
        try:
            saved = json.loads(cp.read_text())
            if saved.get("target_version") == target:
                start = min(int(saved.get("next_line", 0)), len(lines))
        except (ValueError, OSError):
            start = 0
    rewrapped = batches = 0
    i = start
    while i < len(lines):
        todo: list[int] = []
        j = i
        while j < len(lines) and len(todo) < batch_size:
            m = _CT.match(lines[j].strip())
            if m and int(m.group(1)) < target:
                todo.append(j)
            j += 1
        if todo:
            data = keys._post(
                f"rewrap/{q(ring.key)}",
                {
                    "key_version": target,
                    "batch_input": [{"ciphertext": lines[k].strip()} for k in todo],
                },
                f"rewrap {len(todo)} ciphertexts with {ring.key}",
            )
            results = data.get("batch_results") or []
            if len(results) != len(todo):
                raise StoreError(f"Transit rewrap of {ring.key} returned {len(results)} results")
            for k, res in zip(todo, results, strict=True):
                ct = res.get("ciphertext") if isinstance(res, dict) else None
                if not isinstance(ct, str) or not _CT.match(ct):
                    err = res.get("error", "no ciphertext") if isinstance(res, dict) else "?"
                    raise StoreError(f"{p} line {k + 1}: Transit could not rewrap it: {err}")
                lines[k] = ct
            _replace_atomically(p, "".join(line + "\n" for line in lines))
            rewrapped += len(todo)
            batches += 1
        cp.write_text(json.dumps({"target_version": target, "next_line": j}))
        i = j
        if progress is not None:
            progress(i, len(lines))
    with contextlib.suppress(FileNotFoundError):
        cp.unlink()
    return RewrapResult(target, rewrapped, batches, start)
