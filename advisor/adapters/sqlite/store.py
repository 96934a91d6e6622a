"""SQLite persistence (WAL): the inventory, recommendations and migrations survive a restart.

One connection guarded by a lock: writes are serialised by SQLite anyway, and reads are few (the advisor keeps the
inventory in memory and reads it from here only at start). A recommendation's state changes by compare-and-set on
its revision (`replace_recommendation`), so two writers can never both decide it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from advisor.adapters.sqlite.codec import decode_migration, decode_recommendation, encode
from advisor.domain.cluster import InventoryChange
from advisor.domain.migration import MigrationRecord
from advisor.domain.model import Host, Vm
from advisor.domain.recommendation import Recommendation, RecommendationState

SCHEMA_VERSION = 2
_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS migrations (
    operation_id TEXT PRIMARY KEY,
    -- one execution per move of a recommendation, enforced here so that a retried request never starts a
    -- second migration
    recommendation_id TEXT NOT NULL,
    move_index INTEGER NOT NULL DEFAULT 0,
    phase TEXT NOT NULL,
    created_at_s REAL NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (recommendation_id, move_index)
);
"""


class StorageError(RuntimeError):
    """The database cannot be opened or is of a schema this version does not know."""


def _host(body: str) -> Host:
    d = json.loads(body)
    return Host(**d)


def _vm(body: str) -> Vm:
    d = json.loads(body)
    return Vm(
        **{**d, "affinity_groups": frozenset(d["affinity_groups"]),
           "anti_affinity_groups": frozenset(d["anti_affinity_groups"])}
    )


def _recommendation(row: tuple[str, int]) -> Recommendation:
    # The column is the truth: a body written by schema version 1 has no revision.
    return replace(decode_recommendation(json.loads(row[0])), revision=int(row[1]))


class SqliteStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) == 1:  # version 1 had no revision column: every recommendation starts at revision 0
            with self._transaction() as db:
                db.execute("ALTER TABLE recommendations ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise StorageError(f"{path}: schema version {row[0]}, this advisor knows {SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- inventory -----------------------------------------------------------------------------------------

    def load_inventory(self) -> tuple[list[Host], list[Vm]]:
        with self._lock:
            hosts = [_host(b) for (b,) in self._db.execute("SELECT body FROM hosts ORDER BY id")]
            vms = [_vm(b) for (b,) in self._db.execute("SELECT body FROM vms ORDER BY id")]
        return hosts, vms

    def apply_inventory(self, change: InventoryChange) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM vms WHERE id = ?", [(i,) for i in change.removed_vm_ids])
            db.executemany("DELETE FROM hosts WHERE id = ?", [(i,) for i in change.removed_host_ids])
            db.executemany(
                "INSERT OR REPLACE INTO hosts (id, body) VALUES (?, ?)",
                [(h.id, json.dumps(encode(h))) for h in change.hosts],
            )
            db.executemany(
                "INSERT OR REPLACE INTO vms (id, host_id, body) VALUES (?, ?, ?)",
                [(v.id, v.host_id, json.dumps(encode(v))) for v in change.vms],
            )

    # -- recommendations -----------------------------------------------------------------------------------

    def add_recommendation(self, rec: Recommendation) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO recommendations (id, created_at_s, state, body, revision) VALUES (?, ?, ?, ?, 0)",
                (rec.id, rec.created_at_s, rec.state.value, json.dumps(encode(replace(rec, revision=0)))),
            )

    def replace_recommendation(self, before: Recommendation, after: Recommendation) -> Recommendation | None:
        """Store `after` if the stored revision is still `before.revision` (compare-and-set); None otherwise."""
        stored = replace(after, revision=before.revision + 1)
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE recommendations SET state = ?, body = ?, revision = ? WHERE id = ? AND revision = ?",
                (stored.state.value, json.dumps(encode(stored)), stored.revision, before.id, before.revision),
            )
        return stored if cursor.rowcount == 1 else None

    def get_recommendation(self, rec_id: str) -> Recommendation | None:
        with self._lock:
            row = self._db.execute("SELECT body, revision FROM recommendations WHERE id = ?", (rec_id,)).fetchone()
        return None if row is None else _recommendation(row)

    def list_recommendations(
        self, state: RecommendationState | None, limit: int, after: tuple[float, str] | None = None
    ) -> list[Recommendation]:
        """Newest first; `after` is the (created_at_s, id) of the last item of the previous page."""
        sql = "SELECT body, revision FROM recommendations WHERE 1=1"
        args: list[object] = []
        if state is not None:
            sql += " AND state = ?"
            args.append(state.value)
        if after is not None:
            sql += " AND (created_at_s < ? OR (created_at_s = ? AND id < ?))"
            args += [after[0], after[0], after[1]]
        sql += " ORDER BY created_at_s DESC, id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_recommendation(row) for row in rows]

    # -- migrations ----------------------------------------------------------------------------------------

    def insert_migration(self, record: MigrationRecord) -> MigrationRecord:
        """Store a new operation, or return the one already stored for the same move of the same recommendation."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT body FROM migrations WHERE recommendation_id = ? AND move_index = ?",
                (record.recommendation_id, record.move_index),
            ).fetchone()
            if row is not None:
                return decode_migration(json.loads(row[0]))
            db.execute(
                "INSERT INTO migrations (operation_id, recommendation_id, move_index, phase, created_at_s, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (record.operation_id, record.recommendation_id, record.move_index, record.phase.value,
                 record.created_at_s, json.dumps(encode(record))),
            )
        return record

    def moved_since(self, since_s: float) -> set[str]:
        """VMs whose migration succeeded or is under way since `since_s`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM migrations WHERE created_at_s >= ? AND phase NOT IN ('failed', 'aborted')",
                (since_s,),
            ).fetchall()
        return {decode_migration(json.loads(b)).vm_id for (b,) in rows}

    def migrations_of(self, recommendation_id: str) -> list[MigrationRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM migrations WHERE recommendation_id = ? ORDER BY move_index", (recommendation_id,)
            ).fetchall()
        return [decode_migration(json.loads(b)) for (b,) in rows]

    def save_migration(self, record: MigrationRecord) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE migrations SET phase = ?, body = ? WHERE operation_id = ?",
                (record.phase.value, json.dumps(encode(record)), record.operation_id),
            )

    def get_migration(self, operation_id: str) -> MigrationRecord | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM migrations WHERE operation_id = ?", (operation_id,)).fetchone()
        return None if row is None else decode_migration(json.loads(row[0]))

    def unfinished_migrations(self) -> list[MigrationRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM migrations WHERE phase NOT IN ('succeeded', 'failed', 'aborted') "
                "ORDER BY created_at_s"
            ).fetchall()
        return [decode_migration(json.loads(b)) for (b,) in rows]
