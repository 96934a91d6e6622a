"""Listings of hosts and VMs as values: paged by id, each with its allocation and latest samples."""

from __future__ import annotations

import pytest

from advisor.domain.errors import InvalidArgument, NotFound
from advisor.domain.model import HostSample, Vm, VmSample
from tests.unit.usecases.world import World, hosts, world


@pytest.fixture
def w() -> World:
    w = world()
    w.push(hosts("h3", "h1", "h2"), [Vm(f"v{i}", "h1" if i < 4 else "h2", 1024 * i + 512, i + 1) for i in range(6)])
    return w


def test_hosts_are_paged_by_id_with_their_allocation_and_latest_cpu(w: World) -> None:
    now = w.clock()
    w.ingestion.push_samples([HostSample("h1", now - 10, cpu_utilization=0.2), HostSample("h1", now,
                                                                                       cpu_utilization=0.75)], [])
    first, token = w.queries.list_hosts(2)
    rest, end = w.queries.list_hosts(2, token)
    assert [v.host.id for v in first + rest] == ["h1", "h2", "h3"] and end == ""
    h1, h2, h3 = first + rest
    assert (h1.vm_count, h1.allocated_memory_mib, h1.allocated_vcpus) == (4, 512 * 4 + 1024 * 6, 10)
    assert (h1.cpu_utilization, h1.last_sample_s) == (0.75, now)  # float32 samples: exact in binary
    assert (h2.vm_count, h2.cpu_utilization, h2.last_sample_s) == (2, None, None)
    assert (h3.vm_count, h3.allocated_memory_mib) == (0, 0)


def test_vms_are_paged_by_id_all_or_of_one_host(w: World) -> None:
    now = w.clock()
    w.ingestion.push_samples([], [VmSample("v4", now, cpu_utilization=0.5, dirty_rate_mib_s=12.0)])
    all_vms, token = w.queries.list_vms(size=4)
    more, end = w.queries.list_vms(size=4, token=token)
    assert [v.vm.id for v in all_vms + more] == [f"v{i}" for i in range(6)] and end == ""
    on_h2, _ = w.queries.list_vms("h2")
    assert [(v.vm.id, v.cpu_utilization, v.dirty_rate_mib_s, v.last_sample_s) for v in on_h2] == [
        ("v4", 0.5, 12.0, now), ("v5", None, None, None)]
    with pytest.raises(InvalidArgument, match="page_token: is not a page token of this listing"):
        w.queries.list_vms("h2", 4, token)  # a token of the listing of every VM
    with pytest.raises(NotFound, match="host_id"):
        w.queries.list_vms("h9")
    with pytest.raises(InvalidArgument, match="page_size: must be in"):
        w.queries.list_hosts(100_000)
