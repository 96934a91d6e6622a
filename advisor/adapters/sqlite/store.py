"""SQLite persistence (WAL): the inventory, recommendations and migrations survive a restart.

One connection guarded by a lock (advisor.adapters.sqlite.db): writes are serialised by SQLite anyway, and reads
are few (the advisor keeps the inventory in memory and reads it from here only at start). A recommendation's
state changes by compare-and-set on its revision (`replace_recommendation`), so two writers can never both
decide it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

from advisor.adapters.sqlite.codec import (
    decode_migration,
    decode_recommendation,
    encode,
    pack_assessments,
    unpack_assessments,
)
from advisor.adapters.sqlite.db import Database, StorageError
from advisor.domain.automation import ClusterAutomation, Level
from advisor.domain.cluster import InventoryChange
from advisor.domain.migration import MigrationRecord
from advisor.domain.model import AssessedHosts, Disk, Host, HostAssessment, Vm
from advisor.domain.recommendation import OPEN, Recommendation, RecommendationState

# Bound on the ids in one query's IN (...) (SQLite's own limit is 32,766 parameters).
_IN_CHUNK = 500


def _host(body: str) -> Host:
    d = json.loads(body)
    return Host(**{**d, "networks": frozenset(d.get("networks", ()))})  # rows written before networks have none


def _vm(body: str) -> Vm:
    d = json.loads(body)
    return Vm(
        **{**d, "affinity_groups": frozenset(d["affinity_groups"]),
           "anti_affinity_groups": frozenset(d["anti_affinity_groups"]), "networks": frozenset(d.get("networks", ())),
           "disks": tuple(Disk(**disk) for disk in d.get("disks", ()))}  # rows written before disks have none
    )


def _automation(d: dict[str, Any]) -> ClusterAutomation:
    return ClusterAutomation(d["cluster"], Level(d["level"]), d["min_benefit_over_cost"], d["updated_by"],
                             d["updated_at_s"])


def _insert_assessments(db: sqlite3.Connection, rec_id: str,
                        assessments: Mapping[int, Sequence[HostAssessment] | AssessedHosts]) -> None:
    db.executemany("INSERT OR REPLACE INTO assessments (recommendation_id, move_index, body) VALUES (?, ?, ?)",
                   [(rec_id, i, pack_assessments(found)) for i, found in assessments.items()])


def _recommendation(row: tuple[str, int]) -> Recommendation:
    # The column is the truth: a body written by schema version 1 has no revision.
    return replace(decode_recommendation(json.loads(row[0])), revision=int(row[1]))


class SqliteStore:
    """Inventory, recommendations (with the full assessments of their moves) and migrations."""

    def __init__(self, database: Database | Path) -> None:
        self.database = database if isinstance(database, Database) else Database(database)
        self.path = self.database.path

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self.database.transaction()

    @property
    def _lock(self) -> threading.Lock:
        return self.database.lock

    @property
    def _db(self) -> sqlite3.Connection:
        return self.database.connection

    def close(self) -> None:
        self.database.close()

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

    def add_recommendation(
        self, rec: Recommendation, assessments: Mapping[int, Sequence[HostAssessment] | AssessedHosts] | None = None
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO recommendations (id, created_at_s, state, body, revision) VALUES (?, ?, ?, ?, 0)",
                (rec.id, rec.created_at_s, rec.state.value, json.dumps(encode(replace(rec, revision=0)))),
            )
            db.executemany("INSERT OR IGNORE INTO recommendation_vms (vm_id, recommendation_id) VALUES (?, ?)",
                           [(m.vm_id, rec.id) for m in rec.moves])
            _insert_assessments(db, rec.id, assessments or {})

    def list_assessments(self, rec_id: str, move_index: int) -> list[HostAssessment] | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM assessments WHERE recommendation_id = ? AND move_index = ?",
                                   (rec_id, move_index)).fetchone()
        return None if row is None else unpack_assessments(row[0])

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
        return [_recommendation(row) for row in self._newest_first(sql, args, "id", after, limit)]

    def open_recommendations(self, vm_ids: Collection[str]) -> list[Recommendation]:
        wanted, rows = sorted(set(vm_ids)), {}
        states = sorted(s.value for s in OPEN)
        with self._lock:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start:start + _IN_CHUNK]
                for rec_id, body, revision in self._db.execute(
                        "SELECT r.id, r.body, r.revision FROM recommendation_vms v JOIN recommendations r "
                        f"ON r.id = v.recommendation_id WHERE v.vm_id IN ({','.join('?' * len(chunk))}) "
                        f"AND r.state IN ({','.join('?' * len(states))})", (*chunk, *states)):
                    rows[rec_id] = (body, revision)
        return sorted((_recommendation(row) for row in rows.values()), key=lambda r: (r.created_at_s, r.id))

    def prune_recommendations(self, keep: int, older_than_s: float) -> int:
        """Delete recommendations (and their assessments) beyond the newest `keep` or created before
        `older_than_s`, except those whose migrations are under way; returns how many went."""
        with self._transaction() as db:
            doomed = [rid for (rid,) in db.execute(
                "SELECT id FROM recommendations WHERE state != 'executing' AND (created_at_s < ? OR id IN ("
                "SELECT id FROM recommendations ORDER BY created_at_s DESC, id DESC LIMIT -1 OFFSET ?))",
                (older_than_s, keep))]
            db.executemany("DELETE FROM assessments WHERE recommendation_id = ?", [(r,) for r in doomed])
            db.executemany("DELETE FROM recommendation_vms WHERE recommendation_id = ?", [(r,) for r in doomed])
            db.executemany("DELETE FROM recommendations WHERE id = ?", [(r,) for r in doomed])
        return len(doomed)

    # -- migrations ----------------------------------------------------------------------------------------

    def insert_migration(self, record: MigrationRecord) -> MigrationRecord:
        """Store a new operation, or return the one already stored for the same attempt of the same move."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT body FROM migrations WHERE recommendation_id = ? AND move_index = ? AND attempt = ?",
                (record.recommendation_id, record.move_index, record.attempt),
            ).fetchone()
            if row is not None:
                return decode_migration(json.loads(row[0]))
            db.execute(
                "INSERT INTO migrations (operation_id, recommendation_id, move_index, attempt, phase, created_at_s, "
                "body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.operation_id, record.recommendation_id, record.move_index, record.attempt,
                 record.phase.value, record.created_at_s, json.dumps(encode(record))),
            )
        return record

    def list_migrations(self, *, running: bool, limit: int,
                        after: tuple[float, str] | None = None) -> list[MigrationRecord]:
        """Operations newest first: only those not ended (`running`), or all; `after` is the (created_at_s,
        operation_id) of the last item of the previous page."""
        sql = "SELECT body FROM migrations WHERE 1=1"
        args: list[object] = []
        if running:
            sql += " AND phase NOT IN ('succeeded', 'failed', 'aborted')"
        return [decode_migration(json.loads(b)) for (b,) in self._newest_first(sql, args, "operation_id", after, limit)]

    def _newest_first(
        self, sql: str, args: list[object], key: str, after: tuple[float, str] | None, limit: int
    ) -> list[Any]:
        """One page of the rows `sql` selects (it ends in its WHERE conditions), newest first by (created_at_s,
        `key`); `after` is that pair of the last row of the previous page."""
        if after is not None:
            sql += f" AND (created_at_s < ? OR (created_at_s = ? AND {key} < ?))"
            args = [*args, after[0], after[0], after[1]]
        sql += f" ORDER BY created_at_s DESC, {key} DESC LIMIT ?"
        with self._lock:
            return self._db.execute(sql, [*args, limit]).fetchall()

    # -- automation ----------------------------------------------------------------------------------------

    def automation(self) -> list[ClusterAutomation]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM automation ORDER BY cluster").fetchall()
        return [_automation(json.loads(b)) for (b,) in rows]

    def set_automation(self, setting: ClusterAutomation) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO automation (cluster, body) VALUES (?, ?)",
                       (setting.cluster, json.dumps(encode(setting))))

    def moved_since(self, since_s: float) -> set[str]:
        """VMs whose migration succeeded or is under way since `since_s`."""
        return {r.vm_id for r in self._records(
            "SELECT body FROM migrations WHERE created_at_s >= ? AND phase NOT IN ('failed', 'aborted')", (since_s,))}

    def recent_migrations(self, since_s: float, limit: int) -> list[MigrationRecord]:
        """Operations started since `since_s` that moved or may still move their VM (not failed, not aborted),
        newest first."""
        return self._records(
            "SELECT body FROM migrations WHERE created_at_s >= ? AND phase NOT IN ('failed', 'aborted') "
            "ORDER BY created_at_s DESC LIMIT ?", (since_s, limit))

    def migrations_of(self, recommendation_id: str) -> list[MigrationRecord]:
        return self._records("SELECT body FROM migrations WHERE recommendation_id = ? ORDER BY move_index, attempt",
                             (recommendation_id,))

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

    def record_outcome(self, record: MigrationRecord) -> None:
        """Keep an ended migration, with its inputs and prediction, as training data (once per operation)."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO outcomes (operation_id, finished_at_s, body) VALUES (?, ?, ?)",
                       (record.operation_id, record.finished_at_s or 0.0, json.dumps(encode(record))))

    def outcomes(self, since_s: float = 0.0) -> list[MigrationRecord]:
        return self._records("SELECT body FROM outcomes WHERE finished_at_s >= ? ORDER BY finished_at_s", (since_s,))

    def unfinished_migrations(self) -> list[MigrationRecord]:
        return self._records(
            "SELECT body FROM migrations WHERE phase NOT IN ('succeeded', 'failed', 'aborted') ORDER BY created_at_s")

    def _records(self, sql: str, args: Sequence[object] = ()) -> list[MigrationRecord]:
        """The migration records whose bodies `sql` selects (from migrations or outcomes), in its order."""
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [decode_migration(json.loads(b)) for (b,) in rows]


__all__ = ["SqliteStore", "StorageError"]
