"""Cluster plans: drain a host, rebalance load, consolidate onto fewer hosts. Pure functions of a snapshot.

Every strategy simulates as it goes (as OpenStack Watcher's strategies do): each chosen move is applied to an
in-memory copy of the cluster before the next is chosen, so later moves see earlier ones. A VM moves at most once
per plan, which rules out ping-pong within a plan. Targets are chosen by the same filters and weigher as a single
recommendation, so every move of a plan carries the same reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from advisor.domain.model import Host, HostAssessment, Vm
from advisor.planning.placement import HostLoad, PlacementPolicy, VmDemand, rank_targets

# The predicted cost of moving a VM (for example its median total time in ms): plans prefer cheap moves.
MoveCost = Callable[[Vm], float]


@dataclass(frozen=True)
class PlanPolicy:
    """Knobs of cluster plans (settings `plan_*`): rebalance stops when every host is within `rebalance_tolerance`
    of the mean load; rebalance and consolidate leave alone a VM that moved in the last `pin_s` seconds, so that
    successive plans do not bounce it between hosts (drains move everything)."""

    rebalance_tolerance: float = 0.10
    pin_s: float = 1800.0


@dataclass(frozen=True)
class ClusterSnapshot:
    hosts: Mapping[str, Host]
    vms: Mapping[str, Vm]
    # Measured CPU utilisation of hosts (ratio of their cores) and VMs (ratio of their vCPUs), where known.
    host_cpu: Mapping[str, float] = field(default_factory=dict)
    vm_cpu: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedMove:
    vm_id: str
    source_host_id: str
    target_host_id: str
    assessments: tuple[HostAssessment, ...]
    why: str


@dataclass(frozen=True)
class Plan:
    goal: str
    moves: tuple[PlannedMove, ...]
    # VMs the plan could not place, with the reason.
    unplaced: tuple[tuple[str, str], ...] = ()
    summary: str = ""


class _Sim:
    """The cluster as the plan leaves it so far."""

    def __init__(self, snap: ClusterSnapshot, policy: PlacementPolicy) -> None:
        self.snap = snap
        self.policy = policy
        self.where = {vm.id: vm.host_id for vm in snap.vms.values()}
        self.moved: set[str] = set()
        self.memory = {h: 0 for h in snap.hosts}
        self.vcpus = {h: 0 for h in snap.hosts}
        self.busy_cores = {h: 0.0 for h in snap.hosts}
        for vm in snap.vms.values():
            if vm.host_id in snap.hosts:
                self._add(vm, vm.host_id, +1)
        # Cores busy on each host beyond its VMs' own (the hypervisor, unknown guests): measured minus estimated.
        self.base_cores = {
            h: max(0.0, snap.host_cpu[h] * host.cpu_cores - self.busy_cores[h]) if h in snap.host_cpu else 0.0
            for h, host in snap.hosts.items()
        }

    def demand(self, vm: Vm) -> VmDemand:
        return VmDemand(vm, self.snap.vm_cpu.get(vm.id))

    def _add(self, vm: Vm, host_id: str, sign: int) -> None:
        self.memory[host_id] += sign * vm.memory_mib
        self.vcpus[host_id] += sign * vm.vcpus
        self.busy_cores[host_id] += sign * self.demand(vm).cores_busy

    def move(self, vm: Vm, target: str) -> None:
        self._add(vm, self.where[vm.id], -1)
        self._add(vm, target, +1)
        self.where[vm.id] = target
        self.moved.add(vm.id)

    def cpu(self, host_id: str) -> float:
        return (self.base_cores[host_id] + self.busy_cores[host_id]) / self.snap.hosts[host_id].cpu_cores

    def load(self, host_id: str) -> float:
        """The host's load as the weigher sees it: the larger of CPU and memory use."""
        return max(self.cpu(host_id), self.memory[host_id] / self.snap.hosts[host_id].memory_mib)

    def vms_on(self, host_id: str) -> list[Vm]:
        return [self.snap.vms[v] for v, h in self.where.items() if h == host_id]

    def rank(self, vm: Vm, excluded: frozenset[str]) -> list[HostAssessment]:
        loads = [
            HostLoad(host, self.memory[h], self.vcpus[h], self.cpu(h))
            for h, host in self.snap.hosts.items()
        ]
        # The VM as it sits in the simulation (it may have been moved by an earlier step).
        placed = replace(vm, host_id=self.where[vm.id])
        conflicts: dict[str, str] = {}
        partners: dict[str, str] = {}
        for other_id, host_id in self.where.items():
            if other_id == vm.id:
                continue
            other = self.snap.vms[other_id]
            for group in sorted(vm.anti_affinity_groups & other.anti_affinity_groups):
                conflicts.setdefault(host_id, f"anti-affinity group {group!r}: VM {other_id} runs there")
            for group in sorted(vm.affinity_groups & other.affinity_groups):
                partners.setdefault(host_id, group)
        return rank_targets(VmDemand(placed, self.snap.vm_cpu.get(vm.id)), loads, conflicts=conflicts,
                            partners=partners, excluded=excluded, policy=self.policy)


