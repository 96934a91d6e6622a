"""Where target search would send each of many VMs, found for all of them in one pass over the hosts.

Balance's even-load phase tries a busy host's VMs one by one, and most tries end with a target that gains too
little to be worth a migration (the weighers favour a host light in memory over the coolest one). Rather than
assess and weigh each of them in turn, `best_hosts` scores a host's plain VMs (in no group or host rule, on no
named network, with no local disk: the filters and weighers that read only the loads) against the hosts at once,
as `filters.assess` and `weighers.weigh` would one by one, and names each VM's best host when its lead over the
runner-up is beyond rounding. The caller searches only the VMs whose move there may be worth it, as before, so the
plan is the same.
"""

from __future__ import annotations

import numpy as np

from advisor.domain.transport import TlsMode
from advisor.planning.engine.filters import FilterPolicy, HostView
from advisor.planning.engine.snapshot import ANY_MODEL, NO_HOST, BoolArray, ClusterArrays, FloatArray, IntArray, Loads
from advisor.planning.engine.weighers import Weights

# A best host whose score is not below the runner-up's by more than this is not named: the scores here are summed
# in another order than the weighers' and may differ from theirs in the last bits.
LEAD = 1e-9


def plain(cluster: ClusterArrays) -> BoolArray:
    """VMs whose targets only the loads decide: no group or host rule, no named network, no local disk."""

    def rows(ptr: IntArray) -> BoolArray:
        has: BoolArray = ptr[1:] > ptr[:-1]
        return has

    ok: BoolArray = ~rows(cluster.groups.of_vm.ptr) & ~rows(cluster.host_rules.of_vm.ptr)
    if cluster.networks.names:
        ok &= ~rows(cluster.networks.of_vm.ptr)
    ok &= ~(cluster.vm_local_disk_mib > 0)
    return ok


def best_hosts(cluster: ClusterArrays, loads: Loads, vms: IntArray, policy: FilterPolicy, view: HostView,
               left: IntArray, weights: Weights, *, mean_cpu: float, reference_w: float,
               power_w: FloatArray) -> IntArray:
    """The host of `view` that assessing and weighing each of `vms` (`plain` ones, all on one host) alone would
    choose (`left`: the host each may not return to; `power_w`: every host's power now), or NO_HOST where this
    cannot tell: no eligible host in `view`, or a lead within rounding. Eligibility is computed as the filters do,
    to the bit; scores may differ from the weighers' by rounding, which `LEAD` absorbs."""
    index, cores = view.index, view.cores
    if not vms.size or not index.size:
        return np.full(vms.shape[0], NO_HOST, dtype=np.int64)

    def take(a: np.ndarray) -> np.ndarray:
        return a if view.all_hosts else a[index]

    def each(a: np.ndarray) -> np.ndarray:  # one value per VM, against every host
        return a[:, None]

    source = int(loads.vm_host[vms[0]])
    never = view.disabled | (index == source)  # whatever the VM
    if source != NO_HOST and not view.one_cluster:
        never |= view.cluster != cluster.host_cluster[source]
    if source != NO_HOST and policy.migration_tls is TlsMode.REQUIRED:
        never |= ~take(cluster.host_migration_tls) | ~cluster.host_migration_tls[source]
    rejected = take(loads.host_vcpus) + each(cluster.vm_vcpus[vms]) > cores * policy.cpu_allocation_ratio
    rejected |= never
    model, back = cluster.vm_cpu_model[vms], left[vms]
    if (model != ANY_MODEL).any():
        rejected |= (each(model) != ANY_MODEL) & (view.cpu_model != each(model))
    if (back != NO_HOST).any():
        rejected |= index == each(back)  # NO_HOST is no index
    memory_after = (take(loads.host_memory_mib) + each(cluster.vm_memory_mib[vms])) / view.memory_mib
    rejected |= memory_after > policy.memory_allocation_ratio
    cpu_after = (take(loads.host_cpu) + each(cluster.vm_cpu[vms])) / cores
    rejected |= cpu_after > policy.max_cpu_after

    # the weighers' load, balance and energy (the VM's power added, as a share of `reference`), summed
    energy = weights.energy / (reference_w or float(cluster.host_max_w.mean()) or 1.0)
    total = np.maximum(weights.cpu * cpu_after, weights.memory * memory_after)
    total *= weights.load
    total += weights.balance * np.square(cpu_after - mean_cpu)
    total += (energy * view.span_w) * np.minimum(cpu_after, 1.0)  # a CPU load is never below 0
    total += energy * (view.idle_w - take(power_w))
    total[rejected] = np.inf
    rows = np.arange(vms.shape[0])
    first = np.argmin(total, axis=1)
    lowest = total[rows, first]
    total[rows, first] = np.inf
    clear = np.isfinite(lowest) & (total.min(axis=1) - lowest > LEAD)
    best: IntArray = np.where(clear, index[first], NO_HOST)
    return best
