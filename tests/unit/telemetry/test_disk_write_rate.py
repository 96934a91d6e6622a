"""A guest's local disks' write rate, measured through its hypervisor (the fake, counting writes as libvirt's block
statistics do), stored as a VM sample and read by advice's inputs and by the planning snapshot; unknown (never 0)
until measured, and the inventory's figure where nothing was measured."""

from __future__ import annotations

import time

import numpy as np
import pytest

from advisor.adapters.fake_hypervisor import FakeWorld
from advisor.domain.cluster import InventoryChange
from advisor.domain.model import Disk, Host, Vm
from advisor.metrics import MIB_BYTES
from advisor.telemetry.collectors import dirty_rate_collector
from tests.unit.usecases.world import World, world

LOCAL = Disk("vda", 4096.0, 2048.0, False)
SHARED = Disk("vdb", 4096.0, 4096.0, True)
PUSHED = Disk("vda", 4096.0, 2048.0, False, 7.0)  # a write rate the inventory's pusher measured


def wired(*vms: Vm) -> tuple[World, FakeWorld]:
    w = world()
    w.clock.now_s = time.time()  # the fake counts in real time: samples must not be from the future
    fake = FakeWorld(("a", "b"))
    w.push([Host(h, 16, 32768, hypervisor_uri=f"fake://{h}") for h in ("a", "b")], vms)
    return w, fake


def collect(w: World, fake: FakeWorld) -> None:
    dirty_rate_collector(w.ingestion, fake.connect, frozenset, w.metrics, clock=time.time, readings=1,
                         working_set_every=0)()


def test_the_collector_measures_the_local_disks_write_rate_and_advice_and_plans_use_it() -> None:
    w, fake = wired(Vm("busy", "a", 1024, 1, disks=(LOCAL, SHARED)), Vm("calm", "a", 1024, 1, disks=(LOCAL,)))
    fake.add_guest("busy", "a", disk_write_rate_mib_s={"vda": 12.0, "vdb": 500.0})  # vdb is shared: not copied
    fake.add_guest("calm", "a", disk_write_rate_mib_s={"vda": 0.0})
    collector = dirty_rate_collector(w.ingestion, fake.connect, frozenset, w.metrics, clock=time.time, readings=1,
                                     working_set_every=0)
    collector()
    assert w.samples.vm_latest("busy", "disk_write_rate_mib_s") is None  # one reading of a counter: no rate
    assert w.advice.predict_cost("busy").inputs.disk_write_rate_mib_s is None
    time.sleep(0.3)
    collector()
    measured = w.samples.vm_latest("busy", "disk_write_rate_mib_s")
    assert measured is not None and measured.value == pytest.approx(12.0, rel=0.1)
    assert w.advice.predict_cost("busy").inputs.disk_write_rate_mib_s == pytest.approx(12.0, rel=0.1)
    calm = w.advice.predict_cost("calm").inputs
    assert calm.disk_write_rate_mib_s == 0.0  # measured idle: 0, a figure, not an unknown
    gauge = w.metrics.registry.get_sample_value("advisor_vm_disk_write_bytes_per_second", {"vm": "busy"})
    assert gauge == pytest.approx(12.0 * MIB_BYTES, rel=0.1)
    snap = w.snapshots.fresh()
    rates = dict(zip(snap.vm_ids, snap.vm_disk_write_rate_mib_s.tolist(), strict=True))
    assert rates["busy"] == pytest.approx(12.0, rel=0.1) and rates["calm"] == 0.0


def test_without_a_measurement_the_inventory_says_or_the_rate_stays_unknown() -> None:
    w, fake = wired(Vm("pushed", "a", 1024, 1, disks=(PUSHED,)), Vm("unknown", "a", 1024, 1, disks=(LOCAL,)))
    collect(w, fake)  # neither guest runs on the fake: nothing measured
    assert w.advice.predict_cost("pushed").inputs.disk_write_rate_mib_s == 7.0
    assert w.advice.predict_cost("unknown").inputs.disk_write_rate_mib_s is None
    snap = w.snapshots.fresh()
    rates = dict(zip(snap.vm_ids, snap.vm_disk_write_rate_mib_s.tolist(), strict=True))
    assert rates["pushed"] == 7.0 and np.isnan(rates["unknown"])


def test_a_guest_not_measured_this_round_leaves_the_exported_gauges() -> None:
    # Prometheus scrapes the gauges back as the guests' history: a figure left from an earlier round would read
    # as measured now, while the guest migrates (not measured then) or after it stopped.
    w, fake = wired(Vm("busy", "a", 1024, 1, disks=(LOCAL,)), Vm("calm", "a", 1024, 1))
    fake.add_guest("busy", "a", dirty_rate_mib_s=40.0, memory_used_mib=512.0, disk_write_rate_mib_s={"vda": 12.0})
    fake.add_guest("calm", "a", dirty_rate_mib_s=1.0, memory_used_mib=256.0)
    migrating: frozenset[str] = frozenset()
    collector = dirty_rate_collector(w.ingestion, fake.connect, lambda: migrating, w.metrics, clock=time.time,
                                     readings=1, working_set_every=0)
    collector()
    time.sleep(0.2)
    collector()
    read = w.metrics.registry.get_sample_value
    names = ("advisor_vm_dirty_rate_bytes_per_second", "advisor_vm_cpu_ratio", "advisor_vm_memory_used_bytes")
    assert all(read(name, {"vm": "busy"}) is not None for name in names)
    assert read("advisor_vm_disk_write_bytes_per_second", {"vm": "busy"}) is not None
    migrating = frozenset({"busy"})
    collector()
    assert read("advisor_vm_dirty_rate_bytes_per_second", {"vm": "busy"}) is None
    assert read("advisor_vm_dirty_rate_bytes_per_second", {"vm": "calm"}) is not None
    del fake.guests["busy"]  # stopped
    collector()
    assert all(read(name, {"vm": "busy"}) is None for name in (*names, "advisor_vm_disk_write_bytes_per_second"))
    assert read("advisor_vm_cpu_ratio", {"vm": "calm"}) is not None


def test_a_host_gone_from_the_inventory_is_no_longer_said_up_or_down() -> None:
    w, fake = wired()
    collector = dirty_rate_collector(w.ingestion, fake.connect, frozenset, w.metrics, clock=time.time, readings=1,
                                    working_set_every=0)
    collector()
    read = w.metrics.registry.get_sample_value
    assert read("advisor_hypervisor_up", {"host": "a"}) == 1 and read("advisor_hypervisor_up", {"host": "b"}) == 1
    w.ingestion.push_inventory(InventoryChange(removed_host_ids=("b",)))
    collector()
    assert read("advisor_hypervisor_up", {"host": "a"}) == 1 and read("advisor_hypervisor_up", {"host": "b"}) is None
    w.ingestion.push_inventory(InventoryChange(removed_host_ids=("a",)))
    collector()  # no host left to read
    assert read("advisor_hypervisor_up", {"host": "a"}) is None
