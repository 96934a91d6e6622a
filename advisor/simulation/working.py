"""A policy's what-if copy of a snapshot, with CloudSim's tentative vmCreate / vmDestroy semantics.

CloudSim's optimizeAllocation moves VMs around on the real hosts while it decides and restores them afterwards;
what it compares during that time is mixed: host power and the underload order use the utilisation measured at
the update ("stale"), while suitability, power after allocation and the overload checks see the tentative
changes. This class keeps both, so that the policies built on it decide as CloudSim does.
"""

from __future__ import annotations

import numpy as np

from advisor.simulation.allocation import IN, OUT, allocate, allocate_one
from advisor.simulation.arrays import BoolArray, FloatArray, IntArray
from advisor.simulation.detectors import HostLoad
from advisor.simulation.interface import Snapshot
from advisor.simulation.power import power_w


class WorkingCluster:
    """Mutable per-host aggregates over `members` (VM ids per host in vmList order, VMs migrating in included)."""

    def __init__(self, snapshot: Snapshot) -> None:
        dc = snapshot.datacenter
        self.snapshot = snapshot
        self.total_mips = np.asarray(dc.total_mips)
        self.pe_mips = np.asarray(dc.pe_mips)
        self.bw_mbit_s = np.asarray(dc.bw_mbit_s)
        self.power_tables = np.asarray(dc.power_tables)
        self.max_power_w = np.asarray(dc.max_power_w)
        self.instantiating = snapshot.instantiating
        self.vm_total_mips = snapshot.vm_total_mips
        self.vm_pes = np.asarray(snapshot.vm_pes)
        self.vm_ram_mb = np.asarray(snapshot.vm_ram_mb)
        self.vm_bw_mbit_s = np.asarray(snapshot.vm_bw_mbit_s)
        self.req_total = np.asarray(snapshot.vm_requested_mips)
        self.req_pe = self.req_total / self.vm_pes
        self.history = np.asarray(snapshot.vm_history)
        self.history_mips = self.history * self.vm_total_mips[:, None]
        self.migrating = np.array(snapshot.vm_migrating)
        self.stale_util = snapshot.host_utilization
        self.stale_power = power_w(self.power_tables, self.stale_util)
        n_hosts = dc.n_hosts
        self.members: list[list[int]] = [[] for _ in range(n_hosts)]
        self.inbound: list[set[int]] = [set() for _ in range(n_hosts)]
        hosts, vms, kinds = snapshot.residency_host, snapshot.residency_vm, snapshot.residency_kind
        for h, v, k in zip(hosts.tolist(), vms.tolist(), kinds.tolist(), strict=True):
            self.members[h].append(v)
            if k == IN:
                self.inbound[h].add(v)
        alloc = allocate(hosts, kinds, self.req_pe[vms], self.vm_pes[vms], self.pe_mips, self.total_mips)
        used = np.where(kinds == IN, alloc.allocated * 0.9 / 0.1 + alloc.allocated, alloc.allocated)
        self.alloc_used = np.bincount(hosts, weights=used, minlength=n_hosts).astype(np.float64)
        self.available = alloc.host_available.copy()
        self.req_sum = np.bincount(hosts, weights=self.req_total[vms], minlength=n_hosts).astype(np.float64)
        self.hist_sum = np.zeros((n_hosts, self.history.shape[1]))
        np.add.at(self.hist_sum, hosts, self._contribution(vms, hosts))
        self.max_ram = np.zeros(n_hosts)
        np.maximum.at(self.max_ram, hosts, self.vm_ram_mb[vms])
        self.type_of = np.asarray(dc.type_of)
        self.n_types = len(dc.types)
        self.type_masks = [self.type_of == t for t in range(self.n_types)]
        self.idle = np.array([not m for m in self.members]) & (self.stale_util == 0)
        self.ram_free = np.asarray(dc.ram_mb, dtype=np.float64) - np.bincount(
            hosts, weights=self.vm_ram_mb[vms], minlength=n_hosts
        )
        self.bw_free = np.asarray(dc.bw_mbit_s, dtype=np.float64).copy()

    def _contribution(self, vms: IntArray, hosts: IntArray) -> FloatArray:
        """CloudSim's host history term: VM utilisation x VM MIPS / host MIPS."""
        term: FloatArray = self.history_mips[vms] / self.total_mips[hosts, None]
        return term

    def load(self, hosts: IntArray, plus_vm: int | None = None) -> HostLoad:
        """Detector input for `hosts`, optionally as if `plus_vm` had just been added to each of them."""
        history = self.hist_sum[hosts]
        requested = self.req_sum[hosts]
        max_ram = self.max_ram[hosts]
        if plus_vm is not None:
            history = history + self.history_mips[plus_vm] / self.total_mips[hosts, None]
            requested = requested + self.req_total[plus_vm]
            max_ram = np.maximum(max_ram, self.vm_ram_mb[plus_vm])
        return HostLoad(history, requested / self.total_mips[hosts], max_ram, self.bw_mbit_s[hosts])

    def first_idle_of_type(self, mask: BoolArray) -> IntArray:
        """The lowest-index host of each type among `mask`."""
        chosen = [int(np.argmax(m)) for t in self.type_masks if (m := mask & t).any()]
        return np.array(chosen, dtype=np.int64)

    def add(self, vm: int, host: int) -> None:
        """vmCreate: append the VM and allocate its current request."""
        self.members[host].append(vm)
        self.idle[host] = False
        capped = min(float(self.req_pe[vm]), float(self.pe_mips[host])) * int(self.vm_pes[vm])
        self.ram_free[host] -= self.vm_ram_mb[vm]
        if self.instantiating:  # being instantiated: full MIPS, RAM and BW reserved; placed VMs request 0 after
            self.alloc_used[host] += capped
            self.available[host] -= capped
            self.bw_free[host] -= self.vm_bw_mbit_s[vm]
            return
        if self.available[host] >= capped:
            self.alloc_used[host] += capped
            self.available[host] -= capped
        else:
            self._allocate(host)
        self.req_sum[host] += self.req_total[vm]
        self.hist_sum[host] += self.history_mips[vm] / self.total_mips[host]
        self.max_ram[host] = max(self.max_ram[host], self.vm_ram_mb[vm])

    def remove(self, vm: int, host: int) -> None:
        """vmDestroy: drop the VM; CloudSim then re-allocates and re-sums the host from its remaining VMs."""
        self.members[host].remove(vm)
        self.ram_free[host] += self.vm_ram_mb[vm]
        self._allocate(host)
        members = self.members[host]
        self.idle[host] = not members and self.stale_util[host] == 0
        total = 0.0
        for v in members:
            total += float(self.req_total[v])
        self.req_sum[host] = total
        # a reduction over axis 0 adds row after row, i.e. in vmList order like CloudSim
        self.hist_sum[host] = (self.history_mips[members] / self.total_mips[host]).sum(axis=0) if members else 0.0
        self.max_ram[host] = max((float(self.vm_ram_mb[v]) for v in members), default=0.0)

    def _allocate(self, host: int) -> None:
        members = self.members[host]
        kinds = [IN if v in self.inbound[host] else OUT if self.migrating[v] else 0 for v in members]
        allocs, available = allocate_one(
            kinds,
            [float(self.req_pe[v]) for v in members],
            [int(self.vm_pes[v]) for v in members],
            float(self.pe_mips[host]),
            float(self.total_mips[host]),
        )
        used = 0.0
        for a, k in zip(allocs, kinds, strict=True):
            if k == IN:
                used += a * 0.9 / 0.1
            used += a
        self.alloc_used[host] = used
        self.available[host] = available

    def migratable(self, host: int) -> list[int]:
        """VMs on the host that are not migrating (in or out), in vmList order."""
        return [v for v in self.members[host] if not self.migrating[v]]

    def all_migrating_out_or_any_in(self, host: int) -> bool:
        """CloudSim's areAllVmsMigratingOutOrAnyVmMigratingIn, literally (True for an empty host)."""
        for v in self.members[host]:
            if not self.migrating[v]:
                return False
            if v in self.inbound[host]:
                return True
        return True