def _why_not(assessments: list[HostAssessment]) -> str:
    return "; ".join(f"{a.host_id}: {', '.join(a.rejections)}" for a in assessments[:4]) or "no other host"


def plan_drain(
    snap: ClusterSnapshot, host_id: str, cost: MoveCost, *, policy: PlacementPolicy = PlacementPolicy(),  # noqa: B008
    max_moves: int = 0,
) -> Plan:
    """Move every VM off `host_id`: the hardest to place (largest memory) first, each to its best target."""
    if host_id not in snap.hosts:
        raise KeyError(host_id)
    sim = _Sim(snap, policy)
    moves: list[PlannedMove] = []
    unplaced: list[tuple[str, str]] = []
    for vm in sorted(sim.vms_on(host_id), key=lambda v: (-v.memory_mib, cost(v), v.id)):
        if max_moves and len(moves) >= max_moves:
            unplaced.append((vm.id, f"beyond the {max_moves} moves allowed"))
            continue
        ranked = sim.rank(vm, frozenset({host_id}))
        if not ranked or not ranked[0].eligible:
            unplaced.append((vm.id, f"no eligible target ({_why_not(ranked)})"))
            continue
        best = ranked[0]
        sim.move(vm, best.host_id)
        moves.append(PlannedMove(vm.id, host_id, best.host_id, tuple(ranked),
                                 f"drain {host_id}: {best.host_id} has the lowest load after the move"))
    placed = len(moves)
    summary = f"Drain {host_id}: {placed} move(s)" + (
        f"; {len(unplaced)} VM(s) cannot be placed" if unplaced else ", the host is then empty")
    return Plan(f"drain:{host_id}", tuple(moves), tuple(unplaced), summary + ".")


