"""The inventory, recommendations and migrations, on SQLite or PostgreSQL (advisor.adapters.sql.database).

Reads are few (the advisor keeps the inventory in memory and reads it from here only at start). A
recommendation's state changes by compare-and-set on its revision (`replace_recommendation`): one conditional
UPDATE, so two writers, in one process or in two, can never both decide it. The writes of an execution (a
migration's record, its progress, its outcome) are together under "executions" below, each behind the fence of
the leader's term (advisor.adapters.sql.lease): a replica deposed meanwhile cannot write them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence, Sized
from dataclasses import replace
from typing import Any

from advisor.adapters.sql.codec import (
    decode_migration,
    decode_recommendation,
    pack_assessments,
    to_json,
    unpack_assessments,
)
from advisor.adapters.sql.database import Connection, Database, StorageError
from advisor.adapters.sql.feed import publish_inventory
from advisor.adapters.sql.lease import fence
from advisor.domain.assessments import AssessedHosts, HostAssessment
from advisor.domain.automation import ClusterAutomation, Level
from advisor.domain.cluster import InventoryChange
from advisor.domain.migration import MigrationRecord
from advisor.domain.model import Disk, Host, Vm
from advisor.domain.recommendation import OPEN, OpenRecommendation, Recommendation, RecommendationState

# Bound on the ids in one query's IN (...) (SQLite's limit is 32,766 parameters, PostgreSQL's 65,535).
_IN_CHUNK = 500


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start:start + _IN_CHUNK]


def _marks(ids: Sized) -> str:
    """The `?` placeholders of an IN list of `ids`."""
    return ",".join("?" * len(ids))


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


def _insert_assessments(db: Connection, rec_id: str,
                        assessments: Mapping[int, Sequence[HostAssessment] | AssessedHosts]) -> None:
    db.executemany("INSERT INTO assessments (recommendation_id, move_index, body) VALUES (?, ?, ?) "
                   "ON CONFLICT (recommendation_id, move_index) DO UPDATE SET body = excluded.body",
                   [(rec_id, i, pack_assessments(found)) for i, found in assessments.items()])


def _recommendation(row: tuple[str, int]) -> Recommendation:
    # The column is the truth: a body written by schema version 1 has no revision.
    return replace(decode_recommendation(json.loads(row[0])), revision=int(row[1]))


class SqlStore:
    """Inventory, recommendations (with the full assessments of their moves) and migrations."""

    def __init__(self, database: Database, term: Callable[[], int | None] = lambda: None, *,
                 replica: str = "") -> None:
        """`term()` is the fencing term this process leads in, which the writes of an execution carry (None while
        it has none: SQLite's one process, or a replica that only queues operations for the leader). A `replica`
        (its name) says in the inventory's feed which hosts and VMs each of its changes touched, for the others."""
        self.database = database
        self._term = term
        self._replica = replica
        self._transaction = database.transaction
        self._reading = database.reading

    def close(self) -> None:
        self.database.close()

    # -- inventory -----------------------------------------------------------------------------------------

    def load_inventory(self) -> tuple[list[Host], list[Vm]]:
        with self._reading() as db:
            hosts = [_host(b) for (b,) in db.execute("SELECT body FROM hosts ORDER BY id").fetchall()]
            vms = [_vm(b) for (b,) in db.execute("SELECT body FROM vms ORDER BY id").fetchall()]
        return hosts, vms

    def apply_inventory(self, change: InventoryChange) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM vms WHERE id = ?", [(i,) for i in change.removed_vm_ids])
            db.executemany("DELETE FROM hosts WHERE id = ?", [(i,) for i in change.removed_host_ids])
            db.executemany(
                "INSERT INTO hosts (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                [(h.id, to_json(h)) for h in change.hosts],
            )
            db.executemany(
                "INSERT INTO vms (id, host_id, body) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET host_id = excluded.host_id, body = excluded.body",
                [(v.id, v.host_id, to_json(v)) for v in change.vms],
            )
            if self._replica:
                publish_inventory(db, self._replica, time.time(), change)

    def load_inventory_of(self, host_ids: Sequence[str], vm_ids: Sequence[str]) -> tuple[list[Host], list[Vm]]:
        """The hosts and VMs of these ids that are stored (the others were removed, or never were)."""
        with self._reading() as db:
            hosts = [_host(b) for chunk in _chunks(host_ids) for (b,) in db.execute(
                f"SELECT body FROM hosts WHERE id IN ({_marks(chunk)})", chunk).fetchall()]
            vms = [_vm(b) for chunk in _chunks(vm_ids) for (b,) in db.execute(
                f"SELECT body FROM vms WHERE id IN ({_marks(chunk)})", chunk).fetchall()]
        return hosts, vms

    # -- recommendations -----------------------------------------------------------------------------------

    def add_recommendation(
        self, rec: Recommendation, assessments: Mapping[int, Sequence[HostAssessment] | AssessedHosts] | None = None
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO recommendations (id, created_at_s, state, goal, priority, body, revision) "
                "VALUES (?, ?, ?, ?, ?, ?, 0)",
                (rec.id, rec.created_at_s, rec.state.value, rec.goal, rec.priority.level,
                 to_json(replace(rec, revision=0))),
            )
            db.executemany("INSERT INTO recommendation_vms (vm_id, recommendation_id) VALUES (?, ?) "
                           "ON CONFLICT DO NOTHING", [(m.vm_id, rec.id) for m in rec.moves])
            _insert_assessments(db, rec.id, assessments or {})

    def list_assessments(self, rec_id: str, move_index: int) -> list[HostAssessment] | None:
        with self._reading() as db:
            row = db.execute("SELECT body FROM assessments WHERE recommendation_id = ? AND move_index = ?",
                             (rec_id, move_index)).fetchone()
        return None if row is None else unpack_assessments(row[0])

    def replace_recommendation(self, before: Recommendation, after: Recommendation) -> Recommendation | None:
        """Store `after` if the stored revision is still `before.revision` (compare-and-set); None otherwise."""
        stored = replace(after, revision=before.revision + 1)
        with self._transaction() as db:
            won = db.execute(
                "UPDATE recommendations SET state = ?, body = ?, revision = ? WHERE id = ? AND revision = ?",
                (stored.state.value, to_json(stored), stored.revision, before.id, before.revision),
            ).rowcount == 1
        return stored if won else None

    def get_recommendation(self, rec_id: str) -> Recommendation | None:
        with self._reading() as db:
            row = db.execute("SELECT body, revision FROM recommendations WHERE id = ?", (rec_id,)).fetchone()
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

    def review_backlog(self) -> dict[tuple[str, int], int]:
        """How many recommendations wait for a person, by state (proposed: a decision; approved: a run) and
        priority (3 for one stored before priorities), from their columns: every scrape asks, and a plan's body
        is megabytes."""
        backlog: dict[tuple[str, int], int] = {}
        with self._reading() as db:
            rows = db.execute("SELECT state, priority, COUNT(*) FROM recommendations "
                              "WHERE state IN ('proposed', 'pending', 'approved') GROUP BY state, priority").fetchall()
        for state, level, n in rows:
            key = ("proposed" if state == "pending" else str(state), int(level))
            backlog[key] = backlog.get(key, 0) + int(n)
        return backlog

    def open_recommendations(self, vm_ids: Collection[str]) -> list[OpenRecommendation]:
        """From the index of the VMs each recommendation moves and the recommendations' columns, never their
        bodies: a plan's is megabytes, and a plan asks about thousands of VMs. The goal is read apart, once per
        recommendation: in SQLite's rows it comes after the body (added by ALTER TABLE), and reading it walks
        the body's pages."""
        found: dict[str, tuple[str, float, set[str]]] = {}
        goals: dict[str, str] = {}
        states = sorted(s.value for s in OPEN)
        with self._reading() as db:
            for chunk in _chunks(sorted(set(vm_ids))):
                for rec_id, state, created_at_s, vm_id in db.execute(
                        "SELECT r.id, r.state, r.created_at_s, v.vm_id FROM recommendation_vms v JOIN "
                        f"recommendations r ON r.id = v.recommendation_id WHERE v.vm_id IN ({_marks(chunk)}) "
                        f"AND r.state IN ({_marks(states)})", (*chunk, *states)).fetchall():
                    found.setdefault(rec_id, (state, created_at_s, set()))[2].add(vm_id)
            for chunk in _chunks(sorted(found)):
                goals.update(db.execute(f"SELECT id, goal FROM recommendations WHERE id IN ({_marks(chunk)})",
                                        chunk).fetchall())
        return sorted((OpenRecommendation(rec_id, goals.get(rec_id, ""), RecommendationState.parse(state),
                                          created_at_s, frozenset(moved))
                       for rec_id, (state, created_at_s, moved) in found.items()), key=lambda r: (r.created_at_s, r.id))

    def prune_recommendations(self, keep: int, older_than_s: float) -> int:
        """Delete recommendations (and their assessments) beyond the newest `keep` or created before
        `older_than_s`, except those whose migrations are under way; returns how many went. One statement
        chooses and deletes, so a recommendation that starts executing meanwhile (another process) is kept."""
        with self._transaction() as db:
            doomed = [rid for (rid,) in db.execute(
                "DELETE FROM recommendations WHERE state != 'executing' AND (created_at_s < ? OR id NOT IN ("
                "SELECT id FROM recommendations ORDER BY created_at_s DESC, id DESC LIMIT ?)) RETURNING id",
                (older_than_s, keep)).fetchall()]
            db.executemany("DELETE FROM assessments WHERE recommendation_id = ?", [(r,) for r in doomed])
            db.executemany("DELETE FROM recommendation_vms WHERE recommendation_id = ?", [(r,) for r in doomed])
        return len(doomed)

    # -- executions: every write of a migration's record, fenced by the leader's term ---------------------

    def insert_migration(self, record: MigrationRecord) -> MigrationRecord:
        """Store a new operation, or return the one already stored for the same attempt of the same move (also
        when another process stores it at the same moment: the insert does nothing on that conflict)."""
        with self._transaction() as db:
            fence(db, self._term())
            db.execute(
                "INSERT INTO migrations (operation_id, recommendation_id, move_index, attempt, phase, created_at_s, "
                "body) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (recommendation_id, move_index, attempt) DO NOTHING",
                (record.operation_id, record.recommendation_id, record.move_index, record.attempt,
                 record.phase.value, record.created_at_s, to_json(record)),
            )
            row = db.execute(
                "SELECT body FROM migrations WHERE recommendation_id = ? AND move_index = ? AND attempt = ?",
                (record.recommendation_id, record.move_index, record.attempt),
            ).fetchone()
        return decode_migration(json.loads(row[0]))

    def save_migration(self, record: MigrationRecord) -> None:
        with self._transaction() as db:
            fence(db, self._term())
            db.execute(
                "UPDATE migrations SET phase = ?, body = ? WHERE operation_id = ?",
                (record.phase.value, to_json(record), record.operation_id),
            )

    def record_outcome(self, record: MigrationRecord) -> None:
        """Keep an ended migration, with its inputs and prediction, as training data (once per operation)."""
        with self._transaction() as db:
            fence(db, self._term())
            db.execute("INSERT INTO outcomes (operation_id, finished_at_s, body) VALUES (?, ?, ?) ON CONFLICT "
                       "(operation_id) DO UPDATE SET finished_at_s = excluded.finished_at_s, body = excluded.body",
                       (record.operation_id, record.finished_at_s or 0.0, to_json(record)))

    # -- migrations, read ----------------------------------------------------------------------------------

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
        with self._reading() as db:
            return db.execute(sql, [*args, limit]).fetchall()

    # -- automation ----------------------------------------------------------------------------------------

    def automation(self) -> list[ClusterAutomation]:
        with self._reading() as db:
            rows = db.execute("SELECT body FROM automation ORDER BY cluster").fetchall()
        return [_automation(json.loads(b)) for (b,) in rows]

    def set_automation(self, setting: ClusterAutomation) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO automation (cluster, body) VALUES (?, ?) "
                       "ON CONFLICT (cluster) DO UPDATE SET body = excluded.body",
                       (setting.cluster, to_json(setting)))

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

    def get_migration(self, operation_id: str) -> MigrationRecord | None:
        with self._reading() as db:
            row = db.execute("SELECT body FROM migrations WHERE operation_id = ?", (operation_id,)).fetchone()
        return None if row is None else decode_migration(json.loads(row[0]))

    def outcomes(self, since_s: float = 0.0) -> list[MigrationRecord]:
        return self._records("SELECT body FROM outcomes WHERE finished_at_s >= ? ORDER BY finished_at_s", (since_s,))

    def unfinished_migrations(self) -> list[MigrationRecord]:
        return self._records(
            "SELECT body FROM migrations WHERE phase NOT IN ('succeeded', 'failed', 'aborted') ORDER BY created_at_s")

    def _records(self, sql: str, args: Sequence[object] = ()) -> list[MigrationRecord]:
        """The migration records whose bodies `sql` selects (from migrations or outcomes), in its order."""
        with self._reading() as db:
            rows = db.execute(sql, args).fetchall()
        return [decode_migration(json.loads(b)) for (b,) in rows]


__all__ = ["SqlStore", "StorageError"]
