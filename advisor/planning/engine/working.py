"""The cluster as a plan leaves it so far (the planner's private copy of the loads, and who runs where)."""

from __future__ import annotations

import numpy as np

from advisor.planning.engine.snapshot import ClusterArrays, FloatArray, IntArray
from advisor.planning.engine.weighers import IDLE_CORES, is_on, power_now

__all__ = ["Working"]


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
        self.power_w = self._power(np.arange(cluster.n_hosts))  # each host's power now (weighers.power_now)

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
        changed = np.array([target] if source < 0 else [source, target], dtype=np.int64)
        self.power_w[changed] = self._power(changed)

    def _power(self, hosts: IntArray) -> FloatArray:
        c, loads = self.cluster, self.loads
        return power_now(c.host_idle_w[hosts], self._span_w[hosts], c.host_cores[hosts], loads.host_cpu[hosts],
                         loads.host_vms[hosts])

    def cpu_ratio(self) -> FloatArray:
        ratio: FloatArray = self.loads.host_cpu / self.cluster.host_cores
        return ratio
