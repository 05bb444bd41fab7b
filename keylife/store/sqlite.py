"""The embedded store: one SQLite file, material sealed under a master key kept elsewhere.

Every write is one ``BEGIN IMMEDIATE`` transaction (WAL journal), so concurrent writers from
several processes are serialised by SQLite and a torn write is impossible: a writer killed at
any point leaves either the old or the new state.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..audit import GENESIS, AuditEntry, AuditRecord, chain, decode_audit
from ..errors import (
    ConflictError,
    IntegrityError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from ..files import private_dir
from ..lifecycle import Ring, decode_ring, ring_from_stored, ring_to_dict
from ..material import KeyMaterial
from ..sealing import MasterKey, MasterKeyFile, Sealer, associated_data, new_store_id
from ..specs import KeySpec
from . import sqlite_counts, sqlite_leases, sqlite_schedule
from .base import Lease
from .schedule import QuietRing, RingsToPlan
from .sqlite_deletion import delete_ring, refuse_deleted, remember_deleted
from .sqlite_identity import INIT_STORE_ID, reseal_all

__all__ = ["MasterKeyFile", "SqliteStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rings (
    name TEXT PRIMARY KEY, revision INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS material (
    ring TEXT NOT NULL, version INTEGER NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (ring, version));
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires TEXT NOT NULL);
"""


def _revision(value: object) -> int:
    # A tampered revision that is not a number fails the ring's next check-and-set write.
    return value if isinstance(value, int) else -1


def _refuse_dangling(path: Path) -> None:
    if path.is_symlink() and not path.exists():
        raise StoreUnavailableError(
            f"the store path {path} is a symbolic link to {os.readlink(path)}, which does not "
            "exist; remove the link or point --store at the real file"
        )


