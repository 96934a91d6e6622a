"""The cluster as a plan leaves it so far (the planner's private copy of the loads, and who runs where)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from advisor.planning.engine.snapshot import ClusterArrays, FloatArray, IntArray
from advisor.planning.engine.weighers import IDLE_CORES, is_on, power_now

__all__ = ["Before", "Working"]


class Before(NamedTuple):
    """What a move changes, as it was before it (see `Working.before`)."""

    vm: int
    source: int
    target: int
    hosts: IntArray  # the source (when the VM has one) and the target
    columns: tuple[np.ndarray, ...]  # the host columns `move` writes, at `hosts`


class Working:
    """The cluster as the plan leaves it so far: private loads and who runs where."""

    def __init__(self, cluster: ClusterArrays) -> None:
        self.cluster = cluster
        self.loads = cluster.loads.copy()
        where = self.loads.vm_host
        placed = np.flatnonzero(where >= 0)
        self._members = placed[np.argsort(where[placed], kind="stable")]
        self._ptr = np.zeros(cluster.n_hosts + 1, dtype=np.int64)
        np.cumsum(np.bincount(where[placed], minlength=cluster.n_hosts), out=self._ptr[1:])
        self._moved_in: dict[int, list[int]] = {}
        self.on = is_on(self.loads, np.arange(cluster.n_hosts))  # running hosts (a VM or a base load)
        self._span_w = cluster.host_max_w - cluster.host_idle_w
        loads = self.loads  # each host's power now (weighers.power_now), kept up to date by `move`
        self.power_w = power_now(cluster.host_idle_w, self._span_w, cluster.host_cores, loads.host_cpu, loads.host_vms)

    def vms_on(self, host: int) -> IntArray:
        where = self.loads.vm_host
        first = self._members[self._ptr[host] : self._ptr[host + 1]]
        here: IntArray = first[where[first] == host]
        extra = [v for v in self._moved_in.get(host, ()) if where[v] == host]
        if extra:
            here = np.concatenate([here, np.array(sorted(set(extra)), dtype=np.int64)])
        return here

    def move(self, vm: int, target: int) -> None:
        source = int(self.loads.vm_host[vm])
        self.loads.move(self.cluster, vm, target)
        self._moved_in.setdefault(target, []).append(vm)
        self.on[target] = True
        if source >= 0:
            self.on[source] = self.loads.host_vms[source] > 0 or self.loads.host_cpu[source] > IDLE_CORES  # is_on
        for host in (source, target) if source >= 0 else (target,):
            self.power_w[host] = self._power_of(host)

    def before(self, vm: int, target: int) -> Before:
        """What `move(vm, target)` is about to change, for `restore` to put back exactly: moving the VM back adds and
        subtracts the same amounts, which need not give back the same bits."""
        source = int(self.loads.vm_host[vm])
        hosts = np.array([target] if source < 0 else [source, target], dtype=np.int64)
        return Before(vm, source, target, hosts, tuple(column[hosts] for column in self._columns()))

    def restore(self, before: Before) -> None:
        """Undo the last move, which `before` saw coming, to the bit."""
        for column, values in zip(self._columns(), before.columns, strict=True):
            column[before.hosts] = values
        self.loads.vm_host[before.vm] = before.source
        self._moved_in[before.target].pop()

    def _columns(self) -> tuple[np.ndarray, ...]:
        loads = self.loads
        return (loads.host_vcpus, loads.host_memory_mib, loads.host_cpu, loads.host_vms, loads.host_disk_in_mib,
                self.on, self.power_w)

    def _power_of(self, host: int) -> float:
        """`power_now` of one host, in scalars: the same bits as over arrays, many times faster for one host."""
        c, loads = self.cluster, self.loads
        cpu = float(loads.host_cpu[host])
        if not (loads.host_vms[host] > 0 or cpu > IDLE_CORES):
            return 0.0
        load = min(max(cpu / float(c.host_cores[host]), 0.0), 1.0)
        return float(c.host_idle_w[host]) + float(self._span_w[host]) * load

    def cpu_ratio(self) -> FloatArray:
        ratio: FloatArray = self.loads.host_cpu / self.cluster.host_cores
        return ratio
