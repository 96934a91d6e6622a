"""Foreseen overload: how much of the next `horizon` a host is expected to spend above its limit, and what a move
saves of it against what the migration costs.

A host's CPU over the next interval is taken as normal around its forecast (the sum of its VMs' `vm_cpu`), with
a variance that is the sum of its VMs' (`vm_cpu_spread` squared: each VM's recent wobble, fitted from its own
history as it runs, forecast.py) and never less than `SPREAD_FLOOR` of the host's cores (a forecast is never
certain). A VM whose spread is unknown (too few samples) has no variance to add: balance.py then relieves its host
by load, and a target's unknown VMs count for the floor only, each said so in the move's reason. The
probability it exceeds `limit` x its cores is the share of the horizon it is expected to spend overloaded: its
SLA time (the time its VMs are denied CPU they ask for).

A move's SLA time saved is the source's expected overload time over what is left of the horizon once the move
ends (the source carries the VM until then) less the target's added expected overload time; its cost is the
migration's own duration, during which the VM runs degraded (CloudSim counts the target in SLA violation for
that time). Both are seconds of SLA time, so they compare directly.
"""

from __future__ import annotations

import math

import numpy as np

from advisor.planning.engine.snapshot import ClusterArrays, FloatArray, IntArray

OVERLOAD = 1.0  # of a host's cores: above it, its VMs are denied CPU they ask for
SPREAD_FLOOR = 0.03  # of a host's cores: the least uncertainty of a host's forecast

_erfc = np.frompyfunc(math.erfc, 1, 1)


def vm_variance(cluster: ClusterArrays) -> FloatArray:
    """Per VM, the variance of its CPU (cores squared) over the next interval; NaN where unknown."""
    spread = cluster.vm_cpu_spread
    variance: FloatArray = np.full(cluster.n_vms, np.nan) if spread is None else np.square(spread)
    return variance


def overload_probability(cpu: FloatArray | float, variance: FloatArray | float, cores: FloatArray | float,
                         limit: float) -> FloatArray:
    """P(a host's CPU > limit x cores) for hosts of forecast `cpu` (cores) and `variance` (cores squared)."""
    cores = np.asarray(cores, dtype=np.float64)
    sigma = np.sqrt(np.asarray(variance, dtype=np.float64) + np.square(SPREAD_FLOOR * cores))
    z = (limit * cores - np.asarray(cpu, dtype=np.float64)) / (sigma * math.sqrt(2.0))
    p: FloatArray = 0.5 * np.asarray(_erfc(np.atleast_1d(z)), dtype=np.float64)
    return p


def saved_seconds(cluster: ClusterArrays, host_cpu: float, host_variance: float, host: int, vms: IntArray,
                  seconds: FloatArray, limit: float, horizon_s: float) -> FloatArray:
    """Per VM of `host`: the SLA seconds moving it saves the source over the horizon (before the target's side)."""
    cores = float(cluster.host_cores[host])
    variance = vm_variance(cluster)[vms]  # the source's VMs' are all known
    before = overload_probability(host_cpu, host_variance, cores, limit)
    after = overload_probability(host_cpu - cluster.vm_cpu[vms], np.maximum(host_variance - variance, 0.0), cores,
                                 limit)
    saved: FloatArray = (before - after) * np.maximum(horizon_s - seconds, 0.0)
    return saved


def target_seconds(cluster: ClusterArrays, target_cpu: float, target_variance: float, target: int, vm: int,
                   limit: float, horizon_s: float) -> float:
    """The expected overload time the VM adds to `target` over the horizon."""
    cores = float(cluster.host_cores[target])
    before = overload_probability(target_cpu, target_variance, cores, limit)
    after = overload_probability(target_cpu + cluster.vm_cpu[vm], target_variance + vm_variance(cluster)[vm], cores,
                                 limit)
    return float((after - before)[0]) * horizon_s
