"""The balance strategy: relieve hotspots, then even the load out (DRS-like), cost-aware and without churn.

1. Hotspot relief: every host above `hot` CPU load (hottest first) sheds VMs until it is at or below `hot`.
   Each time the VM moved is the one with the most relief per second of predicted migration: relief is the load
   it takes off the host (capped at what is above `hot`), so a cheap VM that is just big enough beats a big
   expensive one. Targets pass every filter, including the CPU headroom, so no target becomes hot.
2. Even load (when `tolerance` > 0): while the busiest host is more than `tolerance` above the mean load of the
   running hosts, move the VM off it whose move narrows the spread most per second of migration. The gain of a
   move is how much it lowers the sum of squared host loads (the spread's measure); a move gaining less than the
   anti-churn `min_gain` is not worth its migration. A host that cannot be improved is left and the next busiest
   is tried.
Both phases respect the move cap, skip VMs in cooldown or pinned, move a VM at most once, never back to a host it
left recently, and refuse a move predicted to break the downtime limit (the next candidate is tried).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from advisor.domain.text import counted
from advisor.planning.engine.churn import MoveHistory
from advisor.planning.engine.costs import MoveCosts
from advisor.planning.engine.forecast import MIN_SPREAD_SAMPLES
from advisor.planning.engine.overload import OVERLOAD, overload_probability, saved_seconds, target_seconds, vm_variance
from advisor.planning.engine.planner import Choice, MoveRecord, Planner, PlanSettings, movable
from advisor.planning.engine.results import Plan
from advisor.planning.engine.snapshot import BoolArray, ClusterArrays, FloatArray, IntArray
from advisor.planning.engine.weighers import Weights

BALANCE_WEIGHTS = Weights(load=1.0, balance=1.0, energy=0.5)  # wake an idle host only when it pays
# Below this many seconds a migration counts as this long when relief is divided by cost (no division by ~0).
COST_FLOOR_S = 1.0
LOOKAHEAD = 64  # busiest hosts whose VMs are costed together


def _running(planner: Planner) -> IntArray:
    hosts: IntArray = np.flatnonzero(planner.work.on & ~planner.cluster.host_disabled)
    return hosts


def _relieve(p: Planner, host: int, hot: float, weights: Weights, why_not_foreseen: str = "") -> None:
    c, loads = p.cluster, p.work.loads
    while not p.full and loads.host_cpu[host] / c.host_cores[host] > hot:
        vms = p.work.vms_on(host)
        vms = vms[movable(p, vms)]
        excess = loads.host_cpu[host] - hot * c.host_cores[host]
        relief = np.minimum(c.vm_cpu[vms], excess) / c.host_cores[host]
        vms, relief = vms[relief > 0], relief[relief > 0]
        if vms.size == 0:
            return
        seconds = p.seconds(vms)
        rank = relief / np.maximum(seconds, COST_FLOOR_S)
        load = loads.host_cpu[host] / c.host_cores[host]
        mean = _mean(p)  # the loads stay as they are until a move
        for k in np.argsort(-rank, kind="stable").tolist():
            vm = int(vms[k])
            choice = _relief_target(p, vm, weights, mean)
            if choice is None:
                continue
            why = (f"{c.host_ids[host]} is hot ({load:.0%} CPU > {hot:.0%}); moving {c.vm_ids[vm]} takes "
                   f"{relief[k]:.0%} off it for {seconds[k]:.1f} s of migration: the most relief per second of the "
                   f"{vms.size} movable VMs{why_not_foreseen}")
            p.apply(vm, choice, why, float(relief[k]), weights)
            break
        else:
            return


def _relieve_foreseen(p: Planner, host: int, hot: float, weights: Weights, horizon_s: float) -> None:
    """Relief ranked by SLA time (overload.py): VMs are taken, most SLA seconds saved per second of migration
    first (ties: most load off per second), while the host is above `hot`; then only the first k moves are kept,
    k the one with the most SLA time saved net of what the migrations cost (0: the host is left as it is)."""
    c, loads = p.cluster, p.work.loads
    variance = vm_variance(c)
    cores = float(c.host_cores[host])
    start = len(p.records)
    net, best, best_k, left = 0.0, 0.0, 0, float(overload_probability(loads.host_cpu[host], variance[
        p.work.vms_on(host)].sum(), cores, OVERLOAD)[0])
    while not p.full and loads.host_cpu[host] / cores > hot:
        on = p.work.vms_on(host)
        vms = on[movable(p, on)]
        if vms.size == 0:
            break
        seconds = p.seconds(vms)
        saved = saved_seconds(c, float(loads.host_cpu[host]), float(variance[on].sum()), host, vms, seconds,
                              OVERLOAD, horizon_s)
        relief = np.minimum(c.vm_cpu[vms], loads.host_cpu[host] - hot * cores) / cores
        floor = np.maximum(seconds, COST_FLOOR_S)
        load = loads.host_cpu[host] / cores
        mean = _mean(p)  # the loads stay as they are until a move
        for k in np.lexsort((-relief / floor, -saved / floor)).tolist():
            vm = int(vms[k])
            choice = _relief_target(p, vm, weights, mean)
            if choice is None:
                continue
            t = choice.host
            there = variance[p.work.vms_on(t)]
            unknown = int(np.isnan(there).sum())  # counted for the floor only
            added = target_seconds(c, float(loads.host_cpu[t]), float(np.nansum(there)), t, vm, OVERLOAD,
                                   horizon_s)
            of_unknown = f", {counted(unknown, 'VM')} there of unknown spread" if unknown else ""
            why = (f"{c.host_ids[host]} is hot ({load:.0%} CPU > {hot:.0%}, {left:.0%} likely over capacity in the "
                   f"next {horizon_s:.0f} s); moving {c.vm_ids[vm]} saves {saved[k]:.0f} s of SLA time there "
                   f"({added:.0f} s added on {c.host_ids[t]}{of_unknown}) for {seconds[k]:.1f} s of migration: the "
                   f"most SLA time saved per second of the {vms.size} movable VMs")
            # the gain recorded is the load taken off, as by-load relief's: what advisor.planning.value prices
            p.apply(vm, choice, why, float(relief[k]), weights)
            net += float(saved[k]) - added - float(seconds[k])
            left = float(overload_probability(loads.host_cpu[host], variance[p.work.vms_on(host)].sum(), cores,
                                              OVERLOAD)[0])
            if net > best:
                best, best_k = net, len(p.records) - start
            break
        else:
            break
    p.undo(len(p.records) - start - best_k)


def _unknown_spread(p: Planner, host: int) -> str:
    """Why `host` cannot be relieved by SLA time (some of its VMs' spread unknown), as a reason's ending; "" if it
    can."""
    spread = p.cluster.vm_cpu_spread
    if spread is None:
        return " (by load, not SLA time: no VM's CPU spread was measured)"
    on = p.work.vms_on(host)
    unknown = int(np.isnan(spread[on]).sum())
    if not unknown:
        return ""
    return (f" (by load, not SLA time: the CPU spread of {unknown} of its {counted(on.size, 'VM')} is unknown, "
            f"fewer than {MIN_SPREAD_SAMPLES} samples)")


def _relief_target(p: Planner, vm: int, weights: Weights, mean: float) -> Choice | None:
    """The spread pool's best host for `vm` (`mean`: the running hosts' mean load) where the move meets the limits;
    else None, the VM refused saying why."""
    choice = p.choose(vm, weights, pool="spread", mean_cpu=mean)
    if choice is None:
        p.refuse(vm, "no target", p.last_failure)
        return None
    broken = p.check(vm, choice.host)
    if broken:
        p.refuse(vm, "limit", broken, choice.host)
        return None
    return choice


def _mean(p: Planner) -> float:
    running = _running(p)
    return float(p.work.cpu_ratio()[running].mean()) if running.size else 0.0


def _gain(u_s: FloatArray | float, u_t: FloatArray | float, d_s: FloatArray, d_t: FloatArray) -> FloatArray:
    """How much moving load d (as fractions of source and target) lowers the sum of squared loads."""
    gain: FloatArray = u_s**2 + np.square(u_t) - (u_s - d_s) ** 2 - np.square(np.asarray(u_t) + d_t)
    return gain


def _move_off(p: Planner, host: int, ratio: FloatArray, mean: float, coolest: float, tolerance: float,
              weights: Weights) -> bool:
    """Move the VM off `host` whose move narrows the spread most per second of migration; False if none is worth
    its migration."""
    c, min_gain = p.cluster, p.settings.churn.min_gain
    vms = p.work.vms_on(host)
    vms = vms[movable(p, vms)]
    d_s = c.vm_cpu[vms] / c.host_cores[host]
    # Best case for ranking: the VM lands on the coolest host (same size); the real target is checked below.
    bound = _gain(float(ratio[host]), coolest, d_s, d_s)
    keep = bound >= min_gain
    vms, bound = vms[keep], bound[keep]
    if not vms.size:
        return False
    seconds = p.seconds(vms)
    for k in np.argsort(-bound / np.maximum(seconds, COST_FLOOR_S), kind="stable").tolist():
        vm = int(vms[k])
        choice = p.choose(vm, weights, pool="spread", mean_cpu=mean)
        if choice is None:
            continue
        t = choice.host
        gain = float(_gain(float(ratio[host]), float(ratio[t]), c.vm_cpu[vm] / c.host_cores[host],
                           c.vm_cpu[vm] / c.host_cores[t]))
        if gain < min_gain:
            continue
        broken = p.check(vm, t)
        if broken:
            p.refuse(vm, "limit", broken, t)
            continue
        why = (f"{c.host_ids[host]} is the busiest host ({ratio[host]:.0%} CPU, mean {mean:.0%}, tolerance "
               f"{tolerance:.0%}); moving {c.vm_ids[vm]} ({c.vm_cpu[vm]:.2f} cores busy) lowers the spread "
               f"by {gain:.3f} for {seconds[k]:.1f} s of migration: the best gain per second")
        p.apply(vm, choice, why, gain, weights)
        return True
    return False


def _first(values: FloatArray, k: int) -> IntArray:
    """Positions of the k lowest values, lowest first, ties in position order: `np.argsort(values, kind="stable")[:k]`
    without sorting them all."""
    if values.shape[0] > k > 0:
        kth = np.partition(values, k - 1)[k - 1]
        if not np.isnan(kth):
            among = np.flatnonzero(values <= kth)  # the k lowest, and any more tied with the k-th
            few: IntArray = among[np.argsort(values[among], kind="stable")[:k]]
            return few
    first: IntArray = np.argsort(values, kind="stable")[:k]
    return first


def _prefetch(p: Planner, hosts: IntArray, ratio: FloatArray, coolest: float) -> None:
    """Cost in one request the VMs on `hosts` that `_move_off` would rank as the loads are now: movable, their
    best-case gain at least the anti-churn `min_gain` (at 10,000 hosts, half of the VMs on the busiest hosts are
    not, and costing them was half of a rebalance's ranking). One whose bound passes later is costed then."""
    c = p.cluster
    on = np.zeros(c.n_hosts + 1, dtype=bool)  # [-1]: no host
    on[hosts] = True
    vms = np.flatnonzero(on[p.work.loads.vm_host])
    vms = vms[movable(p, vms)]
    where = p.work.loads.vm_host[vms]
    d_s = c.vm_cpu[vms] / c.host_cores[where]
    bound = _gain(ratio[where], coolest, d_s, d_s)
    p.seconds(vms[bound >= p.settings.churn.min_gain])


class _RunningLoads:
    """The running hosts and their CPU loads as `_even` reads them before each move, brought up to date by the hosts
    the moves since changed rather than read whole again (each ratio is the same division, and the mean and the
    minimum are taken over the same array: the same bits); read whole again when a host starts or stops running."""

    def __init__(self, p: Planner, done: BoolArray) -> None:
        self._p, self._done = p, done
        self.ratio = p.work.cpu_ratio()  # every host's; the planner's moves leave it to `update`
        self._read()

    def _read(self) -> None:
        p = self._p
        self.is_running = p.work.on & ~p.cluster.host_disabled
        self.running = np.flatnonzero(self.is_running)
        self.running_ratio = self.ratio[self.running]
        self.open_ratio = np.where(self._done[self.running], -np.inf, self.running_ratio)  # a host given up is
        # never the busiest

    def update(self, moves: Sequence[MoveRecord]) -> None:
        """After `moves` (the plan's moves since the last read)."""
        p = self._p
        hosts = np.array(sorted({h for r in moves for h in (r.source, r.target) if h >= 0}), dtype=np.int64)
        self.ratio[hosts] = p.work.loads.host_cpu[hosts] / p.cluster.host_cores[hosts]
        if ((p.work.on[hosts] & ~p.cluster.host_disabled[hosts]) != self.is_running[hosts]).any():
            self._read()
            return
        hosts = hosts[self.is_running[hosts]]
        at = np.searchsorted(self.running, hosts)
        self.running_ratio[at] = self.ratio[hosts]
        self.open_ratio[at] = np.where(self._done[hosts], -np.inf, self.ratio[hosts])


def _even(p: Planner, tolerance: float, weights: Weights) -> None:
    c = p.cluster
    done = np.zeros(c.n_hosts, dtype=bool)
    fetched = np.zeros(c.n_hosts, dtype=bool)
    loads = _RunningLoads(p, done)
    seen = -1  # the number of moves when the loads below were read
    while not p.full:
        if len(p.records) != seen:  # a move changed the loads (a host given up changes nothing)
            if seen >= 0:
                loads.update(p.records[seen:])
            seen = len(p.records)
            running, ratio, open_ratio = loads.running, loads.ratio, loads.open_ratio
            if running.size < 2:
                return
            mean = float(loads.running_ratio.mean())
            coolest = float(loads.running_ratio.min())
        # the busiest open host (ties to the lowest index, as argmax over the open hosts in index order)
        at = int(np.argmax(open_ratio))
        if open_ratio[at] == -np.inf:
            return
        host = int(running[at])
        if ratio[host] - mean <= tolerance:
            return
        if not fetched[host]:
            open_ = running[open_ratio > -np.inf]
            ahead = open_[_first(-ratio[open_], LOOKAHEAD)]
            ahead = ahead[ratio[ahead] - mean > tolerance]
            fetched[ahead] = True
            _prefetch(p, ahead, ratio, coolest)
        if not _move_off(p, host, ratio, mean, coolest, tolerance, weights):
            done[host] = True
            open_ratio[at] = -np.inf


def balance(
    cluster: ClusterArrays,
    costs: MoveCosts,
    *,
    settings: PlanSettings = PlanSettings(),  # noqa: B008 - frozen dataclass defaults are safe to share
    history: MoveHistory | None = None,
    now_s: float = 0.0,
    hot: float = 0.0,
    tolerance: float | None = None,
    weights: Weights = BALANCE_WEIGHTS,
    max_moves: int = 0,
    pricing: MoveCosts | None = None,
    horizon_s: float | None = None,
) -> Plan:
    """Hotspot relief, then even load; see the module docstring. `hot` 0 means the settings' `rebalance_hot`
    (if 0, the filters' max_cpu_after), no `tolerance` the settings' `rebalance_tolerance`; `horizon_s` (default:
    the settings' `rebalance_horizon_s`) > 0 ranks relief by SLA time (overload.py) on each host whose VMs' CPU
    spread is known, and by load on the others, saying so."""
    hot = hot or settings.rebalance_hot or settings.filters.max_cpu_after
    tolerance = settings.rebalance_tolerance if tolerance is None else tolerance
    horizon_s = settings.rebalance_horizon_s if horizon_s is None else horizon_s
    p = Planner(cluster, costs, settings, history, now_s, max_moves, pricing=pricing)
    ratio = p.work.cpu_ratio()
    hot_hosts = np.flatnonzero((ratio > hot) & ~cluster.host_disabled)
    p.prefetch(hot_hosts)
    for host in hot_hosts[np.argsort(-ratio[hot_hosts], kind="stable")].tolist():
        if p.full:
            break
        why_not = _unknown_spread(p, int(host)) if horizon_s > 0 else ""
        if horizon_s > 0 and not why_not:
            _relieve_foreseen(p, int(host), hot, weights, horizon_s)
        else:
            _relieve(p, int(host), hot, weights, why_not)
    if tolerance > 0:
        _even(p, tolerance, weights)
    ratio = p.work.cpu_ratio()
    still_hot = int(((ratio > hot) & ~cluster.host_disabled).sum())
    running = _running(p)
    spread = float(ratio[running].max() - ratio[running].min()) if running.size else 0.0
    summary = (f"Balance: {counted(hot_hosts.size, 'hot host')} above {hot:.0%} before, {still_hot} after; CPU "
               f"load spread after {spread:.0%} (cap {counted(p.cap, 'move')}).")
    params = {"hot": hot, "tolerance": tolerance, "weights": weights, "max_moves": p.cap, "horizon_s": horizon_s}
    return p.finish("balance", params, summary, "load relieved (fraction of the source) or spread gained")
