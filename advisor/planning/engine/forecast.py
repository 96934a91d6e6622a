"""What a plan foresees of each VM's CPU, from its recent samples: the load to plan for and how far it may stray.

One function for the simulator (advisor/evaluation/bridge.py: the trace's samples seen so far) and for serving
(advisor/usecases/snapshots.py: the recent samples kept per VM), so that both feed the engine the same numbers:
- the forecast utilisation is the larger of now and the mean of the last `window` samples, plus `spread`
  standard deviations, within [0, 1];
- the spread is the standard deviation of the last `std_window` samples; with fewer than `MIN_SPREAD_SAMPLES`
  it is unknown (NaN), never guessed: relief then ranks that VM's host by load (balance.py says so in its
  reasons), and the forecast adds nothing for it.
Both count samples, not seconds: the settings were chosen on traces sampled every 300 s.

The settings cross-validation chose for the advisor policy (docs/simulation-advisor.md) are `TUNED`, defined here
once: the simulator's policy (advisor/evaluation/policy.py) and serving's plan settings (advisor/config.py) take
their defaults from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from advisor.planning.engine.snapshot import ClusterArrays, FloatArray, IntArray, host_sums

MIN_SPREAD_SAMPLES = 2  # a standard deviation needs two samples


@dataclass(frozen=True)
class Forecast:
    window: int = 3  # samples averaged
    spread: float = 0.0  # standard deviations added to the forecast
    std_window: int = 6  # samples the standard deviation is taken over

    @property
    def samples(self) -> int:
        """The most recent samples a forecast reads."""
        return max(self.window, self.std_window)


@dataclass(frozen=True)
class Tuned:
    """The advisor policy's settings as cross-validation chose them (one set for PlanetLab and Bitbrains)."""

    hot: float = 1.0  # forecast CPU load above which a host is relieved
    horizon_s: float = 1800.0  # relief ranked by the SLA time it saves over this horizon (0: by load)
    headroom: float = 0.95  # forecast CPU load a plan's target may reach
    underload: float = 0.75  # hosts below this forecast load are candidates to empty
    min_saving_w: float = 0.5  # per consolidation move (memory-bound hosts of many small VMs save ~1.7 W a move)
    cooldown_per_move_s: float = 5.0  # a VM's cooldown grows by this x its last move's predicted seconds
    # consolidation places a host's VMs largest share (CPU or memory, where memory is enforced) first
    dominant_order: bool = True
    forecast: Forecast = field(default_factory=Forecast)


TUNED = Tuned()


def forecast_utilization(now: FloatArray, history: FloatArray, have: IntArray | int,
                         f: Forecast) -> tuple[FloatArray, FloatArray]:
    """Per VM (row): the utilisation to plan for and its spread (NaN: unknown), from `history` (rows of
    utilisation samples, newest first) of which the first `have` (per row, or one for all) are samples."""
    n = history.shape[0]
    have = np.broadcast_to(np.asarray(have, dtype=np.int64), (n,))
    planned = np.empty(n, dtype=np.float64)
    spread = np.full(n, np.nan, dtype=np.float64)
    for count in np.unique(have).tolist():  # rows of one length at a time, each by plain slices
        rows = np.flatnonzero(have == count)
        seen = max(1, count)
        recent = history[rows, : min(f.window, seen)]
        planned[rows] = np.maximum(now[rows], recent.mean(axis=1))
        if count >= MIN_SPREAD_SAMPLES:
            spread[rows] = history[rows, : min(f.std_window, count)].std(axis=1)
    planned = np.clip(planned + f.spread * np.nan_to_num(spread), 0.0, 1.0)
    return planned, spread


def with_forecast(cluster: ClusterArrays, rows: IntArray, cpu: FloatArray, spread: FloatArray) -> ClusterArrays:
    """`cluster` with the VMs at `rows` planned at `cpu` (cores) with that `spread` (cores, NaN: unknown), every
    other VM's spread unknown; each host keeps its base load (what its VMs do not explain), so its load is that
    plus its VMs' forecasts."""
    vm_cpu = cluster.vm_cpu.copy()
    vm_cpu[rows] = cpu
    vm_spread = np.full(cluster.n_vms, np.nan)
    vm_spread[rows] = spread
    loads = cluster.loads.copy()
    loads.host_cpu[:] += host_sums(cluster.n_hosts, loads.vm_host, vm_cpu - cluster.vm_cpu)
    return replace(cluster, vm_cpu=vm_cpu, vm_cpu_spread=vm_spread, loads=loads.frozen()).sharing_index(cluster)


def recent_peak(history: FloatArray, have: IntArray | int, vm_host: IntArray, vm_vcpus: FloatArray, n_hosts: int,
                samples: int) -> FloatArray:
    """Per host, the highest total CPU (cores) its VMs of now asked for at any of their last `samples` samples
    (`history`: rows of utilisation, newest first, of which the first `have` are samples; a VM's missing ones count
    0); VMs not on a host (`vm_host` < 0) are left out."""
    have = np.broadcast_to(np.asarray(have, dtype=np.int64), (history.shape[0],))
    depth = max(1, min(samples, history.shape[1]))
    cores = history[:, :depth] * (np.arange(depth) < have[:, None]) * vm_vcpus[:, None]
    peak: FloatArray = np.zeros(n_hosts)
    for j in range(depth):
        peak = np.maximum(peak, host_sums(n_hosts, vm_host, cores[:, j]))
    return peak
