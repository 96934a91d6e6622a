"""The cluster snapshot as a value: built once however many callers wait for the first one, then updated by
inventory pushes and samples (equal to a snapshot built whole), and read without waiting behind a writer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from advisor.adapters.memory import ManualClock, MemoryStore
from advisor.domain.cluster import InventoryChange
from advisor.domain.model import Disk, Host, HostSample, Vm, VmSample
from advisor.features.samples import RecentSamples
from advisor.planning.engine import from_domain
from advisor.planning.engine.domain_arrays import Tracked
from advisor.usecases.inventory import Inventory
from advisor.usecases.priority import Priority
from advisor.usecases.snapshots import Snapshots
from tests.unit.planning_engine.test_tracked import assert_same

HOSTS = (Host("a", 16, 32768), Host("b", 16, 32768))
VMS = (Vm("v1", "a", 4096, 2), Vm("v2", "b", 2048, 1), Vm("v3", "a", 1024, 1))


class Parts:
    """An inventory, samples and a clock, with the `unmovable` hook the snapshot calls once per snapshot made."""

    def __init__(self, hook: Callable[[], None] = lambda: None, kept_changes: int = 256) -> None:
        self.inventory = Inventory(MemoryStore(), kept_changes=kept_changes)
        self.inventory.apply(InventoryChange(hosts=HOSTS, vms=VMS))
        self.samples = RecentSamples()
        self.clock = ManualClock()
        self.made = 0
        self._hook = hook

    def unmovable(self) -> frozenset[str]:
        self.made += 1
        self._hook()
        return frozenset({"v3"})

    def snapshots(self) -> Snapshots:
        return Snapshots(self.inventory, self.samples, self.clock, unmovable=self.unmovable)

    def whole(self) -> Any:
        """The snapshot built whole from the inventory and samples as they are."""
        hosts, vms = list(self.inventory.hosts().values()), list(self.inventory.vms().values())
        host_cpu = {h.id: s.value for h in hosts if (s := self.samples.host_latest(h.id, "cpu_utilization"))}
        vm_cpu = {v.id: s.value for v in vms if (s := self.samples.vm_latest(v.id, "cpu_utilization"))}
        dirty = {v.id: s.value for v in vms if (s := self.samples.vm_latest(v.id, "dirty_rate_mib_s"))}
        used = {v.id: s.value for v in vms if (s := self.samples.vm_latest(v.id, "memory_used_mib")) and s.value > 0}
        written = {v.id: s.value for v in vms if (s := self.samples.vm_latest(v.id, "disk_write_rate_mib_s"))}
        resident = {v.id: s.value for v in vms if (s := self.samples.vm_latest(v.id, "resident_memory_mib"))}
        window = {v.id: s.value for v in vms if (s := self.samples.vm_latest(v.id, "working_set_mib"))}
        load = {h.id: s.value for h in hosts if (s := self.samples.host_latest(h.id, "load_per_cpu"))}
        return from_domain(hosts, vms, host_cpu, vm_cpu, vm_memory_used_mib=used, vm_dirty_rate_mib_s=dirty,
                           vm_disk_write_rate_mib_s=written, vm_resident_memory_mib=resident,
                           vm_working_set_mib=window, host_load_per_cpu=load, pinned={"v3"})


@pytest.fixture
def whole_builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the snapshots built whole (as opposed to updated)."""
    count = [0]
    build = Tracked.build

    def counted(*args: Any) -> Tracked:
        count[0] += 1
        return build(*args)

    monkeypatch.setattr(Tracked, "build", staticmethod(counted))
    yield count


