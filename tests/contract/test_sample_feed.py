"""The feed of samples between replicas (advisor.adapters.sql.feed) on SQLite and on a real PostgreSQL server, each
database opened twice as two replicas open it, with advisor.sample_sharing on top: what is added to one replica's
samples is in the other's after an exchange of each, once, and not published back; a publication that failed is
tried again, and reaches the others once."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import psycopg

from advisor.adapters.postgres.db import PostgresDatabase
from advisor.adapters.sql.feed import Batch, SampleFeed
from advisor.domain.model import HostSample, VmSample
from advisor.sample_sharing import SharedSamples
from tests.contract.test_databases import Open, open_database  # noqa: F401 - the fixture
from tests.support.postgres import PostgresServer

NOW = 1_000_000.0


def test_a_batch_is_read_whole_by_others_and_without_samples_by_its_writer(open_database: Open) -> None:  # noqa: F811
    first, second = SampleFeed(open_database()), SampleFeed(open_database())
    hosts = [HostSample("h1", NOW, cpu_utilization=0.5, power_w=200.0)]
    vms = [VmSample("v1", NOW, dirty_rate_mib_s=12.5), VmSample("v2", NOW + 1, working_set_mib=64.0)]
    first.publish("a", NOW, hosts, vms)
    first.publish("a", NOW + 1, [], [VmSample("v1", NOW + 2, cpu_utilization=0.25)])
    (one, two) = second.read("b", 0)
    assert (one.hosts, one.vms) == (hosts, vms) and two.vms == [VmSample("v1", NOW + 2, cpu_utilization=0.25)]
    assert two.seq > one.seq
    assert [(b.seq, b.hosts, b.vms) for b in first.read("a", 0)] == [(one.seq, [], []), (two.seq, [], [])]
    assert second.read("b", two.seq) == [] and second.read("b", two.seq, [one.seq]) == [one]
    assert second.prune(NOW + 0.5) == 1 and [b.seq for b in second.read("b", 0)] == [two.seq]


def test_samples_added_to_one_replica_are_in_the_others_after_an_exchange(open_database: Open) -> None:  # noqa: F811
    clock = [NOW]
    first = SharedSamples(8, SampleFeed(open_database()), "first", clock=lambda: clock[0])
    second = SharedSamples(8, SampleFeed(open_database()), "second", clock=lambda: clock[0])
    first.add([], [VmSample("v1", NOW, dirty_rate_mib_s=12.5)])
    second.add([HostSample("h1", NOW, cpu_utilization=0.5)], [])
    first.exchange()
    second.exchange()  # publishes h1, reads v1
    first.exchange()  # reads h1
    assert second.vm_latest("v1", "dirty_rate_mib_s") == first.vm_latest("v1", "dirty_rate_mib_s")
    assert first.host_latest("h1", "cpu_utilization") == second.host_latest("h1", "cpu_utilization")
    latest = second.vm_latest("v1", "dirty_rate_mib_s")
    assert latest is not None and math.isclose(latest.value, 12.5)
    for samples in (first, second):  # what each read from the other is not published again, nor read twice
        samples.exchange()
    assert [len(w[0]) for w in (first.vm_window("v1"), second.vm_window("v1"))] == [1, 1]
    assert len(SampleFeed(open_database()).read("third", 0)) == 2


class FailingOnce:
    """The feed, whose next publication fails (as when the database went away) once `fail` is set."""

    def __init__(self, feed: SampleFeed) -> None:
        self.feed, self.fail = feed, False

    def publish(self, origin: str, written_at_s: float, hosts: Sequence[HostSample], vms: Sequence[VmSample]) -> None:
        if self.fail:
            self.fail = False
            raise ConnectionError("the database is unreachable")
        self.feed.publish(origin, written_at_s, hosts, vms)

    def read(self, origin: str, after: int, also: Collection[int] = ()) -> list[Batch]:
        return self.feed.read(origin, after, also)

    def prune(self, before_s: float) -> int:
        return self.feed.prune(before_s)


def test_a_failed_publication_is_tried_again_and_its_samples_reach_the_others_once(
        open_database: Open) -> None:  # noqa: F811
    feed = FailingOnce(SampleFeed(open_database()))
    first = SharedSamples(8, feed, "first", clock=lambda: NOW)
    second = SharedSamples(8, SampleFeed(open_database()), "second", clock=lambda: NOW)
    first.add([], [VmSample("v1", NOW, dirty_rate_mib_s=12.5)])
    feed.fail = True
    first.exchange()  # fails: the batch waits in the outbox
    second.exchange()
    assert second.vm_latest("v1", "dirty_rate_mib_s") is None
    first.add([HostSample("h1", NOW + 1, cpu_utilization=0.5)], [VmSample("v1", NOW + 1, dirty_rate_mib_s=20.0)])
    first.exchange()  # the failed batch, and what came since, in order
    second.exchange()
    assert [t for t in second.vm_window("v1")[0]] == [NOW, NOW + 1]
    assert second.host_latest("h1", "cpu_utilization") is not None
    (batch,) = SampleFeed(open_database()).read("third", 0)  # one row: written once
    assert [s.time_s for s in batch.vms] == [NOW, NOW + 1] and len(batch.hosts) == 1


def test_a_publication_that_lost_its_connection_reaches_the_others_at_the_next_exchange(
        postgres_server: PostgresServer, postgres_url: str) -> None:
    """On PostgreSQL, the failure a real one: the server ends every connection of the publishing replica."""
    first = SharedSamples(8, SampleFeed(PostgresDatabase(postgres_url)), "first", clock=lambda: NOW)
    second = SharedSamples(8, SampleFeed(PostgresDatabase(postgres_url)), "second", clock=lambda: NOW)
    first.add([], [VmSample("v1", NOW, dirty_rate_mib_s=12.5)])
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        ended = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
                              "current_database() AND pid <> pg_backend_pid()").fetchone()
    assert ended is not None and ended[0] >= 2  # each replica's pool had connections
    failures = 0
    for _ in range(4):  # each pool finds its connections gone, one by one, then makes new ones
        for samples in (first, second):
            try:
                samples.exchange()
            except psycopg.OperationalError:
                failures += 1
    assert failures >= 2
    latest = second.vm_latest("v1", "dirty_rate_mib_s")
    assert latest is not None and math.isclose(latest.value, 12.5)
    assert len(SampleFeed(PostgresDatabase(postgres_url)).read("third", 0)) == 1
