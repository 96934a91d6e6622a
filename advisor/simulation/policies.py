"""Baseline consolidation policies and the registry that names them.

`ConsolidationPolicy` is CloudSim's PowerVmAllocationPolicyMigrationAbstract.optimizeAllocation, step by step:
1. overloaded hosts: the detector on every host;
2. selection: from each, in host order, the selection policy takes VMs off until the host is no longer overloaded;
3. placement: those VMs, by CPU request descending (stable), each to the placement's choice, overloaded hosts
   excluded (unplaced VMs stay where they are);
4. underload: repeatedly the least-utilised remaining host with 0 < u < 1 (utilisation measured at the update),
   all of its non-migrating VMs to other hosts or none; overloaded, switched-off and already chosen hosts are
   excluded as targets, and targets are no longer candidates. As in CloudSim, hosts that received VMs in step 3
   stay candidates, so a VM placed in step 3 can be moved again in step 4 (both migrations are started).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from advisor.simulation.arrays import BoolArray, IntArray
from advisor.simulation.detectors import (
    Detector,
    InterQuartileRange,
    LocalRegression,
    MedianAbsoluteDeviation,
    StaticThreshold,
)
from advisor.simulation.interface import Migration, Policy, Snapshot
from advisor.simulation.placement import NO_HOST, FirstFit, MediumFit, Placement, PowerAwareBestFit, place_all
from advisor.simulation.working import WorkingCluster


class Selection(Protocol):
    @property
    def name(self) -> str: ...

    def select(self, work: WorkingCluster, host: int) -> int | None:
        """The next VM to take off an overloaded host, or None."""
        ...


@dataclass(frozen=True)
class MinimumMigrationTime:
    """MMT: the migratable VM with the least RAM (first in vmList order on ties), CloudSim's RAM-only metric."""

    name: str = "mmt"

    def select(self, work: WorkingCluster, host: int) -> int | None:
        best, best_ram = None, float("inf")
        for vm in work.migratable(host):
            ram = float(work.vm_ram_mb[vm])
            if ram < best_ram:
                best, best_ram = vm, ram
        return best


def _by_request(work: WorkingCluster, vms: Sequence[int]) -> list[int]:
    """CloudSim's PowerVmList.sortByCpuUtilization: descending, stable."""
    return sorted(vms, key=lambda v: -float(work.req_total[v]))


@dataclass(frozen=True)
class ConsolidationPolicy:
    """Detector + selection + placement (+ the underload step); see the module docstring."""

    name: str
    detector: Detector
    placement: Placement
    selection: Selection = MinimumMigrationTime()
    underload: bool = True

    def initial_placement(self, snapshot: Snapshot) -> IntArray:
        return place_all(WorkingCluster(snapshot), self.placement, self.detector)

    def decide(self, snapshot: Snapshot) -> Sequence[Migration]:
        work = WorkingCluster(snapshot)
        n_hosts = snapshot.n_hosts
        overloaded = self.detector.overloaded(work.load(np.arange(n_hosts)))
        selected: list[int] = []
        for host in np.flatnonzero(overloaded).tolist():
            while (vm := self.selection.select(work, host)) is not None:
                selected.append(vm)
                work.remove(vm, host)
                if not self.detector.overloaded(work.load(np.array([host])))[0]:
                    break
        migrations: list[Migration] = []
        excluded = overloaded.copy()
        for vm in _by_request(work, selected):
            target = self.placement.choose(work, vm, excluded, self.detector)
            if target != NO_HOST:
                work.add(vm, target)
                migrations.append(Migration(vm, target))
        if self.underload:
            migrations.extend(self._underload(work, overloaded))
        return migrations

    def _underload(self, work: WorkingCluster, overloaded: BoolArray) -> list[Migration]:
        utilization = work.stale_util
        switched_off = utilization == 0
        not_candidate = overloaded | switched_off
        not_target = not_candidate.copy()
        migrations: list[Migration] = []
        for host in np.argsort(utilization, kind="stable").tolist():
            u = float(utilization[host])
            if not_candidate[host] or not 0 < u < 1 or work.all_migrating_out_or_any_in(host):
                continue
            not_candidate[host] = not_target[host] = True
            vms = _by_request(work, work.migratable(host))
            placed: list[Migration] = []
            for vm in vms:
                target = self.placement.choose(work, vm, not_target, self.detector)
                if target == NO_HOST:
                    for m in placed:
                        work.remove(m.vm, m.target)
                    placed = []
                    break
                work.add(vm, target)
                placed.append(Migration(vm, target))
            for m in placed:
                not_candidate[m.target] = True
            migrations.extend(placed)
        return migrations


