"""Samples on two replicas of one PostgreSQL (tests.support.postgres), wired as `advisor serve` wires them, their
periodic tasks run by the test: samples pushed to the follower reach the leader through the feed, and each entity's
samples are saved once, by the leader, not once by every replica that holds them. A trigger of the test's own on
the `samples` table counts every row written."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from advisor.adapters.sql.samples import SampleArchive
from advisor.app import App
from advisor.domain.cluster import InventoryChange
from advisor.domain.model import Host, HostSample, Vm, VmSample
from advisor.features.samples import HOST_FIELDS, VM_FIELDS
from tests.support import local_advisor

pytestmark = pytest.mark.integration

COUNT_WRITES = """
CREATE TABLE sample_writes (kind TEXT, entity_id TEXT);
CREATE FUNCTION count_sample_write() RETURNS trigger AS $$
BEGIN INSERT INTO sample_writes VALUES (NEW.kind, NEW.entity_id); RETURN NEW; END $$ LANGUAGE plpgsql;
CREATE TRIGGER sample_written AFTER INSERT OR UPDATE ON samples FOR EACH ROW EXECUTE FUNCTION count_sample_write();
"""


def run(app: App, task: str) -> None:
    (periodic,) = [p for p in (*app.collectors, *app.leader_tasks) if p.name == task]
    periodic.run_once()


def writes(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as db:
        return sorted(db.execute("SELECT kind, entity_id FROM sample_writes").fetchall())


def test_samples_pushed_to_either_replica_are_saved_once_by_the_leader(tmp_path: Path, postgres_url: str) -> None:
    inventory = InventoryChange(hosts=(Host("h1", 16, 32768),), vms=(Vm("v1", "h1", 4096, 2), Vm("v2", "h1", 4096, 2)))
    with local_advisor(tmp_path / "first", database_url=postgres_url) as first, \
            local_advisor(tmp_path / "second", database_url=postgres_url) as second:
        assert first.leadership.acting() and not second.leadership.acting()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(COUNT_WRITES)
        now = float(round(time.time()))  # whole seconds: kept to the millisecond
        for app in (first, second):
            app.usecases.ingestion.push_inventory(inventory)
        first.usecases.ingestion.push_samples([HostSample("h1", now, cpu_utilization=0.5)],
                                              [VmSample("v1", now, dirty_rate_mib_s=12.5)])
        second.usecases.ingestion.push_samples([], [VmSample("v1", now + 1, dirty_rate_mib_s=20.0),
                                                    VmSample("v2", now + 1, dirty_rate_mib_s=3.0)])
        for app in (first, second, first):  # each publishes what it was given and reads what the other was
            run(app, "sample feed")
        for app in (first, second):
            run(app, "housekeeping")
        assert writes(postgres_url) == [("host", "h1"), ("vm", "v1"), ("vm", "v2")]  # once each, by the leader
        saved = {(s.kind, s.entity_id): list(s.times) for s in
                 SampleArchive(first.store.database).load({"host": len(HOST_FIELDS), "vm": len(VM_FIELDS)})}
        assert saved == {("host", "h1"): [now], ("vm", "v1"): [now, now + 1], ("vm", "v2"): [now + 1]}
    assert len(writes(postgres_url)) == 3  # the stops saved nothing again: nothing changed

