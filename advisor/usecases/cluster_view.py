"""The cluster at a glance: every host's CPU and memory load now and after a chosen recommendation's moves, the
VMs on it, and the migrations into and out of it, running and recent.

Loads are those the planner decides on (the snapshot's arrays: a host's measured CPU in cores busy, a VM not
measured yet counted at all its vCPUs; memory as allocated), so "after" here is what a recommendation's reasons
say "after the move". The moves are applied in order to a copy of the snapshot; a move the cluster has already
made (its VM on the target) or can no longer make (its VM or a host gone) is skipped and counted.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

from advisor.domain.migration import MigrationRecord
from advisor.domain.recommendation import Recommendation
from advisor.planning.engine import ClusterArrays

# The recent operations looked at (newest first), and the VMs listed per host (the rest are counted).
RECENT_OPERATIONS = 50
VMS_LISTED = 100


@dataclass(frozen=True)
class HostLoad:
    host_id: str
    cores: float
    memory_mib: float
    disabled: bool  # in maintenance or disabled: never a target
    cpu_ratio: float | None  # cores busy / cores; None where not known
    memory_ratio: float  # memory allocated to its VMs / memory
    vm_count: int
    vm_ids: tuple[str, ...]  # the first VMS_LISTED, by id
    cpu_ratio_after: float | None = None  # after the recommendation's moves; None without one
    memory_ratio_after: float | None = None
    vm_count_after: int | None = None
    running: tuple[MigrationRecord, ...] = ()  # under way into or out of the host
    recent: tuple[MigrationRecord, ...] = ()  # ended, among the last RECENT_OPERATIONS operations


@dataclass(frozen=True)
class ClusterLoads:
    hosts: tuple[HostLoad, ...]
    recommendation: Recommendation | None  # whose moves "after" applies
    moves_applied: int
    moves_skipped: int


def _ratio(value: float, capacity: float) -> float | None:
    return None if capacity <= 0 or math.isnan(value) else float(value / capacity)


class ClusterView:
    def __init__(self, snapshot: Callable[[], ClusterArrays], get_recommendation: Callable[[str], Recommendation],
                 operations: Callable[[bool, int], list[MigrationRecord]]) -> None:
        self._snapshot = snapshot  # the planner's snapshot of the inventory as it is now (Snapshots.current)
        self._get = get_recommendation  # Review.get: checks the id, NotFound when unknown
        self._operations = operations  # (running only, how many) -> operations newest first

    def loads(self, recommendation_id: str = "") -> ClusterLoads:
        cluster = self._snapshot()
        rec = self._get(recommendation_id) if recommendation_id else None
        after, applied, skipped = cluster, 0, 0
        if rec is not None:
            vms, targets = [], []
            for move in rec.moves:
                try:
                    vm, source = cluster.vm_index(move.vm_id), cluster.host_index(move.source_host_id)
                    target = cluster.host_index(move.target_host_id)
                except KeyError:
                    skipped += 1
                    continue
                if int(cluster.vm_host[vm]) != source:
                    skipped += 1  # made already, or the VM moved elsewhere since
                    continue
                vms.append(vm)
                targets.append(target)
            after, applied = cluster.with_moves(vms, targets), len(vms)
        running, recent = self._by_host(True), self._by_host(False)
        on_host: dict[int, list[str]] = defaultdict(list)
        for vm, host in enumerate(cluster.vm_host.tolist()):
            on_host[host].append(cluster.vm_ids[vm])
        hosts = []
        for i, host_id in enumerate(cluster.host_ids):
            cores, memory = float(cluster.host_cores[i]), float(cluster.host_memory_mib[i])
            listed = sorted(on_host.get(i, ()))[:VMS_LISTED]
            load = HostLoad(host_id, cores, memory, bool(cluster.host_disabled[i]),
                            _ratio(float(cluster.loads.host_cpu[i]), cores),
                            _ratio(float(cluster.loads.host_memory_mib[i]), memory) or 0.0,
                            int(cluster.loads.host_vms[i]), tuple(listed),
                            running=tuple(running.get(host_id, ())), recent=tuple(recent.get(host_id, ())))
            if rec is not None:
                load = replace(load, cpu_ratio_after=_ratio(float(after.loads.host_cpu[i]), cores),
                               memory_ratio_after=_ratio(float(after.loads.host_memory_mib[i]), memory),
                               vm_count_after=int(after.loads.host_vms[i]))
            hosts.append(load)
        return ClusterLoads(tuple(hosts), rec, applied, skipped)

    def _by_host(self, running: bool) -> dict[str, list[MigrationRecord]]:
        found: dict[str, list[MigrationRecord]] = defaultdict(list)
        for record in self._operations(running, RECENT_OPERATIONS):
            if not running and not record.phase.final:
                continue
            found[record.source_host_id].append(record)
            if record.target_host_id != record.source_host_id:
                found[record.target_host_id].append(record)
        return found
