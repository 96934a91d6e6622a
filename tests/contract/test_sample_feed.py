"""The feed of samples between replicas (advisor.adapters.sql.feed) on SQLite and on a real PostgreSQL server, each
database opened twice as two replicas open it, with advisor.sample_sharing on top: what is added to one replica's
samples is in the other's after an exchange of each, once, and not published back."""

from __future__ import annotations

import math

from advisor.adapters.sql.feed import SampleFeed
from advisor.domain.model import HostSample, VmSample
from advisor.sample_sharing import SharedSamples
from tests.contract.test_databases import Open, open_database  # noqa: F401 - the fixture

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
