"""The cluster at a glance: every host's CPU, memory and local disk load now and after a chosen recommendation's or
plan's moves (a stored one, or a dry run never stored), the moves into and out of it, the VMs on it, its networks,
and the migrations into and out of it, running and recent.

Loads are those the planner decides on (the snapshot's arrays: a host's measured CPU in cores busy, or its VMs'
measured use where that is more; a VM not measured yet shares, by vCPUs, what its host's sample leaves unexplained
by the measured ones, and counts at all its vCPUs on a host without a sample; memory as allocated), so "after"
here is what a recommendation's reasons say "after the move". Beside them, each host's own latest CPU sample (what
ListHosts shows): the measure of now an SRE reads first; the planner's count is a projection's starting point.

The moves are applied in order to a copy of the snapshot; a move the cluster has already made (its VM on the
target) or can no longer make (its VM or a host gone) is skipped and counted. Local disk free after is what the
planner counts too: the free space reported less the local disks copied in (a source gets nothing back: libvirt
leaves the source's image in place).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from advisor.domain.migration import MigrationRecord
from advisor.domain.model import Move
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
    cpu_ratio: float | None  # cores busy / cores as the planner counts them; None where not known
    memory_ratio: float  # memory allocated to its VMs / memory
    vm_count: int
    vm_ids: tuple[str, ...]  # the first VMS_LISTED, by id
    networks: tuple[str, ...] = ()  # offered to guests, by name
    disk_free_mib: float | None = None  # free space for local disks as reported; None where not known
    cpu_measured_ratio: float | None = None  # the host's own latest CPU sample (as ListHosts); None where none
    cpu_ratio_after: float | None = None  # after the recommendation's moves; None without one
    memory_ratio_after: float | None = None
    vm_count_after: int | None = None
    disk_free_mib_after: float | None = None
    moves_in: tuple[Move, ...] = ()  # the recommendation's moves applied, into the host
    moves_out: tuple[Move, ...] = ()  # and out of it
    running: tuple[MigrationRecord, ...] = ()  # under way into or out of the host
    recent: tuple[MigrationRecord, ...] = ()  # ended, among the last RECENT_OPERATIONS operations


@dataclass(frozen=True)
class ClusterLoads:
    hosts: tuple[HostLoad, ...]
    recommendation: Recommendation | None  # whose moves "after" applies: stored, or a dry run (no id)
    moves_applied: int
    moves_skipped: int


def _ratio(value: float, capacity: float) -> float | None:
    return None if capacity <= 0 or math.isnan(value) else float(value / capacity)


def _known(value: float) -> float | None:
    return None if math.isnan(value) else value


def _networks_by_host(cluster: ClusterArrays) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for network, name in enumerate(cluster.networks.names):
        for host in cluster.networks.hosts.row(network).tolist():
            found[host].append(name)
    return found


class ClusterView:
    def __init__(self, snapshot: Callable[[], ClusterArrays], get_recommendation: Callable[[str], Recommendation],
                 operations: Callable[[bool, int], list[MigrationRecord]],
                 measured_cpu: Callable[[Sequence[str]], Mapping[str, float]]) -> None:
        self._snapshot = snapshot  # the planner's snapshot of the inventory as it is now (Snapshots.current)
        self._measured_cpu = measured_cpu  # host ids -> each one's latest CPU sample (a ratio), NaN where none
        self._get = get_recommendation  # Review.get: checks the id, NotFound when unknown
        self._operations = operations  # (running only, how many) -> operations newest first

    def loads(self, recommendation_id: str = "") -> ClusterLoads:
        """Now, and with an id after that stored recommendation's moves (NotFound when it is unknown)."""
        return self.after(self._get(recommendation_id) if recommendation_id else None)

    def after(self, rec: Recommendation | None) -> ClusterLoads:
        """Now, and after the moves of `rec` (a dry-run plan, stored nowhere, included) when one is given."""
        cluster = self._snapshot()
        after, applied = cluster, []
        skipped = 0
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
                applied.append(move)
            after = cluster.with_moves(vms, targets)
        moves_in: dict[str, list[Move]] = defaultdict(list)
        moves_out: dict[str, list[Move]] = defaultdict(list)
        for move in applied:
            moves_out[move.source_host_id].append(move)
            moves_in[move.target_host_id].append(move)
        running, recent = self._by_host(True), self._by_host(False)
        networks = _networks_by_host(cluster)
        measured = self._measured_cpu(cluster.host_ids)
        on_host: dict[int, list[str]] = defaultdict(list)
        for vm, host in enumerate(cluster.vm_host.tolist()):
            on_host[host].append(cluster.vm_ids[vm])
        hosts = []
        for i, host_id in enumerate(cluster.host_ids):
            cores, memory = float(cluster.host_cores[i]), float(cluster.host_memory_mib[i])
            listed = sorted(on_host.get(i, ()))[:VMS_LISTED]
            free = _known(float(cluster.host_disk_free_mib[i]))
            load = HostLoad(host_id, cores, memory, bool(cluster.host_disabled[i]),
                            _ratio(float(cluster.loads.host_cpu[i]), cores),
                            _ratio(float(cluster.loads.host_memory_mib[i]), memory) or 0.0,
                            int(cluster.loads.host_vms[i]), tuple(listed), tuple(sorted(networks.get(i, ()))), free,
                            _known(float(measured.get(host_id, math.nan))),
                            running=tuple(running.get(host_id, ())), recent=tuple(recent.get(host_id, ())))
            if rec is not None:
                load = replace(load, cpu_ratio_after=_ratio(float(after.loads.host_cpu[i]), cores),
                               memory_ratio_after=_ratio(float(after.loads.host_memory_mib[i]), memory),
                               vm_count_after=int(after.loads.host_vms[i]),
                               disk_free_mib_after=None if free is None
                               else free - float(after.loads.host_disk_in_mib[i]),
                               moves_in=tuple(moves_in.get(host_id, ())), moves_out=tuple(moves_out.get(host_id, ())))
            hosts.append(load)
        return ClusterLoads(tuple(hosts), rec, len(applied), skipped)

    def _by_host(self, running: bool) -> dict[str, list[MigrationRecord]]:
        found: dict[str, list[MigrationRecord]] = defaultdict(list)
        for record in self._operations(running, RECENT_OPERATIONS):
            if not running and not record.phase.final:
                continue
            found[record.source_host_id].append(record)
            if record.target_host_id != record.source_host_id:
                found[record.target_host_id].append(record)
        return found
