"""Target-host choice for one VM: PABFD (CloudSim), MFPED (Moges & Abebe 2019) and first fit (CloudSim's Simple).

All three scan hosts in index order over the same suitability test as CloudSim's findHostForVm: not excluded,
a PE large enough for the VM's per-PE request, enough available MIPS (and, while VMs are being created, RAM and
bandwidth); PABFD and MFPED also skip a non-empty host that the detector would call overloaded with the VM added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from advisor.simulation.arrays import BoolArray, IntArray
from advisor.simulation.detectors import Detector
from advisor.simulation.power import power_w
from advisor.simulation.working import WorkingCluster

NO_HOST = -1


class Placement(Protocol):
    @property
    def name(self) -> str: ...

    def choose(self, work: WorkingCluster, vm: int, excluded: BoolArray, detector: Detector) -> int:
        """The target host for `vm`, or NO_HOST."""
        ...


def suitable(work: WorkingCluster, vm: int, excluded: BoolArray, *, check_ram: bool = False) -> IntArray:
    """Hosts that can take the VM now (CloudSim's Host.isSuitableForVm), in index order."""
    ok = ~excluded & (work.pe_mips >= work.req_pe[vm]) & (work.available >= work.req_total[vm])
    if work.instantiating or check_ram:
        ok &= work.ram_free >= work.vm_ram_mb[vm]
    if work.instantiating:
        ok &= work.bw_free >= work.vm_bw_mbit_s[vm]
    idle = ok & work.idle
    if idle.sum() > work.n_types:
        # Idle hosts of one type are interchangeable and every rule here breaks ties by index: keep the first.
        ok &= ~idle
        ok[work.first_idle_of_type(idle)] = True
    hosts: IntArray = np.flatnonzero(ok)
    return hosts


def first_not_overloaded(work: WorkingCluster, vm: int, ordered: IntArray, detector: Detector, chunk: int = 16) -> int:
    """The first host of `ordered` that would not be overloaded with the VM (empty hosts are never checked, as in
    CloudSim). Equal to filtering every host and taking the best, but the detector runs on a few hosts only."""
    busy = work.alloc_used[ordered] != 0
    for start in range(0, ordered.shape[0], chunk):
        hosts, check = ordered[start : start + chunk], busy[start : start + chunk]
        ok = np.ones(hosts.shape, dtype=bool)
        if check.any():
            ok[check] = ~detector.overloaded(work.load(hosts[check], plus_vm=vm))
        if ok.any():
            return int(hosts[int(np.argmax(ok))])
    return NO_HOST


@dataclass(frozen=True)
class PowerAwareBestFit:
    """PABFD: the least power increase, P(used + request) - P(utilisation measured at the update).

    The baseline is CloudSim's host.getPower(), the measured (stale) utilisation, so a switched-off host costs
    only its dynamic power; ties go to the lowest host index. `check_ram` adds the RAM test CloudSim skips.
    """

    check_ram: bool = False
    name: str = "pabfd"

    def choose(self, work: WorkingCluster, vm: int, excluded: BoolArray, detector: Detector) -> int:
        hosts = suitable(work, vm, excluded, check_ram=self.check_ram)
        if hosts.size == 0:
            return NO_HOST
        after = (work.alloc_used[hosts] + work.req_total[vm]) / work.total_mips[hosts]
        increase = power_w(work.power_tables[hosts], after) - work.stale_power[hosts]
        return first_not_overloaded(work, vm, hosts[np.argsort(increase, kind="stable")], detector)


@dataclass(frozen=True)
class MediumFit:
    """MFPED: the host whose measured utilisation is closest to `target`; ties to more MIPS per watt at full power.

    Like the authors' CloudSim class (fikrufeleke/vmplacement), the utilisation is host.getUtilizationOfCpu(),
    measured at the update, so several VMs of one round can land on the same host.
    """

    target: float = 0.6
    check_ram: bool = False
    name: str = "mfped"

    def choose(self, work: WorkingCluster, vm: int, excluded: BoolArray, detector: Detector) -> int:
        hosts = suitable(work, vm, excluded, check_ram=self.check_ram)
        if hosts.size == 0:
            return NO_HOST
        distance = np.abs(work.stale_util[hosts] - self.target)
        efficiency = work.total_mips[hosts] / work.max_power_w[hosts]
        return first_not_overloaded(work, vm, hosts[np.lexsort((hosts, -efficiency, distance))], detector)


@dataclass(frozen=True)
class FirstFit:
    """The first suitable host (CloudSim's PowerVmAllocationPolicySimple); no overload check."""

    check_ram: bool = False
    name: str = "first-fit"

    def choose(self, work: WorkingCluster, vm: int, excluded: BoolArray, detector: Detector) -> int:
        hosts = suitable(work, vm, excluded, check_ram=self.check_ram)
        return int(hosts[0]) if hosts.size else NO_HOST


def place_all(snapshot_work: WorkingCluster, placement: Placement, detector: Detector) -> IntArray:
    """Initial placement: every VM in index order, each added before the next is placed (CloudSim's VM creation)."""
    n_vms = int(snapshot_work.req_total.shape[0])
    excluded = np.zeros(snapshot_work.total_mips.shape[0], dtype=bool)
    hosts = np.full(n_vms, NO_HOST, dtype=np.int64)
    for vm in range(n_vms):
        host = placement.choose(snapshot_work, vm, excluded, detector)
        if host != NO_HOST:
            snapshot_work.add(vm, host)
        hosts[vm] = host
    return hosts
