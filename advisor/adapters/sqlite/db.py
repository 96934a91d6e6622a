"""The SQLite database file: one connection (WAL) guarded by a lock, its schema kept by yoyo-migrations
(advisor.adapters.sql.migrations, the files of migrations/).

Every store (advisor.adapters.sql) shares one `SqliteDatabase` in the server. A second process (the `advisor
tokens` commands) opens its own connection to the same file; WAL lets it write while the server reads.

The write-ahead log is checkpointed by a thread of its own (`Checkpoints`), not by SQLite inside whichever commit
crosses 1,000 pages: a recommendation adds about 50 KiB to the log, so one in about 80 paid for the checkpoint
(2 ms of CPU, 4-10 ms of wall time), most of a quiet RecommendTarget's p99 (benchmarks/bench_api.py).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from advisor.adapters.sql.database import Connection, StorageError
from advisor.adapters.sql.migrations import migrate
from advisor.adapters.sql.store import SqlStore

# Databases from before yoyo versioned themselves in `meta` (1 to 4); yoyo's first migration sets 5, which those
# advisors refuse. A version 1-3 database is brought to 4 here, once, before yoyo takes over.
YOYO_VERSION = 5
CHECKPOINT_EVERY_S = 1.0
log = logging.getLogger("advisor.storage")
_LEGACY_UPGRADES = {
    # Version 1 had no revision column: every recommendation starts at revision 0.
    1: ("ALTER TABLE recommendations ADD COLUMN revision INTEGER NOT NULL DEFAULT 0",),
    # Version 2 allowed one execution per move (no retry): the table is rebuilt with attempts, and "pending" is now
    # called "proposed".
    2: (
        "ALTER TABLE migrations RENAME TO migrations_v2",
        "DROP INDEX IF EXISTS migrations_by_time",
        """CREATE TABLE migrations (
            operation_id TEXT PRIMARY KEY, recommendation_id TEXT NOT NULL, move_index INTEGER NOT NULL DEFAULT 0,
            attempt INTEGER NOT NULL DEFAULT 1, phase TEXT NOT NULL, created_at_s REAL NOT NULL, body TEXT NOT NULL,
            UNIQUE (recommendation_id, move_index, attempt))""",
        "INSERT INTO migrations (operation_id, recommendation_id, move_index, attempt, phase, created_at_s, body) "
        "SELECT operation_id, recommendation_id, move_index, 1, phase, created_at_s, body FROM migrations_v2",
        "DROP TABLE migrations_v2",
        "CREATE INDEX migrations_by_time ON migrations (created_at_s DESC, operation_id DESC)",
        "UPDATE recommendations SET state = 'proposed' WHERE state = 'pending'",
    ),
    # Version 3 did not index the VMs a recommendation moves.
    3: (
        "CREATE TABLE IF NOT EXISTS recommendation_vms (vm_id TEXT NOT NULL, recommendation_id TEXT NOT NULL, "
        "PRIMARY KEY (vm_id, recommendation_id))",
        "INSERT OR IGNORE INTO recommendation_vms (vm_id, recommendation_id) "
        "SELECT json_extract(m.value, '$.vm_id'), r.id FROM recommendations r, json_each(r.body, '$.moves') m",
    ),
}


class Checkpoints:
    """Checkpoints the write-ahead log every `every_s` on a connection and thread of their own. PASSIVE: it never
    waits for a reader or writer, and SQLite's C code runs without the interpreter lock, so it takes the other core
    rather than a request's time."""

    def __init__(self, path: Path, every_s: float) -> None:
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA busy_timeout=5000")
        self._every_s = every_s
        self._stop = threading.Event()
        self._failing = False
        self.done = 0  # checkpoints completed
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            self.checkpoint()

    def checkpoint(self) -> None:
        try:
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as error:  # the log grows until a checkpoint succeeds: say so once, not every second
            if not self._failing:
                log.warning("checkpoint of the write-ahead log failed", extra={"error": str(error)})
            self._failing = True
        else:
            self._failing, self.done = False, self.done + 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._connection.close()


class SqliteDatabase:
    integrity_error = sqlite3.IntegrityError

    def __init__(self, path: Path, *, checkpoint_every_s: float | None = CHECKPOINT_EVERY_S) -> None:
        """`checkpoint_every_s` None: the log is never checkpointed while open (tests)."""
        self.path = path
        self.lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self.connection.execute("PRAGMA busy_timeout=5000")
            self.connection.execute("PRAGMA wal_autocheckpoint=0")  # `Checkpoints` does it
            self._upgrade_legacy()
            # Quoted: yoyo hands the path to SQLite as a URI (file:PATH?cache=shared), which decodes it.
            migrate(f"sqlite:///{quote(str(path.resolve()))}", "advisor.adapters.sqlite", str(path))
            # The token check of every call reads here, never waiting behind a store's transaction on `lock`.
            self._checking = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._checking.execute("PRAGMA busy_timeout=5000")
            self._checking_lock = threading.Lock()
            self._checkpoints = None if checkpoint_every_s is None else Checkpoints(path, checkpoint_every_s)
        except sqlite3.DatabaseError as error:
            raise StorageError(f"{path}: cannot use this database ({error})") from None
        except OSError as error:
            raise StorageError(f"{path}: cannot open ({error.strerror or error})") from None

    def _legacy_version(self) -> int | None:
        has_meta = self.connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        if not has_meta:
            return None
        row = self.connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return None if row is None else int(row[0])

    def _upgrade_legacy(self) -> None:
        version = self._legacy_version()
        if version is None or version in (4, YOYO_VERSION):
            return
        if version not in _LEGACY_UPGRADES:
            raise StorageError(f"{self.path}: schema version {version}, this advisor knows 1 to {YOYO_VERSION}")
        with self.transaction() as db:
            for step in range(version, 4):
                for statement in _LEGACY_UPGRADES[step]:
                    db.execute(statement)
            db.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            self.connection.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            yield self.connection

    @contextmanager
    def checking(self) -> Iterator[sqlite3.Connection]:
        with self._checking_lock:
            yield self._checking

    def data_version(self, db: Connection) -> int:
        """Changes when another connection commits: the CLI created or revoked a token; on `checking`'s connection,
        also whenever this database's own connection commits."""
        return int(db.execute("PRAGMA data_version").fetchone()[0])

    def checkpoints_done(self) -> int:
        return 0 if self._checkpoints is None else self._checkpoints.done

    def size_bytes(self) -> int:
        """The database with its write-ahead log, as it sits on disk."""
        return sum(p.stat().st_size for p in (self.path, self.path.with_name(self.path.name + "-wal"))
                   if p.exists())

    def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.close()
        with self.lock, self._checking_lock:
            self.connection.close()
            self._checking.close()


class SqliteStore(SqlStore):
    """The store on an SQLite file, opened from its path (as tests and tools do) or on a shared database."""

    def __init__(self, database: SqliteDatabase | Path) -> None:
        self.database: SqliteDatabase = database if isinstance(database, SqliteDatabase) else SqliteDatabase(database)
        super().__init__(self.database)
        self.path = self.database.path