def test_callers_waiting_for_the_first_snapshot_share_one_build(whole_builds: list[int]) -> None:
    callers = 8
    all_in = threading.Event()
    arrived = [0]
    lock = threading.Lock()
    # The build holds until every caller has come to ask, so that they all wait on it.
    parts = Parts(hook=lambda: all_in.wait(30) or pytest.fail("callers did not all arrive"))
    snapshots = parts.snapshots()
    results: list[Any] = [None] * callers

    def call(k: int) -> None:
        with lock:
            arrived[0] += 1
            if arrived[0] == callers:
                all_in.set()
        results[k] = snapshots.get()

    threads = [threading.Thread(target=call, args=(k,)) for k in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert parts.made == 1 and whole_builds[0] == 1
    assert all(r is results[0] for r in results)  # one snapshot served them all


def test_pushes_and_samples_update_the_snapshot_which_equals_one_built_whole(whole_builds: list[int]) -> None:
    parts = Parts()
    snapshots = parts.snapshots()
    first = snapshots.get()
    now = parts.clock()
    parts.samples.add([HostSample("a", now, cpu_utilization=0.5, load_per_cpu=1.5)],
                      [VmSample("v1", now, cpu_utilization=0.25, dirty_rate_mib_s=40.0, memory_used_mib=3000.0,
                                working_set_mib=120.0)])
    fresh = snapshots.fresh()
    assert_same(fresh, parts.whole())
    assert fresh.host_load_per_cpu[0] == 1.5 and fresh.vm_working_set_mib[0] == 120.0
    parts.inventory.apply(InventoryChange(vms=(Vm("v1", "b", 4096, 4), Vm("v4", "b", 1024, 1)),
                                          removed_vm_ids=("v2",)))
    parts.samples.forget(vm_ids=("v2",))
    updated = snapshots.current()  # the inventory moved on: a snapshot of it as it is now
    assert_same(updated, parts.whole())
    assert updated.vm_ids == ("v1", "v3", "v4") and first.vm_ids == ("v1", "v2", "v3")  # the old one left alone
    parts.inventory.apply(InventoryChange(hosts=(Host("c", 8, 16384),)))  # a host more: every row again
    assert_same(snapshots.fresh(), parts.whole())
    assert whole_builds[0] == 2


def test_the_first_snapshot_built_whole_reads_every_sample_as_one_built_from_the_domain() -> None:
    """Samples there before the first snapshot (memory in use of 0 is none; VMs with local disks, a write rate
    unknown and one sampled; what QEMU holds resident, one figure past the VM's memory and QEMU's most) are read
    into it as `from_domain` reads them."""
    parts = Parts()
    disks = (Disk("vda", 2048.0, 512.0, False, 4.0), Disk("vdb", 1024.0, 256.0, False), Disk("vdc", 10.0, 5.0, True))
    parts.inventory.apply(InventoryChange(vms=(Vm("v4", "b", 1024, 1, disks=disks),
                                               Vm("v5", "b", 1024, 1, disks=disks[:1]))))
    now = parts.clock()
    parts.samples.add([HostSample("a", now, cpu_utilization=0.5, load_per_cpu=0.75)],
                      [VmSample("v1", now, cpu_utilization=0.25, dirty_rate_mib_s=40.0, memory_used_mib=3000.0,
                                resident_memory_mib=3072.0, working_set_mib=150.0),
                       VmSample("v2", now, cpu_utilization=0.5, memory_used_mib=0.0, resident_memory_mib=81920.0),
                       VmSample("v5", now, disk_write_rate_mib_s=2.0)])
    first = parts.snapshots().get()
    assert_same(first, parts.whole())
    assert first.vm_memory_used_mib.tolist() == [3000.0, 2048.0, 1024.0, 1024.0, 1024.0]  # v2: as configured
    assert first.vm_local_disk_mib.tolist() == [0.0, 0.0, 0.0, 3072.0, 2048.0]
    assert first.vm_local_disk_used_mib.tolist() == [0.0, 0.0, 0.0, 768.0, 512.0]
    assert np.array_equal(first.vm_disk_write_rate_mib_s, [0.0, 0.0, 0.0, np.nan, 2.0], equal_nan=True)
    # v2's 80 GiB is past its 2 GiB and the 64 GiB QEMU's own can be: not of it as it is
    assert np.array_equal(first.vm_resident_memory_mib, [3072.0] + [np.nan] * 4, equal_nan=True)
    assert np.array_equal(first.vm_working_set_mib, [150.0] + [np.nan] * 4, equal_nan=True)
    assert np.array_equal(first.host_load_per_cpu, [0.75, np.nan], equal_nan=True)


def test_a_blind_dirty_rate_is_unknown_in_the_snapshot_as_advice_takes_it() -> None:
    """A busy guest reading ~0 at 1 s and over its longer window (one that rewrites the same values): its dirty
    rate is unknown (NaN: plans price it as fast as the link moves), in a snapshot built whole and in one updated;
    an idle guest's 0, or a busy one's longer window seeing writes, is believed."""
    parts = Parts()
    now = parts.clock()
    parts.samples.add([], [VmSample("v1", now, cpu_utilization=1.0, dirty_rate_mib_s=0.0, working_set_mib=0.0),
                           VmSample("v2", now, cpu_utilization=0.1, dirty_rate_mib_s=0.0, working_set_mib=0.0)])
    snapshots = parts.snapshots()
    assert np.array_equal(snapshots.get().vm_dirty_rate_mib_s, [np.nan, 0.0, np.nan], equal_nan=True)
    parts.clock.advance(1.0)
    parts.samples.add([], [VmSample("v1", parts.clock(), cpu_utilization=1.0, dirty_rate_mib_s=0.0,
                                    working_set_mib=8.0),
                           VmSample("v2", parts.clock(), cpu_utilization=0.9, dirty_rate_mib_s=0.0)])
    assert np.array_equal(snapshots.fresh().vm_dirty_rate_mib_s, [0.0, np.nan, np.nan], equal_nan=True)


def test_a_snapshot_far_behind_the_inventory_is_built_whole(whole_builds: list[int]) -> None:
    parts = Parts(kept_changes=2)
    snapshots = parts.snapshots()
    snapshots.get()
    for size in (1024, 2048):
        parts.inventory.apply(InventoryChange(vms=(Vm("v2", "b", size, 1),)))
    assert_same(snapshots.fresh(), parts.whole())
    assert whole_builds[0] == 1  # two changes behind: updated
    for size in (1024, 2048, 3072):
        parts.inventory.apply(InventoryChange(vms=(Vm("v2", "b", size, 1),)))
    assert parts.inventory.changes_since(parts.inventory.version - 3) is None  # only the last 2 are kept
    assert_same(snapshots.fresh(), parts.whole())
    assert whole_builds[0] == 2


def test_a_reader_never_waits_behind_a_writer() -> None:
    writing, release = threading.Event(), threading.Event()
    parts = Parts()
    snapshots = parts.snapshots()
    first = snapshots.get()

    def hold() -> None:  # the writer's update stops halfway until the test lets it go on
        writing.set()
        release.wait(30)

    parts._hook = hold
    parts.inventory.apply(InventoryChange(vms=(Vm("v4", "b", 1024, 1),)))
    writer = threading.Thread(target=snapshots.fresh)
    writer.start()
    assert writing.wait(30)
    read: list[Any] = []
    reader = threading.Thread(target=lambda: read.append(snapshots.get()))
    reader.start()
    reader.join(30)
    alive = reader.is_alive()
    release.set()
    writer.join(30)
    assert not alive and read == [first]  # the snapshot at hand, while the next one is prepared
    assert snapshots.get().vm_ids == ("v1", "v2", "v3", "v4")


def test_an_update_in_the_background_gives_way_to_urgent_calls_but_not_to_a_caller_wanting_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    priority, parts = Priority(max_wait_s=60), Parts()
    snapshots = Snapshots(parts.inventory, parts.samples, parts.clock, unmovable=parts.unmovable, priority=priority)
    snapshots.get()
    giving_way, updated = threading.Event(), threading.Event()
    give_way = priority.give_way

    def noted(unless: Callable[[], bool] = lambda: False) -> None:
        giving_way.set()
        give_way(unless)

    monkeypatch.setattr(priority, "give_way", noted)
    parts.inventory.apply(InventoryChange(vms=(Vm("v4", "b", 1024, 1),)))
    with priority.urgent():
        snapshots.get()  # stale: its update starts in the background, and gives way to this call
        assert giving_way.wait(30)
        assert snapshots._current is not None and snapshots._current.version < parts.inventory.version
        # another urgent call that needs a snapshot of now: the updater hands over at once rather than after 60 s
        def another() -> None:
            with priority.urgent():
                snapshots.fresh()
            updated.set()

        threading.Thread(target=another).start()
        assert updated.wait(30)
    assert snapshots.get().vm_ids == ("v1", "v2", "v3", "v4")


def test_a_snapshot_of_the_inventory_now_reads_again_only_the_samples_too_old() -> None:
    parts = Parts()
    snapshots = parts.snapshots()
    first = snapshots.get()
    now = parts.clock()
    parts.samples.add([], [VmSample("v3", now, cpu_utilization=0.5)])
    parts.inventory.apply(InventoryChange(vms=(Vm("v4", "b", 1024, 1),)))
    placed = snapshots.current()  # the push applied; v3's sample, newer than the snapshot at hand, left for later
    assert placed.vm_ids == ("v1", "v2", "v3", "v4")
    assert placed.vm_cpu[placed.vm_index("v3")] == first.vm_cpu[first.vm_index("v3")] != 0.5
    assert_same(snapshots.fresh(), parts.whole())  # ... and read by the next update
    parts.samples.add([], [VmSample("v2", now, cpu_utilization=0.5)])
    parts.clock.advance(6)  # the snapshot at hand is older than max_age_s: its samples are read again
    parts.inventory.apply(InventoryChange(vms=(Vm("v5", "b", 1024, 1),)))
    assert_same(snapshots.current(), parts.whole())
