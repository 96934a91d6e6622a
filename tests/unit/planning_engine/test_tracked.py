"""A snapshot updated by inventory changes and new measurements equals one built whole from the same inventory and
measurements (random inventories and changes), and updating leaves the previous snapshot as it was."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.domain.cluster import InventoryChange
from advisor.domain.model import Disk, Host, Vm
from advisor.planning.engine import ClusterArrays, from_domain
from advisor.planning.engine.domain_arrays import Tracked
from advisor.planning.engine.measured import HostMeasurement, Measured, VmMeasurement

MODELS = ("", "", "", "icelake", "skylake")
GROUPS = ("db", "web")
NETWORKS = ("br0", "vlan-7", "sriov")


def assert_same(a: Any, b: Any, path: str = "arrays") -> None:
    """Equal field by field: arrays by value and dtype (NaN equal to NaN), nested dataclasses alike."""
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), path
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            if f.compare:
                assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    else:
        assert a == b, path


@st.composite
def a_host(draw: st.DrawFn, ident: str) -> Host:
    return Host(ident, draw(st.integers(1, 64)), draw(st.integers(1, 8)) * 1024,
                cpu_model=draw(st.sampled_from(MODELS)), labels={"cluster": draw(st.sampled_from("ab"))},
                in_maintenance=draw(st.booleans()), networks=draw(st.frozensets(st.sampled_from(NETWORKS))),
                local_disk_free_mib=draw(st.one_of(st.none(), st.integers(0, 4).map(lambda k: k * 10240.0))))


@st.composite
def a_vm(draw: st.DrawFn, ident: str, host_ids: list[str]) -> Vm:
    some = draw(st.integers(0, 4)) == 0
    groups = st.frozensets(st.sampled_from(GROUPS), max_size=1) if some else st.just(frozenset[str]())
    return Vm(ident, draw(st.sampled_from(host_ids)), draw(st.integers(1, 8)) * 512, draw(st.integers(1, 8)),
              cpu_model=draw(st.sampled_from(MODELS)), affinity_groups=draw(groups),
              anti_affinity_groups=draw(groups), postcopy_allowed=draw(st.booleans()),
              networks=draw(st.frozensets(st.sampled_from(NETWORKS), max_size=2)) if some else frozenset(),
              disks=(Disk("vda", draw(st.integers(1, 4)) * 4096.0, 1024.0, draw(st.booleans())),) if some else ())


def ratio_or_none() -> st.SearchStrategy[float]:
    return st.one_of(st.just(math.nan), st.floats(0, 1.2))


@st.composite
def a_measurement(draw: st.DrawFn) -> VmMeasurement:
    # dirty rates and windows near page sampling's floor too, where a reading is blind or at the floor
    return VmMeasurement(draw(ratio_or_none()), draw(st.one_of(st.just(math.nan), st.floats(0, 4096))),
                         draw(st.one_of(st.just(math.nan), st.floats(0, 5), st.floats(0, 500))),
                         draw(st.one_of(st.just(math.nan), st.floats(0, 200))),
                         draw(st.one_of(st.just(math.nan), st.floats(0, 100_000))),  # past a VM's and QEMU's most too
                         draw(st.one_of(st.just(math.nan), st.floats(0, 2), st.floats(0, 10_000))))


@st.composite
def a_host_measurement(draw: st.DrawFn) -> HostMeasurement:
    return HostMeasurement(draw(ratio_or_none()), draw(st.one_of(st.just(math.nan), st.floats(0, 4))))


@st.composite
def a_change(draw: st.DrawFn, hosts: dict[str, Host], vms: dict[str, Vm], serial: list[int]) -> InventoryChange:
    removed_vms = draw(st.lists(st.sampled_from(sorted(vms)), unique=True, max_size=3)) if vms else []
    empty_hosts = sorted(set(hosts) - {v.host_id for v in vms.values() if v.id not in removed_vms})
    removed_hosts = draw(st.lists(st.sampled_from(empty_hosts), unique=True, max_size=1)) if empty_hosts and (
        len(hosts) > 1) and draw(st.integers(0, 3)) == 0 else []
    pushed_hosts = []
    for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 2)) == 0 else 0):
        serial[0] += 1
        known = sorted(set(hosts) - set(removed_hosts))
        ident = draw(st.sampled_from([*known, f"h{serial[0]}"]))
        if ident not in {h.id for h in pushed_hosts}:
            pushed_hosts.append(draw(a_host(ident)))
    host_ids = sorted((set(hosts) - set(removed_hosts)) | {h.id for h in pushed_hosts})
    pushed_vms: list[Vm] = []
    for _ in range(draw(st.integers(0, 4))):
        serial[0] += 1
        candidates = [*sorted(set(vms) - set(removed_vms) - {v.id for v in pushed_vms}), f"v{serial[0]}"]
        pushed_vms.append(draw(a_vm(draw(st.sampled_from(candidates)), host_ids)))
    return InventoryChange(tuple(pushed_hosts), tuple(pushed_vms), tuple(removed_hosts), tuple(removed_vms))


def applied(change: InventoryChange, hosts: dict[str, Host], vms: dict[str, Vm]) -> None:
    """What the inventory does with a change, in the same order (a dict keeps a replaced key in its place)."""
    for vm_id in change.removed_vm_ids:
        del vms[vm_id]
    vms.update({v.id: v for v in change.vms})
    for host_id in change.removed_host_ids:
        del hosts[host_id]
    hosts.update({h.id: h for h in change.hosts})


def whole(hosts: dict[str, Host], vms: dict[str, Vm], host_measured: dict[str, HostMeasurement],
          measured: dict[str, VmMeasurement], pinned: frozenset[str]) -> ClusterArrays:
    def known(values: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in values.items() if not math.isnan(v)}

    return from_domain(list(hosts.values()), list(vms.values()), known({h: m.cpu for h, m in host_measured.items()}),
                       known({v: m.cpu for v, m in measured.items()}),
                       vm_memory_used_mib=known({v: m.memory_used_mib for v, m in measured.items()}),
                       vm_dirty_rate_mib_s=known({v: m.dirty_rate_mib_s for v, m in measured.items()}),
                       vm_disk_write_rate_mib_s=known({v: m.disk_write_rate_mib_s for v, m in measured.items()}),
                       vm_resident_memory_mib=known({v: m.resident_memory_mib for v, m in measured.items()}),
                       vm_working_set_mib=known({v: m.working_set_mib for v, m in measured.items()}),
                       host_load_per_cpu=known({h: m.load_per_cpu for h, m in host_measured.items()}),
                       pinned=pinned, cluster_label="cluster")


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_an_updated_snapshot_equals_one_built_whole(data: st.DataObject) -> None:
    hosts = {f"h{k}": data.draw(a_host(f"h{k}")) for k in range(data.draw(st.integers(1, 4)))}
    vms = {f"v{k}": data.draw(a_vm(f"v{k}", sorted(hosts))) for k in range(data.draw(st.integers(0, 8)))}
    host_cpu = {h: data.draw(a_host_measurement()) for h in hosts}
    measured = {v: data.draw(a_measurement()) for v in vms}
    pinned = frozenset(data.draw(st.lists(st.sampled_from(sorted(vms)), max_size=2))) if vms else frozenset()
    start = whole(hosts, vms, host_cpu, measured, pinned)
    tracked = Tracked.build(list(hosts.values()), list(vms.values()), Measured(
        np.array([host_cpu[h].cpu for h in hosts]), np.array([measured[v].cpu for v in vms]),
        np.array([measured[v].memory_used_mib for v in vms]), np.array([measured[v].dirty_rate_mib_s for v in vms]),
        np.array([measured[v].disk_write_rate_mib_s for v in vms]),
        np.array([measured[v].resident_memory_mib for v in vms]), np.array([measured[v].working_set_mib for v in vms]),
        np.array([host_cpu[h].load_per_cpu for h in hosts])), pinned, "cluster")
    assert_same(tracked.arrays, start)
    serial = [100]
    for _ in range(data.draw(st.integers(1, 4))):
        before, previous = whole(hosts, vms, host_cpu, measured, pinned), tracked
        change = data.draw(a_change(hosts, vms, serial))
        applied(change, hosts, vms)
        tracked = tracked.with_change(change)
        for vm_id in change.removed_vm_ids:
            del measured[vm_id]
        for host_id in change.removed_host_ids:
            del host_cpu[host_id]
        # Pushed entities are measured again (new ones have no samples yet), and a few others get new samples.
        sampled_hosts = data.draw(st.lists(st.sampled_from(sorted(hosts)), max_size=3))
        sampled_vms = data.draw(st.lists(st.sampled_from(sorted(vms)), max_size=3)) if vms else []
        fresh_hosts = {h: data.draw(a_host_measurement()) for h in [*(h.id for h in change.hosts), *sampled_hosts]}
        fresh_vms = {v: data.draw(a_measurement()) for v in [*(v.id for v in change.vms), *sampled_vms]}
        host_cpu.update(fresh_hosts)
        measured.update(fresh_vms)
        fresh_vms["not-a-vm"] = VmMeasurement(0.5, 1.0, 1.0)  # removed meanwhile: left out
        tracked = tracked.with_measurements(fresh_hosts, fresh_vms)
        pinned = frozenset(data.draw(st.lists(st.sampled_from(sorted(vms)), max_size=2))) if vms else frozenset()
        tracked = tracked.with_pinned(pinned)
        assert_same(tracked.arrays, whole(hosts, vms, host_cpu, measured, pinned))
        a = tracked.arrays  # and its id indexes, shared with the previous snapshot where the rows are the same
        assert [a.vm_index(v) for v in a.vm_ids] == list(range(a.n_vms))
        assert [a.host_index(h) for h in a.host_ids] == list(range(a.n_hosts))
        assert_same(previous.arrays, before)  # the snapshot readers hold is left alone


def test_a_push_of_known_vms_replaces_their_rows_and_keeps_their_measurements() -> None:
    hosts = [Host("a", 8, 16384), Host("b", 8, 16384)]
    vms = [Vm("v1", "a", 1024, 2), Vm("v2", "a", 1024, 2)]
    measured = Measured(np.array([0.5, np.nan]), np.array([0.5, np.nan]), np.array([512.0, np.nan]),
                        np.array([10.0, np.nan]), np.array([np.nan, np.nan]), np.array([1024.0, np.nan]),
                        np.array([64.0, np.nan]), np.array([1.5, np.nan]))
    tracked = Tracked.build(hosts, vms, measured, frozenset(), "")
    after = tracked.with_change(InventoryChange(vms=(Vm("v1", "b", 2048, 4), Vm("v3", "b", 1024, 1))))
    a = after.arrays
    assert a.vm_ids == ("v1", "v2", "v3") and a.vm_host.tolist() == [1, 0, 1]
    assert a.vm_memory_mib.tolist() == [2048.0, 1024.0, 1024.0]
    assert a.vm_memory_used_mib.tolist() == [512.0, 1024.0, 1024.0]  # v1's samples follow it; v3 has none yet
    assert a.vm_cpu.tolist() == [2.0, 2.0, 1.0]  # v1: 4 vCPUs at 50 %; v2, alone on a, takes what a leaves
    assert tracked.arrays.vm_ids == ("v1", "v2") and tracked.arrays.vm_host.tolist() == [0, 0]