def plan_rebalance(
    snap: ClusterSnapshot, cost: MoveCost, *, policy: PlacementPolicy = PlacementPolicy(),  # noqa: B008
    max_moves: int = 0, tolerance: float = 0.10, pinned: frozenset[str] = frozenset(),
) -> Plan:
    """Move VMs from the most to the least loaded hosts until every host is within `tolerance` of the mean load
    (DRS-like), preferring the cheapest move that narrows the spread; stop when no move narrows it. `pinned` VMs
    (for example those moved recently) stay put, so that successive plans do not bounce a VM between hosts."""
    sim = _Sim(snap, policy)
    active = [h for h, host in snap.hosts.items() if not host.in_maintenance]
    moves: list[PlannedMove] = []
    while not max_moves or len(moves) < max_moves:
        loads = {h: sim.load(h) for h in active}
        if not loads:
            break
        mean = sum(loads.values()) / len(loads)
        busiest = max(loads, key=lambda h: (loads[h], h))
        if loads[busiest] - mean <= tolerance:
            break
        chosen: tuple[Vm, HostAssessment, list[HostAssessment]] | None = None
        movable = (v for v in sim.vms_on(busiest) if v.id not in sim.moved and v.id not in pinned)
        for vm in sorted(movable, key=lambda v: (cost(v), v.id)):
            ranked = sim.rank(vm, frozenset())
            best = next((a for a in ranked if a.eligible), None)
            if best is None:
                continue
            before = sim.load(busiest)
            sim.move(vm, best.host_id)
            narrows = max(sim.load(busiest), sim.load(best.host_id)) < before
            sim.move(vm, busiest)  # undo; it is re-applied below if chosen
            sim.moved.discard(vm.id)
            if narrows:
                chosen = (vm, best, ranked)
                break
        if chosen is None:
            break
        vm, best, ranked = chosen
        sim.move(vm, best.host_id)
        moves.append(PlannedMove(vm.id, busiest, best.host_id, tuple(ranked),
                                 f"rebalance: {busiest} load {loads[busiest]:.0%} vs mean {mean:.0%}; the cheapest "
                                 f"VM to move whose move narrows the spread"))
    final = {h: sim.load(h) for h in active}
    spread = (max(final.values()) - min(final.values())) if final else 0.0
    summary = f"Rebalance: {len(moves)} move(s); load spread after: {spread:.0%}."
    return Plan("rebalance", tuple(moves), (), summary)


def plan_consolidate(
    snap: ClusterSnapshot, cost: MoveCost, *, policy: PlacementPolicy = PlacementPolicy(),  # noqa: B008
    max_moves: int = 0, pinned: frozenset[str] = frozenset(),
) -> Plan:
    """Empty the least loaded hosts, one whole host at a time, while the others can take all its VMs; an emptied
    host can be powered down (its idle power is reported). A host with a `pinned` VM is not emptied."""
    sim = _Sim(snap, policy)
    moves: list[PlannedMove] = []
    emptied: list[str] = []
    candidates = sorted(
        (h for h, host in snap.hosts.items()
         if not host.in_maintenance and sim.vms_on(h) and not any(v.id in pinned for v in sim.vms_on(h))),
        key=lambda h: (sim.load(h), h),
    )
    for host_id in candidates:
        if host_id in emptied:
            continue
        trial: list[PlannedMove] = []
        undo: list[tuple[Vm, str]] = []
        closed = frozenset({host_id, *emptied})
        for vm in sorted(sim.vms_on(host_id), key=lambda v: (-v.memory_mib, v.id)):
            ranked = sim.rank(vm, closed)
            # Pack: the eligible host with the highest load after the move (fill hosts up), not the lowest.
            eligible = [a for a in ranked if a.eligible]
            if not eligible:
                break
            best = max(eligible, key=lambda a: (max(a.cpu_after or 0, a.memory_after or 0), a.host_id))
            undo.append((vm, host_id))
            sim.move(vm, best.host_id)
            trial.append(PlannedMove(vm.id, host_id, best.host_id, tuple(ranked),
                                     f"consolidate: empty {host_id} onto the fullest host that still fits"))
        if not sim.vms_on(host_id) and (not max_moves or len(moves) + len(trial) <= max_moves):
            moves += trial
            emptied.append(host_id)
        else:
            for vm, home in reversed(undo):
                sim.move(vm, home)
                sim.moved.discard(vm.id)
    watts = sum(snap.hosts[h].idle_power_w for h in emptied)
    saving = f", about {watts:.0f} W idle power saved if powered down" if watts else ""
    names = ", ".join(emptied) or "none"
    summary = f"Consolidate: {len(moves)} move(s) empty {len(emptied)} host(s) ({names}){saving}."
    return Plan("consolidate", tuple(moves), (), summary)
