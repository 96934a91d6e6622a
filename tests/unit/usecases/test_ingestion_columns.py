"""Pushed VM samples given as columns (advisor.features.sample_columns) are checked and stored as the same samples
given one object each: the same error, naming the same sample and field, nothing stored from a refused batch, and
the same rings from an accepted one."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from advisor.adapters.memory import ManualClock, MemoryStore
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import AdvisorError
from advisor.domain.model import Host, HostSample, Vm, VmSample
from advisor.domain.pushes import MAX_SAMPLES_PER_PUSH
from advisor.domain.uris import UriPolicy
from advisor.domain.validation import MAX_RESIDENT_MEMORY_MIB
from advisor.features.sample_columns import MEASURED, VmColumns
from advisor.features.samples import RecentSamples
from advisor.metrics import AdvisorMetrics
from advisor.usecases.ingestion import Ingestion
from advisor.usecases.inventory import Inventory

NOW = ManualClock().now_s
VMS = {"v1": 4096, "v2": 2048}


def columns(samples: Sequence[VmSample]) -> VmColumns:
    return VmColumns([s.vm_id for s in samples], np.array([s.time_s for s in samples], dtype=np.float64),
                     np.array([[math.nan if (v := getattr(s, name)) is None else v for name in MEASURED]
                               for s in samples], dtype=np.float64).reshape(len(samples), len(MEASURED)))


class Advisor:
    def __init__(self) -> None:
        self.inventory = Inventory(MemoryStore())
        self.inventory.apply(InventoryChange(hosts=(Host("a", 8, 32768),),
                                             vms=tuple(Vm(v, "a", mib, 2) for v, mib in VMS.items())))
        self.samples = RecentSamples(capacity=4)
        self.metrics = AdvisorMetrics(CollectorRegistry())
        self.ingestion = Ingestion(self.inventory, self.samples, self.metrics, ManualClock(), UriPolicy(()))

    def push(self, hosts: Sequence[HostSample], vms: Sequence[VmSample] | VmColumns) -> str:
        """'' if stored, else the error's class and text."""
        try:
            self.ingestion.push_samples(hosts, vms)
        except AdvisorError as error:
            return f"{type(error).__name__}: {error}"
        return ""

    def state(self) -> str:
        windows = [[a.tolist() for a in self.samples.vm_window(v)] for v in VMS]
        host = self.samples.host_latest("a", "cpu_utilization")
        counted = self.metrics.registry.get_sample_value("advisor_samples_ingested_total", {"kind": "vm"})
        return repr([windows, host, counted, self.samples.host_last_time("a")])  # NaN as "nan": equal


@st.composite
def vm_samples(draw: st.DrawFn) -> VmSample:
    """A sample of v1 (4096 MiB) or v2 (2048 MiB), at most one fault: one of the first eight kinds, or none (a
    resident figure above the VM's memory is not one: QEMU's own memory comes on top)."""
    fault = draw(st.integers(0, 12))
    vm_id = {0: "ghost", 1: "bad id"}.get(fault) or draw(st.sampled_from(["v1", "v2"]))
    time_s = {2: NOW + 601, 3: 900_000_000.0}.get(fault) or NOW - draw(st.integers(0, 7))  # a VM and time twice
    given = st.one_of(st.none(), st.floats(0, 1))
    cpu, memory, working_set = draw(given), draw(given), draw(given)
    memory = 4097.0 if fault == 4 else None if memory is None else memory * 2048
    working_set = 2049.0 if fault == 5 else None if working_set is None else working_set * 2048  # v1's: fine
    resident = 2 * MAX_RESIDENT_MEMORY_MIB if fault == 7 else draw(st.sampled_from([None, 0.0, 300.0, 5000.0]))
    return VmSample(vm_id, time_s, 1.5 if fault == 6 else cpu, memory, draw(st.sampled_from([None, 0.0, 20.0])),
                    working_set, resident_memory_mib=resident)


host_samples = st.builds(HostSample, st.sampled_from(["a", "a", "nowhere"]), st.sampled_from([NOW - 60, NOW]),
                         st.sampled_from([None, 0.5, 1.5]))


@settings(max_examples=200, deadline=None)
@given(st.lists(host_samples, max_size=2), st.lists(st.lists(vm_samples(), max_size=5), min_size=1, max_size=3))
def test_as_columns_or_one_by_one_the_same_errors_and_the_same_samples_stored(
        hosts: list[HostSample], pushes: list[list[VmSample]]) -> None:
    by_columns, by_objects = Advisor(), Advisor()
    for batch in pushes:
        assert by_columns.push(hosts, columns(batch)) == by_objects.push(hosts, batch)
        assert by_columns.state() == by_objects.state()


def test_a_refused_batch_names_its_first_fault_and_stores_nothing() -> None:
    advisor = Advisor()
    fine = VmSample("v1", NOW, cpu_utilization=0.5)
    for batch, error in [
        ([fine, VmSample("v2", NOW, memory_used_mib=2049.0)],
         "InvalidArgument: vm_samples[1].memory_used_mib: 2049 exceeds the VM's 2048 MiB"),
        ([fine, VmSample("ghost", NOW)], "NotFound: vm_samples[1].vm_id: unknown VM 'ghost'"),
        ([fine, fine], "InvalidArgument: vm_samples[1]: same VM and time as vm_samples[0]"),
        ([fine, VmSample("v2", NOW, dirty_rate_mib_s=-1.0)],
         "InvalidArgument: vm_samples[1].dirty_rate_mib_s: must be in [0, 200000] (got -1)"),
    ]:
        assert advisor.push([], columns(batch)) == advisor.push([], batch)
        assert advisor.push([], columns(batch)).startswith(error)
    too_many = [VmSample("v1", NOW - k) for k in range(MAX_SAMPLES_PER_PUSH + 1)]
    assert advisor.push([HostSample("nowhere", NOW)], columns(too_many)) == (
        "InvalidArgument: vm_samples: at most 50000 per push (got 50001)")  # before any host sample's check
    assert advisor.samples.vm_window("v1")[0].size == 0


def test_a_vm_removed_while_its_columns_are_stored_does_not_get_them_back() -> None:
    advisor = Advisor()
    store = advisor.samples.add_vm_columns

    def removed_meanwhile(batch: VmColumns) -> None:
        advisor.ingestion.push_inventory(InventoryChange(removed_vm_ids=("v1",)))
        store(batch)

    advisor.samples.add_vm_columns = removed_meanwhile  # type: ignore[method-assign]
    assert advisor.push([], columns([VmSample("v1", NOW, cpu_utilization=0.3),
                                     VmSample("v2", NOW, cpu_utilization=0.4)])) == ""
    assert advisor.samples.vm_latest("v1", "cpu_utilization") is None
    latest = advisor.samples.vm_latest("v2", "cpu_utilization")
    assert latest is not None and latest.value == pytest.approx(0.4, rel=2**-11)
