"""Inventory and samples coming in, as values: a push is strict (one bad item rejects the whole batch, naming the
field, and leaves no trace), a pull is lenient (what cannot be used is skipped and counted by reason)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from advisor.domain import pushes
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import InvalidArgument, NotFound
from advisor.domain.model import Host, HostSample, Vm, VmSample
from advisor.domain.pushes import CHECKED_BETWEEN_PAUSES, MAX_HOSTS_PER_PUSH
from tests.unit.usecases.world import World, hosts, world


@pytest.fixture
def w() -> World:
    w = world()
    w.push(hosts("a", "b"), [Vm("v1", "a", 4096, 2), Vm("v2", "b", 2048, 1)])
    return w


def gauge(w: World, name: str, labels: dict[str, str] | None = None) -> float | None:
    return w.metrics.registry.get_sample_value(name, labels or {})


def test_a_push_is_stored_and_counted(w: World) -> None:
    w.ingestion.push_inventory(InventoryChange(vms=(Vm("v3", "b", 1024, 1),), removed_vm_ids=("v1",)))
    assert sorted(w.inventory.vms()) == ["v2", "v3"]
    assert sorted(v.id for v in w.store.load_inventory()[1]) == ["v2", "v3"]  # storage holds the same
    assert gauge(w, "advisor_inventory", {"kind": "vm"}) == 2 and gauge(w, "advisor_inventory", {"kind": "host"}) == 2
    assert w.ingestion.known_ids() == (["a", "b"], ["v2", "v3"])


@pytest.mark.parametrize(("change", "error"), [
    (InventoryChange(hosts=(Host("c", 0, 1024),)), r"hosts\[0\].cpu_cores"),
    (InventoryChange(hosts=(Host("c", 8, 1024, hypervisor_uri="ssh://root@c"),)),
     r"hosts\[0\].hypervisor_uri"),
    (InventoryChange(vms=(Vm("v3", "a", 1024, 1), Vm("v4", "a", 0, 1))), r"vms\[1\].memory_mib"),
    (InventoryChange(vms=(Vm("v3", "a", 1024, 1, labels={"advisor.automation": "sometimes"}),)),
     r"vms\[0\].labels: label advisor.automation must be one of"),
    (InventoryChange(removed_vm_ids=("v1", "")), r"removed_vm_ids\[1\]"),
    (InventoryChange(hosts=tuple(Host(f"h{i}", 8, 1024) for i in range(MAX_HOSTS_PER_PUSH + 1))),
     "hosts: at most 10000 per push"),
])
def test_one_bad_item_rejects_the_whole_push_naming_it(w: World, change: InventoryChange, error: str) -> None:
    before = w.store.load_inventory()
    with pytest.raises(InvalidArgument, match=error):
        w.ingestion.push_inventory(change)
    assert w.store.load_inventory() == before and w.inventory.counts() == (2, 2)


def test_pushed_samples_are_checked_against_the_inventory(w: World) -> None:
    now = w.clock()
    with pytest.raises(NotFound, match=r"host_samples\[0\].host_id"):
        w.ingestion.push_samples([HostSample("nowhere", now, cpu_utilization=0.5)], [])
    with pytest.raises(InvalidArgument, match=r"vm_samples\[0\].memory_used_mib: 4097 exceeds the VM's 4096 MiB"):
        w.ingestion.push_samples([], [VmSample("v1", now, memory_used_mib=4097)])
    with pytest.raises(InvalidArgument, match=r"vm_samples\[1\].working_set_mib: 2049 exceeds the VM's 2048 MiB"):
        w.ingestion.push_samples([], [VmSample("v1", now, working_set_mib=4096),
                                      VmSample("v2", now, working_set_mib=2049)])
    with pytest.raises(InvalidArgument, match=r"host_samples\[0\].memory_used_mib: 40000 exceeds the host's 32768 MiB"):
        w.ingestion.push_samples([HostSample("a", now, memory_used_mib=40_000)], [])
    with pytest.raises(InvalidArgument, match=r"vm_samples\[1\]: same VM and time as vm_samples\[0\]"):
        w.ingestion.push_samples([], [VmSample("v1", now, cpu_utilization=0.1), VmSample("v1", now)])
    with pytest.raises(InvalidArgument, match=r"host_samples\[0\].time: must be between"):
        w.ingestion.push_samples([HostSample("a", now + 3600, cpu_utilization=0.5)], [])
    assert w.samples.host_latest("a", "cpu_utilization") is None  # nothing of the rejected batches
    w.ingestion.push_samples([HostSample("a", now, cpu_utilization=0.5)], [VmSample("v1", now, dirty_rate_mib_s=3)])
    latest = w.samples.host_latest("a", "cpu_utilization")
    assert latest is not None and latest.value == 0.5
    assert gauge(w, "advisor_samples_ingested_total", {"kind": "vm"}) == 1


def test_pulled_samples_that_cannot_be_used_are_skipped_and_counted(w: World) -> None:
    now = w.clock()
    skipped = w.ingestion.ingest_pulled(
        [HostSample("a", now, cpu_utilization=0.4, memory_used_mib=40_000),
         HostSample("gone", now, cpu_utilization=0.4), HostSample("b", now, cpu_utilization=7.0)],
        [VmSample("v1", now, memory_used_mib=5000.0), VmSample("ghost", now), VmSample("v2", now, dirty_rate_mib_s=-1)])
    assert skipped == {"unknown_host": 1, "invalid": 2, "unknown_vm": 1}
    used = w.samples.vm_latest("v1", "memory_used_mib")
    assert used is not None and used.value == 4096  # a balloon figure above the VM's size: its size
    host_used = w.samples.host_latest("a", "memory_used_mib")
    assert host_used is not None and host_used.value == 32768  # likewise a host's
    assert w.samples.vm_latest("v2", "dirty_rate_mib_s") is None
    assert w.ingestion.ingest_pulled([], [VmSample("v2", now + 1, dirty_rate_mib_s=1.0),
                                          VmSample("v2", now + 1, dirty_rate_mib_s=2.0)]) == {}
    rate = w.samples.vm_latest("v2", "dirty_rate_mib_s")
    assert rate is not None and rate.value == 2.0  # of one VM at one time, the last pulled


def test_a_removed_vm_takes_its_samples_with_it(w: World) -> None:
    w.ingestion.push_samples([], [VmSample("v1", w.clock(), cpu_utilization=0.3)])
    w.ingestion.push_inventory(InventoryChange(removed_vm_ids=("v1",)))
    assert w.samples.vm_latest("v1", "cpu_utilization") is None
    w.ingestion.push_inventory(InventoryChange(vms=(Vm("v1", "a", 4096, 2),)))
    assert w.samples.vm_latest("v1", "cpu_utilization") is None  # back without its old samples
    assert [h.id for h in w.ingestion.hosts_with_hypervisor()] == ["a", "b"]


def test_a_vm_removed_while_its_samples_are_stored_does_not_get_them_back(w: World) -> None:
    """The checks and the storing of a batch run without the inventory's lock: a removal (which forgets the VM's
    samples) can come between them, and the batch's samples are then forgotten again."""
    store = w.samples.add

    def removed_meanwhile(host_samples: Sequence[HostSample], vm_samples: Sequence[VmSample]) -> None:
        w.ingestion.push_inventory(InventoryChange(removed_vm_ids=("v1",)))
        store(host_samples, vm_samples)

    w.samples.add = removed_meanwhile  # type: ignore[method-assign]
    w.ingestion.push_samples([], [VmSample("v1", w.clock(), cpu_utilization=0.3),
                                  VmSample("v2", w.clock(), cpu_utilization=0.4)])
    assert w.samples.vm_latest("v1", "cpu_utilization") is None
    latest = w.samples.vm_latest("v2", "cpu_utilization")
    assert latest is not None and latest.value == pytest.approx(0.4, rel=2**-11)  # float16


def test_a_large_batch_is_checked_in_pieces_with_a_pause_between_them() -> None:
    """`check_samples` pauses every CHECKED_BETWEEN_PAUSES samples (where a server gives way to urgent calls), and
    still finds a sample repeated across pieces."""
    vm = Vm("v1", "a", 4096, 2)
    samples = [VmSample("v1", 1_796_000_000.0 + i) for i in range(2 * CHECKED_BETWEEN_PAUSES + 1)]
    checked_when_paused: list[int] = []
    pushes.check_samples([], samples, (set(), {"v1": vm}), 1_796_100_000.0,
                         pause=lambda: checked_when_paused.append(len(checked_when_paused)))
    assert len(checked_when_paused) == 3  # before samples 0, 500 and 1,000
    with pytest.raises(InvalidArgument, match=rf"vm_samples\[{len(samples)}\]: same VM and time as vm_samples\[0\]"):
        pushes.check_samples([], [*samples, samples[0]], (set(), {"v1": vm}), 1_796_100_000.0)
