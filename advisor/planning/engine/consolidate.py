"""The consolidate strategy: empty hosts that can then be switched off, and say which to switch back on.

Candidates are the running hosts below `underload` CPU load whose VMs may all move (none pinned, migrating or
cooling down). They are tried in order of benefit over cost: the power the host draws (what switching it off saves)
per second of migration needed to empty it (a quick estimate, memory over bandwidth, for the order; the real
predicted costs decide). With `busy_floor` set, each VM's seconds are weighted by the cores it keeps busy plus that
floor: what a migration costs is the guest's slowdown while it moves (CloudSim's PDM is 10% of the VM's CPU for its
migration's time), so a host of idle VMs is emptied before one of busy VMs that saves the same power; the floor
prices the migration of an idle VM (its link, its time). A host is emptied whole or not at all: its VMs, most CPU
first, go to the fullest running hosts that still pass every filter (the weights pack; hosts that are off, being
emptied or emptied are excluded, so no host is woken to empty another). With `overload_risk` set, a VM goes only to
hosts whose chance of passing capacity with it stays at most that (overload.py's normal model: forecast load, the
VMs' variance, at least its floor): a host full of VMs that wobble is passed over for a steadier one, where a fixed
headroom treats both alike. The trial is undone if a VM finds no host, a move would break the downtime limit, the
cap would be passed, or the saving per move is below `min_saving_w` (anti-churn's minimum gain for this strategy).
With `dominant_order` and memory enforced (a finite memory allocation ratio), a host's VMs go largest share of a
host (CPU or memory) first: on a memory-bound cluster the VMs hardest to place take the tightest holes first. With
`make_room` (memory enforced), a VM no open host has the memory for may still go to one of the `make_room` hosts
short of the least memory, once the smallest movable VM there that frees enough has moved to another open host (a
move that saves nothing itself, so it counts against `min_saving_w`): emptying one host at a time misses packings
that need such a rearrangement.
Hosts in `recently_busy` are not emptied: the caller's judgement that a host's calm is a lull (its VMs were busy a
few samples ago: VMware DPM likewise powers a host off on a long window of demand and on on a short one).
Hosts that receive VMs are not emptied later in the same plan. A host whose emptying would save too little even if
each core it moves added the least power any running host adds per core (below full load, where power is linear) is
refused without a trial, and its VMs are not costed: on hosts of many VMs most trials would end so, after placing
every VM. Most other trials still fail, for a VM no host takes: a trial's moves are explained only once it is kept
(trial.py), and the VMs of the hosts likely to be tried are costed, in one batch, only once a trial first places a
whole host.

The anti-churn cap never blocks emptying the first host whose VMs fit elsewhere (on a small cluster 2.5% of the VMs
is fewer moves than any host holds, and a consolidation that can never empty a host is no plan); a `max_moves` the
caller gives is a bound it asked for, and holds. A plan that empties nothing says why: the first blocking VM (or
limit) of the first candidate host tried.

Power advice: the emptied hosts (and running hosts that are already empty) can be switched off; if the running
hosts' CPU load after the plan exceeds `wake_above`, idle hosts are to be switched on now (most capacity per watt
first) until it is back to `wake_target`; the next few idle hosts to wake when load returns are listed in order
(hosts idle before the plan before those it empties).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from advisor.domain.text import counted
from advisor.planning.engine.churn import MoveHistory
from advisor.planning.engine.costs import MoveCosts
from advisor.planning.engine.forecast import TUNED
from advisor.planning.engine.overload import OVERLOAD, SPREAD_FLOOR, vm_variance
from advisor.planning.engine.planner import Choice, Planner, PlanSettings, movable
from advisor.planning.engine.results import Plan, PowerAdvice
from advisor.planning.engine.snapshot import BoolArray, ClusterArrays, FloatArray, IntArray
from advisor.planning.engine.trial import Trial
from advisor.planning.engine.weighers import Weights, is_on, power

PACK_WEIGHTS = Weights(load=-1.0, energy=1.0)
WAKE_LIST = 5


def _least_w_per_core(cluster: ClusterArrays, hosts: BoolArray, max_cpu_after: float) -> float:
    """The least power a core of load adds on any of `hosts` (a lower bound of what a move adds), or 0 when a
    target may pass full load, where power stops rising."""
    hosts = hosts & (cluster.host_cores > 0)
    if max_cpu_after > 1.0 or not hosts.any():
        return 0.0
    per_core = (cluster.host_max_w - cluster.host_idle_w)[hosts] / cluster.host_cores[hosts]
    return max(0.0, float(per_core.min()))


class Risk:
    """Targets a VM may go to only where their chance of passing capacity stays at most `limit` (overload.py's
    normal model: the hosts' forecast load, their VMs' variance, at least `SPREAD_FLOOR` of the cores)."""

    def __init__(self, p: Planner, limit: float) -> None:
        c = p.cluster
        self.p, self.z = p, NormalDist().inv_cdf(1.0 - limit)
        self.vm_variance = np.nan_to_num(vm_variance(c))
        placed = p.work.loads.vm_host >= 0
        self.host_variance = np.bincount(p.work.loads.vm_host[placed], weights=self.vm_variance[placed],
                                         minlength=c.n_hosts) + np.square(SPREAD_FLOOR * c.host_cores)

    def excluded(self, vm: int) -> BoolArray:
        """Hosts where `vm` would pass the limit."""
        c, cpu = self.p.cluster, self.p.work.loads.host_cpu
        sigma = np.sqrt(self.host_variance + self.vm_variance[vm])
        risky: BoolArray = cpu + c.vm_cpu[vm] + self.z * sigma > OVERLOAD * c.host_cores
        return risky

    def move(self, vm: int, target: int, sign: float = 1.0) -> None:
        self.host_variance[target] += sign * self.vm_variance[vm]


def _make_room(p: Planner, trial: Trial, vm: int, closed: BoolArray, weights: Weights,
               hosts: int) -> Choice | None:
    """A target for `vm`, which fits on no host for lack of memory, made by moving first one VM off one of the
    `hosts` open hosts short of the least memory (the smallest of their movable VMs that frees enough, to any other
    open host); that move stays in `trial` only if `vm` then finds a target. None if no such pair is found."""
    c, loads = p.cluster, p.work.loads
    ratio = p.settings.filters.memory_allocation_ratio
    if not np.isfinite(ratio) or hosts <= 0:
        return None
    room = np.arange(c.n_hosts)
    cpu_fits = loads.host_cpu + c.vm_cpu[vm] <= p.settings.filters.max_cpu_after * c.host_cores
    deficit = c.vm_memory_mib[vm] - (c.host_memory_mib * ratio - loads.host_memory_mib)
    near = room[~closed & is_on(loads, room) & cpu_fits & (deficit > 0)]
    for h in near[np.argsort(deficit[near], kind="stable")][:hosts].tolist():
        others = p.work.vms_on(h)
        others = others[movable(p, others) & (c.vm_memory_mib[others] >= deficit[h])]
        if not others.size:
            continue
        small = int(others[np.lexsort((c.vm_cpu[others], c.vm_memory_mib[others]))][0])
        away = closed.copy()
        away[h] = True
        first = p.choose(small, weights, excluded=away, pool="pack")
        if first is None:
            continue
        trial.place(small, first)
        choice = p.choose(vm, weights, excluded=closed, pool="pack")
        if choice is not None:
            return choice
        trial.take_back()
    return None


def _target(p: Planner, trial: Trial, vm: int, closed: BoolArray, weights: Weights, risk: Risk | None,
            make_room: int) -> Choice | None:
    """Where `_empty` sends `vm` (None: nowhere)."""
    choice = p.choose(vm, weights, excluded=closed if risk is None else closed | risk.excluded(vm), pool="pack")
    if choice is None and risk is None and make_room:
        choice = _make_room(p, trial, vm, closed, weights, make_room)
    return choice


def _order(c: ClusterArrays, vms: IntArray, host: int, dominant: bool) -> IntArray:
    """The order `_empty` places `vms` of `host` in: most CPU first, or with `dominant` (memory enforced: the
    caller says) largest share first."""
    if not dominant:
        return vms[np.lexsort((-c.vm_memory_mib[vms], -c.vm_cpu[vms]))]
    share = np.maximum(c.vm_cpu[vms] / c.host_cores[host], c.vm_memory_mib[vms] / c.host_memory_mib[host])
    ordered: IntArray = vms[np.lexsort((-c.vm_cpu[vms], -share))]
    return ordered


def _empty(p: Planner, host: int, closed: BoolArray, weights: Weights, min_saving_w: float,
           why_order: str, to_cost: list[IntArray], risk: Risk | None = None, dominant: bool = False,
           make_room: int = 0) -> tuple[float, str]:
    """Try to empty `host`; (watts saved, "") or (0, why not). On failure every trial move is undone. The hosts
    `to_cost` holds are costed (`Planner.prefetch`) once a trial first places all its VMs. Its VMs go most CPU
    first, or with `dominant` largest share of the host (CPU or memory, whichever is larger) first: on a
    memory-bound cluster the VMs hardest to place take the tightest holes while there are some."""
    c, loads = p.cluster, p.work.loads
    order = _order(c, p.work.vms_on(host), host, dominant and np.isfinite(p.settings.filters.memory_allocation_ratio))
    before = power(c, np.array([host]), loads.host_cpu[[host]] / c.host_cores[[host]])[0]
    closed[host] = True
    trial = Trial(p)
    failure = ""
    for vm in order.tolist():
        choice = _target(p, trial, vm, closed, weights, risk, make_room)
        if choice is None:
            failure = f"{c.vm_ids[vm]}: {p.last_failure}"
            p.refuse(vm, "no target", p.last_failure)
            break
        trial.place(vm, choice)
        if risk is not None:
            risk.move(vm, choice.host)
    placed = len(trial)
    saving = 0.0
    if not failure:
        while to_cost:
            p.prefetch(to_cost.pop())

        def why(vm: int) -> str:  # the host's load as each VM leaves it
            source = int(c.loads.vm_host[vm])
            if source != host:
                return (f"make room on {c.host_ids[source]} (memory) for a VM of {c.host_ids[host]}, so that "
                        f"{c.host_ids[host]} can be emptied and switched off; {why_order}")
            return (f"empty {c.host_ids[host]} ({counted(order.size, 'VM')}, "
                    f"{loads.host_cpu[host] / c.host_cores[host]:.0%} CPU) so it can be switched off; {why_order}")

        trial.keep(why, weights)
        recs = p.records[-placed:] if placed else []
        targets = np.array([r.target for r in recs], dtype=np.int64)
        est = p.estimate(np.array([r.vm for r in recs], dtype=np.int64), targets)
        bad = np.flatnonzero(~est.meets_limits)
        if bad.size:
            k = int(bad[0])
            failure = f"{c.vm_ids[recs[k].vm]}: {est.violation(k)}"
            p.refuse(recs[k].vm, "limit", est.violation(k), recs[k].target)
        else:
            unique = np.unique(targets)
            after = power(c, unique, loads.host_cpu[unique] / c.host_cores[unique])
            lighter = loads.host_cpu[unique].copy()
            for r in recs:
                lighter[np.searchsorted(unique, r.target)] -= c.vm_cpu[r.vm]
            was = power(c, unique, lighter / c.host_cores[unique])
            saving = float(before - (after - was).sum())
            if placed and saving / placed < min_saving_w:
                failure = f"saves {saving:.0f} W for {placed} moves, below {min_saving_w:.0f} W per move"
                for r in recs:
                    p.refuse(r.vm, "min gain", failure)
            else:
                for r in recs:
                    r.benefit = saving / max(1, placed)
    if failure:
        if risk is not None:
            for r in p.records[len(p.records) - placed:]:
                risk.move(r.vm, r.target, -1.0)
        p.undo(placed)
        closed[host] = False
        return 0.0, failure
    return saving, ""


def _why_kept(p: Planner, vms: IntArray) -> str:
    """The first VM of `vms` that may not move now, and why."""
    vm = int(vms[~movable(p, vms)][0])
    why = ("pinned or migrating" if not p.cluster.vm_movable[vm] else
           "cooling down after a recent move" if p.cooling[vm] else "already moved by this plan")
    return f"{p.cluster.vm_ids[vm]}: {why}"


def _advice(p: Planner, emptied: list[tuple[int, float]], wake_above: float, wake_target: float) -> PowerAdvice:
    c, loads = p.cluster, p.work.loads
    hosts = np.arange(c.n_hosts)
    on = is_on(loads, hosts) & ~c.host_disabled
    emptied_now = {h for h, _ in emptied}
    already = [h for h in np.flatnonzero((loads.host_vms == 0) & on).tolist() if h not in emptied_now]
    off = [(c.host_ids[h], w) for h, w in emptied]
    off += [(c.host_ids[h], float(c.host_idle_w[h] + (c.host_max_w[h] - c.host_idle_w[h])
                                  * loads.host_cpu[h] / c.host_cores[h])) for h in already]
    on &= loads.host_vms > 0
    capacity = float(c.host_cores[on].sum())
    used = float(loads.host_cpu[on].sum())
    load = used / capacity if capacity else 0.0
    idle = np.flatnonzero(~on & ~c.host_disabled & (loads.host_vms == 0))
    per_watt = c.host_cores[idle] / np.where(c.host_max_w[idle] > 0, c.host_max_w[idle], 1.0)
    just_off = np.isin(idle, np.array(sorted(emptied_now), dtype=np.int64))
    idle = idle[np.lexsort((idle, -per_watt, just_off))]  # hosts idle before this plan first
    switch_on: list[int] = []
    if load > wake_above:
        for h in idle.tolist():
            if used / (capacity + c.host_cores[switch_on].sum()) <= wake_target:
                break
            switch_on.append(h)
    rest = [h for h in idle.tolist() if h not in set(switch_on)][:WAKE_LIST]
    return PowerAdvice(tuple(off), tuple(c.host_ids[h] for h in switch_on), tuple(c.host_ids[h] for h in rest),
                       wake_above, load)


def _ranked(c: ClusterArrays, vm_host: IntArray, candidates: IntArray, watts: FloatArray,
            busy_floor: float | None) -> tuple[IntArray, FloatArray]:
    """The candidates' order (indexes into them), best saving per cost first, and each one's seconds of migration
    (its VMs' memory over its bandwidth); the cost is those seconds, or with `busy_floor` the seconds each VM's
    busy cores (plus the floor) are slowed."""
    placed = vm_host >= 0
    bandwidth = c.host_bandwidth_mib_s[candidates]
    memory = np.bincount(vm_host[placed], weights=c.vm_memory_used_mib[placed], minlength=c.n_hosts)[candidates]
    quick_s = memory / bandwidth
    if busy_floor is None:
        rank: IntArray = np.lexsort((candidates, -watts / np.maximum(quick_s, 1.0)))
        return rank, quick_s
    weighted = c.vm_memory_used_mib[placed] * (c.vm_cpu[placed] + busy_floor)
    busy_s = np.bincount(vm_host[placed], weights=weighted, minlength=c.n_hosts)[candidates] / bandwidth
    rank = np.lexsort((candidates, -watts / np.maximum(busy_s, 1e-3)))
    return rank, quick_s


def consolidate(
    cluster: ClusterArrays,
    costs: MoveCosts,
    *,
    settings: PlanSettings = PlanSettings(),  # noqa: B008 - frozen dataclass defaults are safe to share
    history: MoveHistory | None = None,
    now_s: float = 0.0,
    underload: float = 0.5,
    min_saving_w: float = 5.0,
    wake_above: float = 0.8,
    wake_target: float = 0.7,
    weights: Weights = PACK_WEIGHTS,
    max_moves: int = 0,
    max_hosts: int = 0,
    pricing: MoveCosts | None = None,
    busy_floor: float | None = None,
    overload_risk: float | None = None,
    dominant_order: bool = TUNED.dominant_order,
    make_room: int = 0,
    recently_busy: BoolArray | None = None,
) -> Plan:
    """Empty underloaded hosts whole, best saving per migration second first; see the module docstring."""
    p = Planner(cluster, costs, settings, history, now_s, max_moves, pricing=pricing)
    c, loads = cluster, p.work.loads
    hosts = np.arange(c.n_hosts)
    on = is_on(loads, hosts)
    ratio = p.work.cpu_ratio()
    closed = c.host_disabled | ~on
    candidates = np.flatnonzero(on & ~c.host_disabled & (loads.host_vms > 0) & (ratio < underload)
                                & (True if recently_busy is None else ~recently_busy))
    watts = power(c, candidates, ratio[candidates])
    rank, quick_s = _ranked(c, loads.vm_host, candidates, watts, busy_floor)
    order = candidates[rank]
    received = np.zeros(c.n_hosts, dtype=bool)
    counts = loads.host_vms[order]
    # What emptying each saves at most (a candidate's load is as now when it is tried: receiving VMs rules it out);
    # the margin keeps rounding from refusing a host whose trial would pass.
    cpu = np.bincount(loads.vm_host[loads.vm_host >= 0], weights=c.vm_cpu[loads.vm_host >= 0],
                      minlength=c.n_hosts)[order]
    at_most = watts[rank] - _least_w_per_core(c, ~closed, settings.filters.max_cpu_after) * cpu
    too_little = at_most < min_saving_w * counts - 1e-6
    hopeful = order[~too_little]
    # the VMs of the hosts likely to be tried, costed in one batch when a trial first places a whole host (most
    # place none: then nothing is costed)
    to_cost = [hopeful[: int(np.searchsorted(np.cumsum(counts[~too_little]), 2 * p.cap)) + 1]]
    risk = None if overload_risk is None else Risk(p, overload_risk)
    emptied: list[tuple[int, float]] = []
    postponed = blocked = 0
    first_blocker = ""  # why the first candidate tried stays
    for k, host in enumerate(order.tolist()):
        if received[host]:
            continue
        if max_hosts and len(emptied) >= max_hosts:
            break
        vms = p.work.vms_on(host)
        failure = ""
        if not movable(p, vms).all():
            blocked += 1
            failure = _why_kept(p, vms)
        elif len(p.records) + vms.size > p.cap and (emptied or max_moves):
            postponed += 1
            failure = f"its {counted(vms.size, 'VM')} would pass the cap of {counted(p.cap, 'move')}"
        elif too_little[k]:
            failure = f"saves at most {at_most[k]:.0f} W for {vms.size} moves, below {min_saving_w:.0f} W per move"
            for vm in vms.tolist():
                p.refuse(vm, "min gain", failure)
        else:
            why_order = (f"{power(c, np.array([host]), ratio[[host]])[0]:.0f} W drawn for about "
                         f"{quick_s[np.searchsorted(candidates, host)]:.0f} s of migration, rank {len(emptied) + 1} "
                         f"by saving per migration second{'' if busy_floor is None else ' of the cores it slows'}")
            start = len(p.records)
            saving, failure = _empty(p, host, closed, weights, min_saving_w, why_order, to_cost, risk,
                                     dominant_order, make_room)
            if not failure:
                emptied.append((host, saving))
                received[[r.target for r in p.records[start:]]] = True
        first_blocker = first_blocker or (failure and f"{c.host_ids[host]} stays, {failure}")
    advice = _advice(p, emptied, wake_above, wake_target)
    why_none = "" if emptied else " Nothing emptied: " + (
        first_blocker or f"no running host below {underload:.0%} CPU has VMs") + "."
    # without an explicit max_moves the first host emptied may pass the cap: say so where it did
    over_cap = (f" (the first host emptied passed it: {counted(len(p.records), 'move')})"
                if len(p.records) > p.cap else "")
    summary = (f"Consolidate: empty {len(emptied)} of {counted(candidates.size, 'host')} below {underload:.0%} CPU, "
               f"saving about {sum(w for _, w in emptied):.0f} W; {blocked} kept for a pinned or cooling VM, "
               f"{postponed} postponed by the cap of {counted(p.cap, 'move')}{over_cap}. Running hosts' CPU load "
               f"after: {advice.load_after:.0%}"
               + (f"; switch on {', '.join(advice.switch_on)}" if advice.switch_on else "") + "." + why_none)
    params = {"underload": underload, "min_saving_w": min_saving_w, "wake_above": wake_above,
              "wake_target": wake_target, "weights": weights, "max_moves": p.cap, "max_hosts": max_hosts}
    return p.finish("consolidate", params, summary, "W saved per move", power=advice)
