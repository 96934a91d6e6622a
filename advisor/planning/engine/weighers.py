"""Weighers: rank the hosts that passed every filter (lower score wins), each component kept for explanations.

Components, one row each, before weighting:
- load: the larger of the CPU and memory load after the move, each times its weight (`cpu`, `memory`; a negative
  load weight packs instead of spreading);
- balance: squared distance of the CPU load after the move from the cluster's mean (even load);
- energy: the power the move adds, as a fraction of the cluster's mean peak power (waking an idle host costs its
  idle power, a running host only the dynamic part);
- affinity / anti-affinity: -1 where a "should run together" partner runs, +1 where a "should run apart" one does;
- host affinity / host anti-affinity: -1 on a host a "should run on" rule names, +1 on one a "should stay off" names.
Weights are data (`Weights`), so a strategy's preferences are a value, not code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from advisor.planning.engine.filters import Assessment
from advisor.planning.engine.kernels import components
from advisor.planning.engine.snapshot import BoolArray, ClusterArrays, FloatArray, IntArray, Loads

COMPONENTS: tuple[str, ...] = ("load", "balance", "energy", "affinity", "anti-affinity", "host affinity",
                               "host anti-affinity")
LOAD, BALANCE, ENERGY, AFFINITY, ANTI, HOST_ON, HOST_OFF = range(7)
IDLE_CORES = 1e-9


@dataclass(frozen=True)
class Weights:
    load: float = 1.0
    balance: float = 0.0
    energy: float = 0.0
    affinity: float = 0.2
    anti_affinity: float = 0.2
    host_affinity: float = 0.2
    host_anti_affinity: float = 0.2
    cpu: float = 1.0  # within load: how much the CPU load after the move counts
    memory: float = 1.0  # ... and the memory load

    @functools.cached_property
    def vector(self) -> FloatArray:
        """The component weights in COMPONENTS' order (kept: every weighing reads it)."""
        vector = np.array([self.load, self.balance, self.energy, self.affinity, self.anti_affinity,
                           self.host_affinity, self.host_anti_affinity], dtype=np.float64)
        vector.flags.writeable = False
        return vector


@dataclass(frozen=True)
class Scores:
    """Eligible hosts with their total score and components (columns aligned with `hosts`)."""

    hosts: IntArray
    total: FloatArray
    components: FloatArray  # (len(COMPONENTS), len(hosts)), unweighted; 0 where its weight is 0
    cpu_after: FloatArray
    memory_after: FloatArray
    power_w: FloatArray  # power added by the move (0 when the energy weight is 0)

    def __len__(self) -> int:
        return int(self.hosts.shape[0])

    def best(self) -> int:
        """Position of the best host (ties to the lower host index: hosts are assessed in index order)."""
        return int(np.argmin(self.total))

    def order(self, k: int) -> IntArray:
        """Positions of the k best hosts, best first."""
        if k < len(self):
            part = np.argpartition(self.total, k)[:k]
            order: IntArray = part[np.lexsort((self.hosts[part], self.total[part]))]
            return order
        full: IntArray = np.lexsort((self.hosts, self.total))
        return full


def _clip01(x: FloatArray) -> FloatArray:
    """np.clip(x, 0, 1) without its dispatch overhead (it is called twice per assessed VM)."""
    clipped: FloatArray = np.minimum(np.maximum(x, 0.0), 1.0)
    return clipped


def power(cluster: ClusterArrays, hosts: IntArray, cpu_ratio: FloatArray) -> FloatArray:
    """Linear power model between the host's idle and peak power (0 W where unknown)."""
    idle, peak = cluster.host_idle_w[hosts], cluster.host_max_w[hosts]
    watts: FloatArray = idle + (peak - idle) * _clip01(cpu_ratio)
    return watts


def is_on(loads: Loads, hosts: IntArray) -> BoolArray:
    """A host with no VM and no base load is idle: it may be switched off (the tolerance absorbs the rounding left
    by adding and removing VMs' loads)."""
    on: BoolArray = (loads.host_vms[hosts] > 0) | (loads.host_cpu[hosts] > IDLE_CORES)
    return on


def added_power(cluster: ClusterArrays, loads: Loads, hosts: IntArray, cpu_after: FloatArray) -> FloatArray:
    idle = cluster.host_idle_w[hosts]
    return _added_power(idle, cluster.host_max_w[hosts] - idle, cluster.host_cores[hosts], loads.host_cpu[hosts],
                        loads.host_vms[hosts], cpu_after)


