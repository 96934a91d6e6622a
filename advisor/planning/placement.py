"""Where a VM may go: hard filters that reject hosts with a reason, then a weigher that ranks the rest.

Pure: everything it needs arrives as values (`HostLoad` per candidate, the VM's own demand, group conflicts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from advisor.domain.model import Host, HostAssessment, Vm


@dataclass(frozen=True)
class PlacementPolicy:
    """Knobs of placement. Defaults follow common practice (Nova's allocation ratios, DRS-like headroom)."""

    cpu_allocation_ratio: float = 4.0  # vCPUs per core
    memory_allocation_ratio: float = 1.0  # no memory overcommit: live migration copies all of it
    max_cpu_after: float = 0.85  # keep headroom so a target is not overloaded by the move
    cpu_weight: float = 1.0
    memory_weight: float = 1.0
    affinity_bonus: float = 0.2  # subtracted from the score of a host running an affinity partner


@dataclass(frozen=True)
class HostLoad:
    host: Host
    allocated_memory_mib: int
    allocated_vcpus: int
    # Measured utilisation of the host's cores, if a sample arrived.
    cpu_utilization: float | None


@dataclass(frozen=True)
class VmDemand:
    vm: Vm
    # Measured utilisation of the VM's own vCPUs; None means unknown, taken as fully busy (pessimistic).
    cpu_utilization: float | None

    @property
    def cores_busy(self) -> float:
        return self.vm.vcpus * (1.0 if self.cpu_utilization is None else self.cpu_utilization)


def _cpu_now(load: HostLoad, policy: PlacementPolicy) -> float:
    if load.cpu_utilization is not None:
        return load.cpu_utilization
    # Without a measurement, assume the allocated vCPUs are as busy as the allocation ratio allows.
    return min(1.0, load.allocated_vcpus / (load.host.cpu_cores * policy.cpu_allocation_ratio))


def assess_host(
    demand: VmDemand,
    load: HostLoad,
    *,
    conflicts: Mapping[str, str],
    partners: Mapping[str, str],
    excluded: frozenset[str] = frozenset(),
    policy: PlacementPolicy = PlacementPolicy(),
) -> HostAssessment:
    vm, host = demand.vm, load.host
    rejections: list[str] = []
    if host.id == vm.host_id:
        rejections.append("is the VM's current host")
    if host.id in excluded:
        rejections.append("excluded by request")
    if host.in_maintenance:
        rejections.append("in maintenance")
    if vm.cpu_model and host.cpu_model != vm.cpu_model:
        rejections.append(f"CPU model {host.cpu_model or 'unknown'!r} differs from the VM's {vm.cpu_model!r}")
    memory_cap = host.memory_mib * policy.memory_allocation_ratio
    memory_after = load.allocated_memory_mib + vm.memory_mib
    if memory_after > memory_cap:
        rejections.append(
            f"memory: needs {vm.memory_mib} MiB, {max(0, memory_cap - load.allocated_memory_mib):.0f} of "
            f"{memory_cap:.0f} MiB free"
        )
    vcpu_cap = host.cpu_cores * policy.cpu_allocation_ratio
    if load.allocated_vcpus + vm.vcpus > vcpu_cap:
        rejections.append(
            f"vCPUs: {load.allocated_vcpus} + {vm.vcpus} > {vcpu_cap:.0f} allowed "
            f"({host.cpu_cores} cores x {policy.cpu_allocation_ratio:g})"
        )
    cpu_after = _cpu_now(load, policy) + demand.cores_busy / host.cpu_cores
    if cpu_after > policy.max_cpu_after:
        rejections.append(f"CPU load would reach {cpu_after:.0%} > {policy.max_cpu_after:.0%}")
    if host.id in conflicts:
        rejections.append(conflicts[host.id])
    memory_ratio = memory_after / host.memory_mib
    if rejections:
        return HostAssessment(host.id, tuple(rejections), None, cpu_after, memory_ratio)
    score = policy.cpu_weight * cpu_after + policy.memory_weight * memory_ratio
    if host.id in partners:
        score -= policy.affinity_bonus
    return HostAssessment(host.id, (), score, cpu_after, memory_ratio)


def rank_targets(
    demand: VmDemand,
    loads: Sequence[HostLoad],
    *,
    conflicts: Mapping[str, str],
    partners: Mapping[str, str],
    excluded: frozenset[str] = frozenset(),
    policy: PlacementPolicy = PlacementPolicy(),
) -> list[HostAssessment]:
    """Every host assessed: eligible ones first, best (lowest resulting load) first; rejected ones after, by id."""
    assessed = [
        assess_host(demand, load, conflicts=conflicts, partners=partners, excluded=excluded, policy=policy)
        for load in loads
    ]
    return sorted(
        assessed,
        key=lambda a: (not a.eligible, a.score if a.score is not None else 0.0, a.host_id),
    )


# The filter behind each rejection, from the words it starts with (the order of assess_host's checks).
_KINDS = (
    ("is the VM's current host", "current host"),
    ("excluded by request", "excluded by request"),
    ("in maintenance", "in maintenance"),
    ("CPU model", "CPU model"),
    ("memory:", "memory"),
    ("vCPUs:", "vCPUs"),
    ("CPU load would reach", "CPU load"),
    ("anti-affinity group", "anti-affinity"),
)


def rejection_kind(text: str) -> str:
    """Which filter a rejection came from, e.g. "memory" for "memory: needs 4096 MiB, 12 of 4096 MiB free"."""
    return next((kind for prefix, kind in _KINDS if text.startswith(prefix)), "other")


@dataclass(frozen=True)
class AssessmentSummary:
    """What a recommendation keeps of every host it assessed: the chosen target and the best other eligible
    hosts in full, the rejected ones counted by filter (with one example host each)."""

    kept: tuple[HostAssessment, ...]
    rejection_counts: tuple[tuple[str, int, str], ...]  # (filter, hosts, an example host)
    hosts_assessed: int


def summarize(assessments: Sequence[HostAssessment], chosen_host_id: str, best: int = 5) -> AssessmentSummary:
    """Keep `chosen_host_id` and the `best` best eligible others (in rank order); count rejections by filter, a
    host with several counted under each."""
    chosen = [a for a in assessments if a.host_id == chosen_host_id]
    others = [a for a in assessments if a.eligible and a.host_id != chosen_host_id][:best]
    counts: dict[str, list[str]] = {}
    for a in assessments:
        for kind in dict.fromkeys(rejection_kind(r) for r in a.rejections):
            counts.setdefault(kind, []).append(a.host_id)
    ordered = sorted(counts.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return AssessmentSummary((*chosen, *others), tuple((k, len(h), h[0]) for k, h in ordered), len(assessments))
