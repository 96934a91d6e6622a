"""One contract, three implementations: the memory adapter (advisor.adapters.memory) and the SQL store
(advisor.adapters.sql) on SQLite and on a real PostgreSQL server (tests.support.postgres). What the use cases rely
on of storage is checked here against all, so that the tests of the use cases on the memory adapter test what
production does."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from advisor.adapters.memory import MemoryStore
from advisor.adapters.postgres.db import PostgresDatabase
from advisor.adapters.sql.store import SqlStore
from advisor.adapters.sqlite.db import SqliteStore
from advisor.domain.assessments import AssessedHosts, HostAssessment
from advisor.domain.automation import ClusterAutomation, Level
from advisor.domain.cluster import InventoryChange
from advisor.domain.migration import MigrationRecord, MigrationResult, Phase
from advisor.domain.model import Disk, Host, Move, Vm
from advisor.domain.recommendation import Priority, Recommendation, RecommendationState
from tests.support.values import COST, PARAMETERS

Store = MemoryStore | SqlStore
S = RecommendationState


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    sql = (SqliteStore(tmp_path / "db.sqlite3") if request.param == "sqlite"
           else SqlStore(PostgresDatabase(request.getfixturevalue("postgres_url"))))
    yield sql
    sql.close()


def proposed(rec_id: str, created_at_s: float = 1.0, revision: int = 0) -> Recommendation:
    move = Move("v", "a", "b", PARAMETERS, COST, ("why",))
    return Recommendation(rec_id, "target:v", created_at_s, (move,), "summary", revision=revision)


def operation(op: str, rec_id: str = "r", move_index: int = 0, attempt: int = 1, created_at_s: float = 1.0,
              phase: Phase = Phase.QUEUED, vm_id: str = "v") -> MigrationRecord:
    return MigrationRecord(op, rec_id, vm_id, "a", "b", PARAMETERS, COST, created_at_s, phase=phase,
                           move_index=move_index, attempt=attempt)


def test_an_inventory_change_is_kept_whole(store: Store) -> None:
    store.apply_inventory(InventoryChange(hosts=(Host("b", 8, 1024), Host("a", 8, 1024, labels={"x": "1"})),
                                          vms=(Vm("v2", "a", 512, 1), Vm("v1", "b", 256, 1,
                                                                         affinity_groups=frozenset({"g"})))))
    store.apply_inventory(InventoryChange(hosts=(Host("b", 16, 2048),), removed_vm_ids=("v2",)))
    hosts, vms = store.load_inventory()
    assert hosts == [Host("a", 8, 1024, labels={"x": "1"}), Host("b", 16, 2048)]
    assert vms == [Vm("v1", "b", 256, 1, affinity_groups=frozenset({"g"}))]


def test_disks_and_local_free_space_are_kept(store: Store) -> None:
    disks = (Disk("vda", 4096.0, 1500.0, shared=False, write_rate_mib_s=2.5), Disk("vdb", 8192.0, 10.0, shared=True))
    store.apply_inventory(InventoryChange(hosts=(Host("a", 8, 1024, local_disk_free_mib=50_000.0), Host("b", 8, 1024)),
                                          vms=(Vm("v", "a", 512, 1, disks=disks),)))
    hosts, vms = store.load_inventory()
    assert [h.local_disk_free_mib for h in hosts] == [50_000.0, None]
    assert vms == [Vm("v", "a", 512, 1, disks=disks)]


def test_a_recommendation_is_stored_at_revision_0_and_replaced_by_compare_and_set(store: Store) -> None:
    store.add_recommendation(proposed("r1", revision=7))
    read_by_both = store.get_recommendation("r1")
    assert read_by_both == proposed("r1") and store.get_recommendation("nope") is None
    first = store.replace_recommendation(read_by_both, replace(read_by_both, state=S.APPROVED))
    second = store.replace_recommendation(read_by_both, replace(read_by_both, state=S.REJECTED))
    assert first is not None and first.revision == 1 and first.state is S.APPROVED and second is None
    assert store.get_recommendation("r1") == first
    third = store.replace_recommendation(first, replace(first, state=S.EXPIRED))
    assert third is not None and third.revision == 2


def test_recommendations_are_listed_newest_first_after_a_cursor(store: Store) -> None:
    for rec_id, at in (("r1", 1.0), ("r2", 2.0), ("r3", 2.0), ("r4", 3.0)):
        store.add_recommendation(proposed(rec_id, at))
    r2 = store.get_recommendation("r2")
    assert r2 is not None
    store.replace_recommendation(r2, replace(r2, state=S.REJECTED))
    assert [r.id for r in store.list_recommendations(None, 10)] == ["r4", "r3", "r2", "r1"]
    assert [r.id for r in store.list_recommendations(None, 2, (2.0, "r3"))] == ["r2", "r1"]
    assert [r.id for r in store.list_recommendations(S.PROPOSED, 10)] == ["r4", "r3", "r1"]
    assert [r.id for r in store.list_recommendations(S.REJECTED, 10)] == ["r2"]


def test_the_review_backlog_counts_what_waits_for_a_person_by_state_and_priority(store: Store) -> None:
    for rec_id, level in (("r1", 1), ("r2", 1), ("r3", 4), ("r4", 3)):
        store.add_recommendation(replace(proposed(rec_id), priority=Priority(level, "why")))
    r3, r4 = store.get_recommendation("r3"), store.get_recommendation("r4")
    assert r3 is not None and r4 is not None
    store.replace_recommendation(r3, replace(r3, state=S.APPROVED))
    store.replace_recommendation(r4, replace(r4, state=S.REJECTED))
    assert store.review_backlog() == {("proposed", 1): 2, ("approved", 4): 1}


def test_the_open_recommendations_moving_some_vms_are_found_oldest_first(store: Store) -> None:
    plan = Recommendation("p", "rebalance", 2.0, (Move("w", "a", "b", PARAMETERS, COST, ()),
                                                 Move("v", "b", "c", PARAMETERS, COST, ())), "plan")
    for rec in (proposed("r3", 3.0), plan, proposed("r1", 1.0), proposed("gone", 0.5)):
        store.add_recommendation(rec)
    for rec_id, state in (("r1", S.APPROVED), ("gone", S.SUPERSEDED)):
        before = store.get_recommendation(rec_id)
        assert before is not None
        store.replace_recommendation(before, replace(before, state=state, superseded_by="r3"))
    assert [r.id for r in store.open_recommendations({"v"})] == ["r1", "p", "r3"]  # proposed or approved
    assert [(r.id, r.vm_ids) for r in store.open_recommendations(["w", "x", "v"])] == [
        ("r1", {"v"}), ("p", {"v", "w"}), ("r3", {"v"})]
    assert [(r.id, r.vm_ids) for r in store.open_recommendations(["w", "x"])] == [("p", {"w"})]
    assert store.open_recommendations(()) == [] and store.open_recommendations({"x"}) == []
    superseded = store.get_recommendation("gone")
    assert superseded is not None and (superseded.state, superseded.superseded_by) == (S.SUPERSEDED, "r3")


def test_a_plan_moving_many_of_the_vms_asked_about_is_found_once(store: Store) -> None:
    """More VMs than one query's IN list holds (500), and a plan moving all of them: one plan, once, with every
    VM asked about that it moves (its body, megabytes at 10,000 hosts, was read once per VM it moves)."""
    vms = [f"vm-{i:04d}" for i in range(1_200)]
    moves = tuple(Move(v, "a", "b", PARAMETERS, COST, ()) for v in vms)
    store.add_recommendation(Recommendation("plan", "rebalance", 1.0, moves, "plan"))
    store.add_recommendation(Recommendation("done", "rebalance", 0.5, moves, "plan"))
    done = store.get_recommendation("done")
    assert done is not None
    store.replace_recommendation(done, replace(done, state=S.REJECTED))
    found = store.open_recommendations([*reversed(vms), "elsewhere"])
    assert [(r.id, r.goal, r.state, r.created_at_s) for r in found] == [("plan", "rebalance", S.PROPOSED, 1.0)]
    assert found[0].vm_ids == frozenset(vms)  # those asked about that it moves


def test_every_host_assessed_is_kept_in_rank_order(store: Store) -> None:
    rows = [HostAssessment("b", (), 0.25, 0.5, 0.5), HostAssessment("a", ("memory", "CPU load"), None, 0.75, 1.5)]
    columns = AssessedHosts(("memory", "cpu"), ("c", "d", "e"), (0, 3, 0), (0.5, None, 0.25), (0.5, 1.0, 0.25),
                            (0.5, 2.0, 0.25))
    store.add_recommendation(proposed("r1"), {0: rows, 1: columns})
    assert store.list_assessments("r1", 0) == rows
    assert store.list_assessments("r1", 1) == [HostAssessment("e", (), 0.25, 0.25, 0.25),
                                               HostAssessment("c", (), 0.5, 0.5, 0.5),
                                               HostAssessment("d", ("memory", "cpu"), None, 1.0, 2.0)]
    assert store.list_assessments("r1", 2) is None


def test_one_operation_per_attempt_of_a_move(store: Store) -> None:
    first = store.insert_migration(operation("op1"))
    assert store.insert_migration(operation("op2")) == first  # the same attempt: the one stored
    store.insert_migration(operation("op3", attempt=2, created_at_s=2.0))
    store.insert_migration(operation("op4", move_index=1, created_at_s=3.0))
    assert store.get_migration("op2") is None
    assert [r.operation_id for r in store.migrations_of("r")] == ["op1", "op3", "op4"]
    ended = replace(first, phase=Phase.FAILED, outcome=MigrationResult(False, "lost"), finished_at_s=5.0,
                    predicted_mib_s=62.5)  # predicted again at its share of the links
    store.save_migration(ended)
    assert store.get_migration("op1") == ended
    assert [r.operation_id for r in store.unfinished_migrations()] == ["op3", "op4"]


def test_operations_are_listed_newest_first_and_the_moving_ones_remembered(store: Store) -> None:
    for op, at, phase, vm in (("op1", 1.0, Phase.SUCCEEDED, "v1"), ("op2", 2.0, Phase.FAILED, "v2"),
                              ("op3", 3.0, Phase.PRECOPY, "v3"), ("op4", 3.0, Phase.ABORTED, "v4")):
        store.insert_migration(operation(op, rec_id=op, created_at_s=at, phase=phase, vm_id=vm))
    assert [r.operation_id for r in store.list_migrations(running=False, limit=10)] == ["op4", "op3", "op2", "op1"]
    assert [r.operation_id for r in store.list_migrations(running=False, limit=2, after=(3.0, "op3"))] == [
        "op2", "op1"]
    assert [r.operation_id for r in store.list_migrations(running=True, limit=10)] == ["op3"]
    assert store.moved_since(1.0) == {"v1", "v3"} and store.moved_since(2.0) == {"v3"}
    assert [r.operation_id for r in store.recent_migrations(0.0, 10)] == ["op3", "op1"]
    assert [r.operation_id for r in store.recent_migrations(0.0, 1)] == ["op3"]


def test_outcomes_are_kept_once_per_operation_in_the_order_they_ended(store: Store) -> None:
    for op, at in (("op2", 20.0), ("op1", 10.0), ("op2", 30.0)):
        store.record_outcome(replace(operation(op, rec_id=op), phase=Phase.SUCCEEDED, finished_at_s=at))
    assert [(r.operation_id, r.finished_at_s) for r in store.outcomes()] == [("op1", 10.0), ("op2", 30.0)]
    assert [r.operation_id for r in store.outcomes(since_s=15.0)] == ["op2"]


def test_automation_settings_are_kept_one_per_cluster(store: Store) -> None:
    store.set_automation(ClusterAutomation("west", Level.FULL, 2.0, "carol", 5.0))
    store.set_automation(ClusterAutomation("east", Level.PARTIAL, 1.0, "bob", 6.0))
    store.set_automation(ClusterAutomation("west", Level.MANUAL, 0.0, "dave", 7.0))
    assert store.automation() == [ClusterAutomation("east", Level.PARTIAL, 1.0, "bob", 6.0),
                                  ClusterAutomation("west", Level.MANUAL, 0.0, "dave", 7.0)]


def reopened_as(tmp_path: Path, version: int, undo: str, old: Recommendation | None = None) -> SqliteStore:
    """SQLite only: a database holding the proposed recommendation "old" as schema `version` left it (`undo` takes
    back what later versions added), opened again."""
    path = tmp_path / "db.sqlite3"
    SqliteStore(path).add_recommendation(old or proposed("old"))
    with sqlite3.connect(path) as db:
        db.execute(undo)
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
        for table in ("_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock", "leader_lease",
                      "sample_feed", "inventory_feed"):  # before yoyo
            db.execute(f"DROP TABLE {table}")
        db.execute("ALTER TABLE recommendations DROP COLUMN goal")
        db.execute("ALTER TABLE recommendations DROP COLUMN priority")
    return SqliteStore(path)


def test_a_version_1_database_gains_revisions(tmp_path: Path) -> None:
    reopened = reopened_as(tmp_path, 1, "ALTER TABLE recommendations DROP COLUMN revision")
    old = reopened.get_recommendation("old")
    assert old is not None and old.revision == 0
    assert reopened.replace_recommendation(old, replace(old, state=S.APPROVED)) is not None


def test_a_version_3_database_learns_which_vms_its_recommendations_move(tmp_path: Path) -> None:
    """Schema version 4 indexes the VMs each recommendation moves; an older database is indexed on open."""
    reopened = reopened_as(tmp_path, 3, "DROP TABLE recommendation_vms")
    assert [r.id for r in reopened.open_recommendations({"v"})] == ["old"]
    assert reopened.database.connection.execute(
        "SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("5",)  # now kept by yoyo


def test_a_version_4_database_of_the_advisor_before_yoyo_is_taken_over_whole(tmp_path: Path) -> None:
    """The format of every data directory in use before yoyo: its tables are kept, yoyo records its first migration
    as applied, and `meta` says 5, which an advisor from before yoyo refuses."""
    old = replace(proposed("old"), priority=Priority(1, "its host is in maintenance"))
    reopened = reopened_as(tmp_path, 4, "SELECT 1", old)
    assert reopened.get_recommendation("old") == old
    assert [r.goal for r in reopened.open_recommendations({"v"})] == ["target:v"]  # from its body
    assert reopened.review_backlog() == {("proposed", 1): 1}  # so is its priority
    db = reopened.database.connection
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("5",)
    assert db.execute("SELECT migration_id FROM _yoyo_migration ORDER BY migration_id").fetchall() == [
        ("0001_schema",), ("0002_leader_lease",), ("0003_sample_feed",),
        ("0004_inventory_feed",), ("0005_recommendation_columns",)]
