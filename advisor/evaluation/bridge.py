"""The simulator's snapshot as the engine's arrays: hosts, VMs, MIPS, forecast demand and rules.

Mapping (PlanetLab semantics, as CloudSim fixes them):
- CPU: one engine "core" is 1,000 MIPS, so a host has total MIPS / 1000 cores and a VM of m MIPS m / 1000 vCPUs.
  CloudSim reserves nothing after creation (a host may be asked for more than it has: that is the SLA
  violation), so the vCPU allocation filter is off; the CPU headroom filter works on forecast demand.
- Demand: a VM's forecast utilisation over the next interval, from its history: the larger of now and the mean of
  the last `window` samples, plus `spread` standard deviations of the last `std_window` samples, at most 1. A
  host's load is the sum of its VMs' forecasts (its measured use is never below what its VMs ask now). That
  standard deviation, in cores, is also each VM's `vm_cpu_spread`, from which relief foresees overload (unknown,
  NaN, before a VM's second sample: relief then ranks by load).
- Memory: CloudSim ignores RAM after t = 0 (every baseline overcommits it), so the memory filter is off unless
  `check_ram` (then a host takes at most its 4,096 MB).
- Slow PEs: a 1-PE VM asking more MIPS than a host's PE has is capped there (an SLA violation), so VMs of more
  MIPS per PE than a host's PE get a VM-host rule against those hosts: hard when the forecast request exceeds the
  PE, soft otherwise.
- Migrating VMs count on their target already and cannot move; removed VMs are left out.
- Costs: a VM's memory to copy is its RAM; its dirty rate is assumed proportional to its utilisation (see
  costs.py); the bandwidth is half the host's link, as CloudSim's migration model has it.
"""

from __future__ import annotations

import numpy as np

from advisor.evaluation.costs import DIRTY_MIB_S_AT_FULL_CPU, MB, MIB
from advisor.planning.engine import ClusterArrays
from advisor.planning.engine.forecast import TUNED, Forecast
from advisor.planning.engine.forecast import forecast_utilization as forecast_samples
from advisor.planning.engine.relations import Csr, HostRules
from advisor.simulation import Snapshot
from advisor.simulation.arrays import BoolArray, FloatArray, IntArray

MIPS_PER_CORE = 1000.0
IDLE = 0.005  # below half of PlanetLab's 1% resolution


def forecast_utilization(snapshot: Snapshot, vms: IntArray, f: Forecast) -> tuple[FloatArray, FloatArray]:
    """Per VM, the utilisation to plan for and its standard deviation (NaN: unknown) over the last `std_window`
    samples (see the module docstring): both from the samples seen so far, never ahead, by the function serving
    uses on its recent samples (advisor/planning/engine/forecast.py)."""
    have = min(snapshot.history_len, snapshot.vm_history.shape[1])
    return forecast_samples(np.asarray(snapshot.vm_utilization)[vms], np.asarray(snapshot.vm_history)[vms], have, f)


def _slow_pe_rules(snapshot: Snapshot, vms: IntArray, planned: FloatArray) -> HostRules:
    """Per class of VM MIPS per PE, a rule against hosts with slower PEs (hard when the forecast needs more)."""
    pe_mips = np.asarray(snapshot.datacenter.pe_mips)
    vm_pe = np.asarray(snapshot.vm_mips)[vms]
    names: list[str] = []
    must: list[bool] = []
    rule_hosts: list[IntArray] = []
    rule_vms: list[IntArray] = []
    for mips in np.unique(vm_pe[vm_pe > pe_mips.min()]).tolist():
        slow = np.flatnonzero(pe_mips < mips)
        members = np.flatnonzero(vm_pe == mips)
        needs = planned[members] * mips > pe_mips[slow].max()
        for hard, chosen in ((True, members[needs]), (False, members[~needs])):
            if chosen.size:
                names.append(f"{'needs' if hard else 'prefers'} PEs of {mips:.0f} MIPS")
                must.append(hard)
                rule_hosts.append(slow.astype(np.int64))
                rule_vms.append(chosen.astype(np.int64))
    n = len(names)
    if not n:
        return HostRules.none(vms.shape[0])
    host_rows = np.concatenate([np.full(h.shape[0], k) for k, h in enumerate(rule_hosts)]).astype(np.int64)
    vm_rows = np.concatenate([np.full(v.shape[0], k) for k, v in enumerate(rule_vms)]).astype(np.int64)
    return HostRules(tuple(names), np.zeros(n, dtype=bool), np.array(must, dtype=bool),
                     Csr.from_pairs(n, host_rows, np.concatenate(rule_hosts)),
                     Csr.from_pairs(vms.shape[0], np.concatenate(rule_vms), vm_rows))


def fading(snapshot: Snapshot, vms: IntArray, window: int) -> BoolArray:
    """VMs with an idle (0%) sample among the last `window`: a VM idle twice in a row leaves the trace, so these
    are likely to end soon (about half within the hour on the shared days) and are not worth a migration. A
    sample taken 0.1 s after a 0% trace point reads a hair above 0 when the next point is not 0, hence `IDLE`."""
    if window <= 0:
        return np.zeros(vms.shape[0], dtype=bool)
    have = max(1, min(snapshot.history_len, window))
    idle: BoolArray = np.asarray((np.asarray(snapshot.vm_history)[vms, :have] < IDLE).any(axis=1), dtype=bool)
    return idle


def to_arrays(snapshot: Snapshot, forecast: Forecast = TUNED.forecast, *,
              dirty_mib_s_at_full_cpu: float = DIRTY_MIB_S_AT_FULL_CPU,
              pin_fading: int = 0) -> tuple[ClusterArrays, IntArray]:
    """(the engine's arrays, the simulator index of each engine VM)."""
    dc = snapshot.datacenter
    where = np.array(snapshot.vm_host, dtype=np.int64)
    for f in snapshot.in_flight:
        where[f.vm] = f.target
    vms = np.flatnonzero(where >= 0).astype(np.int64)
    planned, spread = forecast_utilization(snapshot, vms, forecast)
    total = np.asarray(snapshot.vm_total_mips)[vms]
    tables = np.asarray(dc.power_tables)
    bandwidth = np.asarray(dc.bw_mbit_s, dtype=np.float64) / 2 * 1e6 / 8 / MIB
    arrays = ClusterArrays.build(
        host_ids=[f"h{h}" for h in range(dc.n_hosts)],
        host_cores=np.asarray(dc.total_mips, dtype=np.float64) / MIPS_PER_CORE,
        host_memory_mib=np.asarray(dc.ram_mb, dtype=np.float64),
        host_bandwidth_mib_s=bandwidth, host_idle_w=tables[:, 0].copy(), host_max_w=tables[:, -1].copy(),
        vm_ids=[f"v{v}" for v in vms.tolist()], vm_host=where[vms], vm_vcpus=total / MIPS_PER_CORE,
        vm_memory_mib=np.asarray(snapshot.vm_ram_mb, dtype=np.float64)[vms],
        vm_memory_used_mib=np.asarray(snapshot.vm_ram_mb, dtype=np.float64)[vms] * MB / MIB,
        vm_cpu=planned * total / MIPS_PER_CORE, vm_cpu_spread=spread * total / MIPS_PER_CORE,
        vm_dirty_rate_mib_s=np.asarray(snapshot.vm_utilization)[vms] * dirty_mib_s_at_full_cpu,
        vm_movable=~np.asarray(snapshot.vm_migrating)[vms] & ~fading(snapshot, vms, pin_fading),
        host_rules=_slow_pe_rules(snapshot, vms, planned),
    )
    return arrays, vms