@dataclass(frozen=True)
class NoMigrationPolicy:
    """Never migrates; power follows load. Initial placement first fit, as CloudSim's Dvfs experiment."""

    name: str = "none"
    placement: Placement = field(default_factory=FirstFit)
    detector: Detector = field(default_factory=lambda: StaticThreshold(1.0))

    def initial_placement(self, snapshot: Snapshot) -> IntArray:
        return place_all(WorkingCluster(snapshot), self.placement, self.detector)

    def decide(self, snapshot: Snapshot) -> Sequence[Migration]:
        return ()


@dataclass(frozen=True)
class PolicyInfo:
    """A registered policy: how to build it and what its parameters are (for docs and `--help`)."""

    name: str
    summary: str
    parameters: Mapping[str, object]
    factory: Callable[..., Policy] = field(repr=False)  # keyword options, e.g. check_ram=True


_REGISTRY: dict[str, PolicyInfo] = {}


def register_policy(info: PolicyInfo, *, replace: bool = False) -> None:
    """Add a policy (e.g. the cost-aware `advisor` policy, from outside this package)."""
    if info.name in _REGISTRY and not replace:
        raise ValueError(f"policy {info.name!r} is already registered")
    _REGISTRY[info.name] = info


def policy_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def policy_info(name: str) -> PolicyInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown policy {name!r}; known: {', '.join(_REGISTRY)}") from None


def make_policy(name: str, **options: object) -> Policy:
    """Build a registered policy; the baselines take `check_ram` (RAM as a placement constraint, off in CloudSim)."""
    return policy_info(name).factory(**options)


def _baseline(name: str, summary: str, detector: Detector, params: Mapping[str, object]) -> PolicyInfo:
    def build(check_ram: bool = False) -> Policy:
        return ConsolidationPolicy(name, detector, PowerAwareBestFit(check_ram=check_ram))

    return PolicyInfo(
        name,
        summary,
        {**params, "selection": "mmt", "placement": "pabfd", "underload": True, "check_ram": False},
        build,
    )


def _mfped(check_ram: bool = False) -> Policy:
    return ConsolidationPolicy("mfped", LocalRegression(1.2), MediumFit(0.6, check_ram=check_ram))


def _none(check_ram: bool = False) -> Policy:
    return NoMigrationPolicy(placement=FirstFit(check_ram=check_ram))


for _info in (
    PolicyInfo("none", "no migrations; first-fit at t=0 (CloudSim's Dvfs)", {"placement": "first-fit"}, _none),
    _baseline("thr-mmt", "static threshold", StaticThreshold(0.8), {"threshold": 0.8}),
    _baseline(
        "iqr-mmt",
        "1 - s x IQR of the host history",
        InterQuartileRange(1.5),
        {"safety": 1.5, "min_history": 12, "fallback_threshold": 0.7},
    ),
    _baseline(
        "mad-mmt",
        "1 - s x MAD of the host history",
        MedianAbsoluteDeviation(2.5),
        {"safety": 2.5, "min_history": 12, "fallback_threshold": 0.7},
    ),
    _baseline(
        "lr-mmt",
        "local regression over 10 values x s >= 1",
        LocalRegression(1.2),
        {"safety": 1.2, "window": 10, "fallback_threshold": 0.7},
    ),
    PolicyInfo(
        "mfped",
        "LR 1.2 + MMT, medium-fit placement (closest to 60 %, ties by MIPS/W)",
        {
            "safety": 1.2,
            "window": 10,
            "fallback_threshold": 0.7,
            "selection": "mmt",
            "placement": "mfped",
            "target_utilization": 0.6,
            "underload": True,
            "check_ram": False,
        },
        _mfped,
    ),
):
    register_policy(_info)
