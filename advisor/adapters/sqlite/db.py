"""The database file: one connection (WAL) guarded by a lock, its schema and its migrations.

Every store of this package (inventory, recommendations, migrations, tokens, audit, recent samples) shares one
`Database` in the server. A second process (the `advisor tokens` commands) opens its own connection to the same
file; WAL lets it write while the server reads.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from advisor.domain.errors import SetupError

SCHEMA_VERSION = 4
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hosts (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vms (id TEXT PRIMARY KEY, host_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recommendations (
    id TEXT PRIMARY KEY,
    created_at_s REAL NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS recommendations_by_time ON recommendations (created_at_s DESC, id DESC);
-- Which VMs each recommendation moves: a new proposal finds the open ones moving the same VMs.
CREATE TABLE IF NOT EXISTS recommendation_vms (
    vm_id TEXT NOT NULL,
    recommendation_id TEXT NOT NULL,
    PRIMARY KEY (vm_id, recommendation_id)
);
-- The full list of hosts assessed for each move (the recommendation keeps a summary): codec.pack_assessments.
CREATE TABLE IF NOT EXISTS assessments (
    recommendation_id TEXT NOT NULL,
    move_index INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (recommendation_id, move_index)
);
CREATE TABLE IF NOT EXISTS migrations (
    operation_id TEXT PRIMARY KEY,
    -- one execution per attempt of a move, enforced here so that a repeated request never starts a second
    -- migration; a retry of a failed move is the next attempt
    recommendation_id TEXT NOT NULL,
    move_index INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 1,
    phase TEXT NOT NULL,
    created_at_s REAL NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (recommendation_id, move_index, attempt)
);
CREATE INDEX IF NOT EXISTS migrations_by_time ON migrations (created_at_s DESC, operation_id DESC);
-- Automation level and threshold per cluster, as set by an admin (clusters not listed use the settings).
CREATE TABLE IF NOT EXISTS automation (cluster TEXT PRIMARY KEY, body TEXT NOT NULL);
-- Every migration that ended, with what its prediction was made from: the training data the advisor gathers.
CREATE TABLE IF NOT EXISTS outcomes (
    operation_id TEXT PRIMARY KEY,
    finished_at_s REAL NOT NULL,
    body TEXT NOT NULL
);
-- Bearer tokens: only a hash of each is kept.
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at_s REAL NOT NULL,
    revoked_at_s REAL
);
-- Who did what, when, from where, and how it ended. Rows are never changed; old ones go by retention only.
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_s REAL NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    peer TEXT NOT NULL,
    call TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_is_append_only BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
-- Recent samples, saved so that a restarted advisor still knows what its VMs were doing.
CREATE TABLE IF NOT EXISTS samples (
    kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    times BLOB NOT NULL,
    vals BLOB NOT NULL,
    PRIMARY KEY (kind, entity_id)
);
-- One-time login codes of the web page (`advisor ui`): only a hash of each; a code opens one session, once,
-- for the token it names (by the token's hash: a token made again under the same name is another token).
CREATE TABLE IF NOT EXISTS web_login_codes (
    hash TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at_s REAL NOT NULL,
    expires_at_s REAL NOT NULL,
    used_at_s REAL
);
-- Sessions of the web page: only a hash of each cookie's secret; a session lives while its token does.
CREATE TABLE IF NOT EXISTS web_sessions (
    hash TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at_s REAL NOT NULL,
    expires_at_s REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS web_sessions_by_token ON web_sessions (token_hash);
-- Each guest's last known definition (libvirt's domain XML), read while its host was up: what a restart elsewhere
-- defines and starts when that host dies.
CREATE TABLE IF NOT EXISTS definitions (
    vm_id TEXT PRIMARY KEY,
    host_id TEXT NOT NULL,
    persistent INTEGER NOT NULL,
    xml TEXT NOT NULL,
    read_at_s REAL NOT NULL
);
"""


_V3_MIGRATIONS = (
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
)
# Version 3 did not index the VMs a recommendation moves.
_V4_MIGRATIONS = (
    "INSERT OR IGNORE INTO recommendation_vms (vm_id, recommendation_id) "
    "SELECT json_extract(m.value, '$.vm_id'), r.id FROM recommendations r, json_each(r.body, '$.moves') m",
)


class StorageError(SetupError, RuntimeError):
    """The database cannot be opened or is of a schema this version does not know."""


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self.connection.execute("PRAGMA busy_timeout=5000")
            version = self._version()
            self.connection.executescript(SCHEMA)
            self._migrate(version)
        except sqlite3.DatabaseError as error:
            raise StorageError(f"{path}: cannot use this database ({error})") from None
        except OSError as error:
            raise StorageError(f"{path}: cannot open ({error.strerror or error})") from None

    def _version(self) -> int | None:
        has_meta = self.connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        if not has_meta:
            return None
        row = self.connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return None if row is None else int(row[0])

    def _migrate(self, version: int | None) -> None:
        if version is None:
            self.connection.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return
        if version not in (1, 2, 3, SCHEMA_VERSION):
            raise StorageError(f"{self.path}: schema version {version}, this advisor knows {SCHEMA_VERSION}")
        with self.transaction() as db:
            if version == 1:  # version 1 had no revision column: every recommendation starts at revision 0
                db.execute("ALTER TABLE recommendations ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
            if version in (1, 2):
                # Version 2 allowed one execution per move (no retry): the table is rebuilt with attempts, and
                # "pending" is now called "proposed".
                for statement in _V3_MIGRATIONS:
                    db.execute(statement)
            if version in (1, 2, 3):
                for statement in _V4_MIGRATIONS:
                    db.execute(statement)
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

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

    def size_bytes(self) -> int:
        """The database with its write-ahead log, as it sits on disk."""
        return sum(p.stat().st_size for p in (self.path, self.path.with_name(self.path.name + "-wal"))
                   if p.exists())

    def close(self) -> None:
        with self.lock:
            self.connection.close()