def power_now(idle_w: FloatArray, span_w: FloatArray, cores: FloatArray, cpu: FloatArray,
              vms: IntArray) -> FloatArray:
    """`power` of each host as it is (0 W on an idle host, as `is_on` says)."""
    on = (vms > 0) | (cpu > IDLE_CORES)
    now: FloatArray = np.where(on, idle_w + span_w * _clip01(cpu / cores), 0.0)
    return now


def _added_power(idle_w: FloatArray, span_w: FloatArray, cores: FloatArray, cpu: FloatArray, vms: IntArray,
                 cpu_after: FloatArray) -> FloatArray:
    """`power` after the move less before it, per host."""
    added: FloatArray = idle_w + span_w * _clip01(cpu_after) - power_now(idle_w, span_w, cores, cpu, vms)
    return added


def weigh(cluster: ClusterArrays, loads: Loads, a: Assessment, weights: Weights, *, mean_cpu: float = 0.0,
          reference_w: float = 0.0, power_w: FloatArray | None = None) -> Scores:
    """Score the eligible hosts of `a`. `mean_cpu` is the cluster's mean CPU load (for balance), `reference_w` the
    power that one unit of the energy component stands for (default: the mean peak power); `power_w`, when given,
    is every host's `power_now` under `loads`, kept by the caller (it saves recomputing it for each VM)."""
    keep = a.positions
    n = keep.shape[0]
    hosts, cpu_after, memory_after = np.empty(n, dtype=np.int64), np.empty(n), np.empty(n)
    comps = np.zeros((len(COMPONENTS), n))
    # A component weighted 0 is left at 0: it adds exactly nothing to the total either way (its values are finite
    # where the load is), and `describe` leaves it out; RecommendTarget and drains weigh neither balance nor power.
    energy = bool(weights.energy)
    added = np.empty(n) if energy else comps[ENERGY]
    if energy and power_w is None:
        power_w = power_now(cluster.host_idle_w, cluster.host_max_w - cluster.host_idle_w, cluster.host_cores,
                            loads.host_cpu, loads.host_vms)
    # load: max(cpu x CPU after, memory x memory after); balance: (CPU after - mean)^2; energy: the power after
    # the move less `power_w`, over `reference_w`; in one compiled pass over the eligible hosts
    view = a.view
    components(keep, a.hosts, a.cpu_after, a.memory_after, float(weights.cpu), float(weights.memory),
               bool(weights.balance), float(mean_cpu), energy, view.idle_w, view.span_w,
               view.idle_w if power_w is None else power_w,
               (reference_w or float(cluster.host_max_w.mean()) or 1.0) if energy else 1.0,
               hosts, cpu_after, memory_after, comps, LOAD, BALANCE, ENERGY, added)
    vm = a.vm
    groups = cluster.groups
    if groups.of_vm.has_row(vm):
        for g in groups.of_vm.row(vm).tolist():
            if groups.must[g]:
                continue
            members = groups.members.row(g)
            where = loads.vm_host[members[members != vm]]
            here = np.isin(hosts, where[where >= 0])
            comps[AFFINITY if groups.together[g] else ANTI] += np.where(groups.together[g], -1.0, 1.0) * here
    rules = cluster.host_rules
    if rules.of_vm.has_row(vm):
        for r in rules.of_vm.row(vm).tolist():
            if not rules.must[r]:
                inside = np.isin(hosts, rules.hosts.row(r))
                comps[HOST_ON if rules.on[r] else HOST_OFF] += np.where(rules.on[r], -1.0, 1.0) * inside
    total: FloatArray = weights.vector @ comps
    return Scores(hosts, total, comps, cpu_after, memory_after, added)


_NAMED = (("affinity", AFFINITY), ("anti-affinity", ANTI), ("host affinity", HOST_ON),
          ("host anti-affinity", HOST_OFF))


def describe(scores: Scores, position: int, weights: Weights) -> str:
    """The components that made a host's score, e.g. "load 0.62 (CPU 62%, memory 40%), +12 W"."""
    comps = scores.components
    text = (f"score {scores.total[position]:.3f} (CPU {scores.cpu_after[position]:.0%}, memory "
            f"{scores.memory_after[position]:.0%} after the move")
    if weights.energy:
        text += f", {scores.power_w[position]:+.0f} W"
    if weights.balance:
        text += f", balance term {comps[BALANCE, position]:.3f}"
    for name, k in _NAMED:
        value = comps[k, position]
        if value:
            text += f", {name} {value:+.0f}"
    return text + ")"