class SqliteStore:
    """The embedded :class:`~keylife.store.base.KeyStore`."""

    def __init__(self, db_path: Path, key_file: MasterKeyFile) -> None:
        self.db_path = Path(db_path)
        self.url = f"sqlite://{self.db_path}"
        self._key_file = key_file
        self._lock = threading.RLock()
        _refuse_dangling(self.db_path)
        if not self.db_path.exists():
            raise StoreUnavailableError(
                f"no keylife store at {self.db_path}; run `keylife init` first"
            )
        self._db = self._connect(self.db_path)
        try:
            self._master = Sealer(self._resolve_master_key(), self._meta("store_id"))
        except BaseException:  # not a store, wrong master key, ...: close what was opened
            self._db.close()
            raise

    # ---- lifecycle --------------------------------------------------------------------------

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open {path}: {exc}") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=60000")
        except BaseException as exc:  # not a database, locked, ...: never leave it open
            db.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreUnavailableError(f"cannot open {path}: {exc}") from exc
            raise
        return db

    @classmethod
    def init(cls, db_path: Path, key_file: MasterKeyFile) -> SqliteStore:
        """Create the database and, if absent, the master key. Idempotent."""
        db_path = Path(db_path)
        _refuse_dangling(db_path)
        if not db_path.parent.is_dir():  # an existing one (or a link to one) is the operator's
            private_dir(db_path.parent, error=StoreUnavailableError)
        if key_file.env_value is None and not key_file.path.exists():
            if db_path.exists() and cls._has_key_id(db_path):
                raise StoreError(
                    f"{db_path} exists but its master key {key_file.path} is missing; "
                    "restore the key file or set KEYLIFE_MASTER_KEY_FILE"
                )
            key_file.write(MasterKey.generate())
        key = key_file.load()
        if not db_path.exists():
            try:
                fd = os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except OSError as exc:
                raise StoreUnavailableError(
                    f"cannot create {db_path}: {exc.strerror or exc}"
                ) from exc
            os.close(fd)
        db = cls._connect(db_path)
        try:
            db.execute("BEGIN IMMEDIATE")
            for stmt in SCHEMA.strip().split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('master_key_id', ?)", (key.check_value,))
            db.execute("INSERT OR IGNORE INTO meta VALUES ('audit_count', '0')")
            db.execute("INSERT OR IGNORE INTO meta VALUES ('audit_head', ?)", (GENESIS,))
            db.execute(INIT_STORE_ID, (new_store_id(),))  # old-format blobs wait for rekey
            db.execute("COMMIT")
        finally:
            db.close()
        for suffix in ("-wal", "-shm"):
            side = db_path.with_name(db_path.name + suffix)
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.lstat(side).st_mode):  # never chmod through a link
                    os.chmod(side, 0o600)
        return cls(db_path, key_file)

    @staticmethod
    def _has_key_id(db_path: Path) -> bool:
        try:
            db = sqlite3.connect(db_path)
        except sqlite3.Error:
            return False
        try:
            row = db.execute("SELECT value FROM meta WHERE key='master_key_id'").fetchone()
        except sqlite3.Error:
            return False
        finally:
            db.close()
        return row is not None

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _resolve_master_key(self) -> MasterKey:
        try:
            expected = self._meta("master_key_id")
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"{self.db_path} is not a keylife store: {exc}") from exc
        key = self._key_for(expected)
        if self._key_file.env_value is None and self._key_file.pending.exists():
            # A leftover <key>.new is either from a rekey that never committed, or from one in
            # flight right now. rekey() holds the write lock from writing that file until its
            # commit, so decide under the lock, or we could delete a key about to be committed.
            with self._write():
                expected = self._meta("master_key_id")
                key = self._key_for(expected)
                stale = self._key_file.load_pending()
                if stale is not None and stale.check_value != expected:
                    self._key_file.pending.unlink(missing_ok=True)
        return key

    def _key_for(self, expected: str | None) -> MasterKey:
        """The master key whose check value is ``expected`` (the database's)."""
        key = self._key_file.load()
        if expected is None or key.check_value == expected:
            return key
        pending = self._key_file.load_pending()
        if pending is not None and pending.check_value == expected:
            # A rekey committed but the key file was not yet swapped: finish it.
            with contextlib.suppress(FileNotFoundError):  # the rekeying process swapped it
                os.replace(self._key_file.pending, self._key_file.path)
            return pending
        key = self._key_file.load()  # the rekeying process may have swapped it just now
        if key.check_value == expected:
            return key
        raise IntegrityError(
            f"the master key does not match {self.db_path} (key check value differs); "
            "point KEYLIFE_MASTER_KEY_FILE at the right key"
        )

    def _current_key(self) -> Sealer:
        """The master key the database is sealed under now: another process may have rekeyed
        it (or bound it to a store id) since this store was opened. Call with the lock held."""
        expected = self._meta("master_key_id")
        store_id = self._meta("store_id")
        if (
            expected is not None and expected != self._master.check_value
        ) or store_id != self._master.store_id:
            self._master = Sealer(self._key_for(expected), store_id)
        return self._master

    @property
    def store_id(self) -> str | None:  # None: old-format blobs, until rekey binds them
        return self._master.store_id

    @property
    def master_key_check_value(self) -> str:
        """The master key's public check value (identifies it, reveals nothing)."""
        return self._master.check_value

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"cannot lock {self.db_path}: {exc}") from exc
            try:
                yield self._db
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StoreError(f"write to {self.db_path} failed: {exc}") from exc
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"commit to {self.db_path} failed: {exc}") from exc

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; sqlite3 errors become StoreError."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreError(f"read from {self.db_path} failed: {exc}") from exc

    # ---- rings ------------------------------------------------------------------------------

    def list_ring_names(self) -> list[str]:
        with self._reading():
            return [r[0] for r in self._db.execute("SELECT name FROM rings ORDER BY name")]

    def load_ring(self, name: str) -> Ring | None:
        with self._reading():
            row = self._db.execute(
                "SELECT doc, revision FROM rings WHERE name=?", (name,)
            ).fetchone()
        return None if row is None else ring_from_stored(row[0], _revision(row[1]), name)

    def load_rings(self) -> list[Ring]:
        with self._reading():
            rows = self._db.execute(
                "SELECT name, doc, revision FROM rings ORDER BY name"
            ).fetchall()
        # One bad row must not take the others down: it comes back as a damaged ring.
        return [decode_ring(doc, _revision(rev), str(name)) for name, doc, rev in rows]

    def commit(
        self,
        ring: Ring,
        *,
        expected_revision: int,
        materials: Mapping[int, KeyMaterial] | None = None,
        destroy: Sequence[int] = (),
        audit: Sequence[AuditEntry] = (),
    ) -> Ring:
        doc = json.dumps(ring_to_dict(ring), separators=(",", ":"))
        new_revision = expected_revision + 1
        with self._write() as db:
            row = db.execute("SELECT revision FROM rings WHERE name=?", (ring.name,)).fetchone()
            current = 0 if row is None else int(row[0])
            if current != expected_revision:
                raise ConflictError(
                    f"ring {ring.name} changed underneath (revision {current}, expected "
                    f"{expected_revision})"
                )
            master = self._current_key() if materials else self._master
            for number, material in (materials or {}).items():
                blob = master.seal(material.reveal(), associated_data(ring.name, number))
                db.execute(
                    "INSERT OR REPLACE INTO material VALUES (?, ?, ?)", (ring.name, number, blob)
                )
            for number in destroy:
                db.execute("DELETE FROM material WHERE ring=? AND version=?", (ring.name, number))
            if row is None:
                refuse_deleted(db, ring.name)  # a deleted ring's name is never reused
                db.execute("INSERT INTO rings VALUES (?, ?, ?)", (ring.name, new_revision, doc))
            else:
                db.execute(
                    "UPDATE rings SET revision=?, doc=? WHERE name=?",
                    (new_revision, doc, ring.name),
                )
            self._append_locked(db, audit)
        from dataclasses import replace

        return replace(ring, revision=new_revision)

    def delete_ring(
        self, name: str, *, expected_revision: int, audit: Sequence[AuditEntry] = ()
    ) -> None:
        """Remove ring ``name`` and append ``audit`` in one transaction (check-and-set on its
        revision; :mod:`keylife.store.sqlite_deletion`)."""
        with self._write() as db:
            delete_ring(db, name, expected_revision)
            self._append_locked(db, audit)

    def import_snapshot(
        self,
        rings: Sequence[Ring],
        materials: Mapping[str, Mapping[int, KeyMaterial]],
        audit: Sequence[AuditEntry],
        *,
        check: Callable[[], None] | None = None,
        counts: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        """Write a validated snapshot (and its message ``counts``) into this EMPTY store in one
        transaction (restore). ``check`` runs inside it, before the commit: if it (or anything
        else) raises, nothing at all is written, so a refused restore can simply be retried."""
        with self._write() as db:
            if db.execute("SELECT 1 FROM rings UNION SELECT 1 FROM audit LIMIT 1").fetchone():
                raise ConflictError(f"{self.db_path} is not empty; restore needs an empty store")
            master = self._current_key()
            for ring in rings:
                for number, material in materials.get(ring.name, {}).items():
                    blob = master.seal(material.reveal(), associated_data(ring.name, number))
                    db.execute("INSERT INTO material VALUES (?, ?, ?)", (ring.name, number, blob))
                doc = json.dumps(ring_to_dict(ring), separators=(",", ":"))
                db.execute("INSERT INTO rings VALUES (?, ?, ?)", (ring.name, 1, doc))
            self._append_locked(db, audit)
            sqlite_counts.add(db, counts or {})
            if check is not None:
                check()

    # ---- large stores: quiet records and paging (keylife.store.sqlite_schedule) -------------

    def rings_to_plan(self, digest: str, now: dt.datetime) -> RingsToPlan:
        return sqlite_schedule.rings_to_plan(self._reading, digest, now)

    def remember_quiet(self, quiet: Sequence[QuietRing]) -> int:
        with self._write() as db:
            return sqlite_schedule.remember_quiet(db, quiet)

    def iter_rings(self, *, prefix: str = "", limit: int | None = None) -> Iterator[Ring]:
        return sqlite_schedule.iter_rings(self._reading, prefix=prefix, limit=limit)

    # ---- material ---------------------------------------------------------------------------

    def get_material(self, ring: str, version: int, spec: KeySpec) -> KeyMaterial:
        with self._reading():
            row = self._db.execute(
                "SELECT blob FROM material WHERE ring=? AND version=?", (ring, version)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no material for {ring} v{version} (destroyed or never stored)")
        ad = associated_data(ring, version)
        try:
            plain = self._master.open(bytes(row[0]), ad, what=f"{ring} v{version}")
        except IntegrityError:
            with self._reading():
                seen = self._master
                master = self._current_key()
            if master is seen:
                raise
            plain = master.open(bytes(row[0]), ad, what=f"{ring} v{version}")
        return KeyMaterial(plain, spec)

    def has_material(self, ring: str, version: int) -> bool:
        with self._reading():
            row = self._db.execute(
                "SELECT 1 FROM material WHERE ring=? AND version=?", (ring, version)
            ).fetchone()
        return row is not None

    def material_items(self) -> list[tuple[str, int, bytes]]:
        """Every (ring, version, plaintext) — for backup and migration only."""
        with self._reading():
            rows = self._db.execute("SELECT ring, version, blob FROM material").fetchall()
        return [
            (r, v, self._master.open(bytes(b), associated_data(r, v), what=f"{r} v{v}"))
            for r, v, b in rows
        ]

    # ---- audit ------------------------------------------------------------------------------

    def _append_locked(self, db: sqlite3.Connection, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        count = int(db.execute("SELECT value FROM meta WHERE key='audit_count'").fetchone()[0])
        head = str(db.execute("SELECT value FROM meta WHERE key='audit_head'").fetchone()[0])
        for entry in entries:
            count += 1
            record = chain(head, count, entry)
            db.execute(
                "INSERT INTO audit VALUES (?, ?)",
                (count, json.dumps(record.to_dict(), separators=(",", ":"))),
            )
            head = record.hash
        db.execute("UPDATE meta SET value=? WHERE key='audit_count'", (str(count),))
        db.execute("UPDATE meta SET value=? WHERE key='audit_head'", (head,))
        remember_deleted(db, entries)  # restore and migrate carry the log, so the tombstones

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        with self._write() as db:
            self._append_locked(db, entries)

    def read_audit(self) -> list[AuditRecord]:
        with self._reading():
            rows = self._db.execute("SELECT seq, doc FROM audit ORDER BY rowid").fetchall()
        # A bad row comes back damaged; verify_chain reports it by its sequence number.
        return [decode_audit(doc, int(seq)) for seq, doc in rows]

    def audit_head(self) -> tuple[int, str]:
        with self._reading():
            return int(self._meta("audit_count") or 0), self._meta("audit_head") or GENESIS

    # ---- encryption counts (keylife.store.sqlite_counts) --------------------------------------

    def add_encryptions(self, counts: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        with self._write() as db:
            return sqlite_counts.add(db, counts)

    def encryption_counts(self, ring: str) -> dict[int, int]:
        with self._reading() as db:
            return sqlite_counts.read(db, ring)

    # ---- leases -----------------------------------------------------------------------------

    def acquire_lease(
        self,
        name: str,
        holder: str,
        ttl: dt.timedelta,
        now: dt.datetime,
        *,
        takeover_from: str | None = None,
    ) -> Lease | None:
        with self._write() as db:
            return sqlite_leases.acquire(db, name, holder, now + ttl, now, takeover_from)

    def read_lease(self, name: str) -> Lease | None:
        with self._reading():
            return sqlite_leases.read(self._db, name)

    def release_lease(self, name: str, holder: str) -> None:
        with self._write() as db:
            sqlite_leases.release(db, name, holder)

    # ---- master key rotation ----------------------------------------------------------------

    def rekey(self) -> str:
        """Replace the master key and re-seal every blob in one transaction.

        Crash-safe: the new key is written to ``<key>.new`` first; the transaction records its
        check value; only then is the key file swapped. Opening the store after a crash at any
        point finds the key that matches the database. Returns the new key check value.
        """
        if self._key_file.env_value:
            raise StoreError(
                "the master key comes from KEYLIFE_MASTER_KEY; rekey needs a key file "
                "(KEYLIFE_MASTER_KEY_FILE)"
            )
        new = MasterKey.generate()
        with self._write() as db:
            # Written under the write lock: an opener never mistakes it for a stale leftover.
            self._key_file.write(new, pending=True)
            sealer = reseal_all(db, self._current_key(), new)  # bound to the store id
            db.execute("UPDATE meta SET value=? WHERE key='master_key_id'", (new.check_value,))
        try:
            os.replace(self._key_file.pending, self._key_file.path)
        except FileNotFoundError:
            # Another process opening the store finished the swap for us; make sure.
            if self._key_file.load().check_value != new.check_value:
                raise StoreError(
                    f"rekey committed but {self._key_file.path} does not hold the new key"
                ) from None
        self._master = sealer
        return new.check_value
