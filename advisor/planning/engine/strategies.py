"""The strategies registry: a name, what the strategy is for, its documented parameters, and the function.

Every strategy has the signature ``run(cluster, costs, *, settings, history, now_s, pricing, **parameters) ->
Plan``: pure, over a `ClusterArrays` snapshot and a `MoveCosts`, simulating each chosen move on its own copy of the
loads before choosing the next; `pricing`, when given, is the `MoveCosts` the chosen moves are priced, scheduled
and stored with (`costs` then only ranks candidates, see planner.py). `plan(name, cluster, costs, ...)` runs one
by name; `register_strategy` adds one.

- `balance` (balance.py): hotspot relief, then even load.
- `consolidate` (consolidate.py): empty underloaded hosts so they can be switched off; which to switch back on.
- `drain` (drain.py): evacuate one host for maintenance within a deadline, with a dry run of what cannot go.
- `evacuate` (evacuate.py): restart elsewhere, in priority order, the VMs of a host that is down.

Scale, and sharding when one machine is not enough. A plan's cost is O(moves x pool) (see planner.py): 2-5 s for
the 4,000-5,000 moves of a plan on 10,000 hosts and 200,000 VMs, on one core (benchmarks/bench_planner.py and
docs/planning.md). Beyond that, or to bound what one failure can stop, the planner shards by cell, as Nova cells
and Borg cells do:

1. Cells are the unit of placement: a set of hosts (a rack row, a power domain, a network segment) with the
   VMs on them; every hard rule is expected to stay within a cell (anti-affinity groups, host rules, CPU
   models), which is also how operators lay them out. A cell is planned alone, on its own `ClusterArrays`
   slice, by one worker: cells share nothing, so N cells plan in parallel on N cores or machines, and a plan of
   a cell of 10,000 hosts takes what it takes here.
2. A global coordinator only moves capacity between cells, on aggregates (per cell: CPU and memory used and
   free, hosts idle, hotspots left after the cell's own plan): a cell whose balance plan leaves hotspots, or a
   drain that finds no room, asks the coordinator for a donor cell; the coordinator picks the least loaded cell
   reachable over the migration network and plans the few cross-cell moves by running the same strategy on a
   two-cell slice (the source host's VMs against the donor cell's pool). Cross-cell moves are rare by design.
3. Limits stay exact: each cell owns its hosts' concurrency slots; the cluster-wide limit is split into
   per-cell budgets that the coordinator rebalances, so no cell can start a storm.
4. Consistency: a cell's plan is computed on a snapshot of that cell at a version; applying it checks the
   version (compare-and-set, as recommendations are stored), so two planners never act on the same host.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from advisor.planning.engine.balance import BALANCE_WEIGHTS, balance
from advisor.planning.engine.churn import MoveHistory
from advisor.planning.engine.consolidate import PACK_WEIGHTS, consolidate
from advisor.planning.engine.costs import MoveCosts
from advisor.planning.engine.drain import DRAIN_WEIGHTS, drain
from advisor.planning.engine.evacuate import EVACUATE_WEIGHTS, evacuate
from advisor.planning.engine.planner import PlanSettings
from advisor.planning.engine.results import Plan
from advisor.planning.engine.snapshot import ClusterArrays


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    summary: str
    parameters: Mapping[str, str]  # name -> what it means, with its default
    run: Callable[..., Plan] = field(repr=False)


_REGISTRY: dict[str, StrategyInfo] = {}

_COMMON = {
    "settings": "PlanSettings: filters (allocation ratios, CPU headroom), anti-churn (min gain, cooldown, cap, "
    "no return), concurrency limits (2/2/5), downtime limit (300 ms), per-move deadline, pool size",
    "history": "MoveHistory: each VM's last move, for cooldowns and no return (default: none)",
    "now_s": "the time of the plan, in the history's clock (default 0)",
    "max_moves": "cap on moves (default 0: the anti-churn cap, 2.5% of the VMs)",
}


def register_strategy(info: StrategyInfo, *, replace: bool = False) -> None:
    if info.name in _REGISTRY and not replace:
        raise ValueError(f"strategy {info.name!r} is already registered")
    _REGISTRY[info.name] = info


def strategy_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def strategy_info(name: str) -> StrategyInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; known: {', '.join(_REGISTRY)}") from None


def plan(
    name: str,
    cluster: ClusterArrays,
    costs: MoveCosts,
    *,
    settings: PlanSettings | None = None,
    history: MoveHistory | None = None,
    now_s: float = 0.0,
    pricing: MoveCosts | None = None,
    **parameters: object,
) -> Plan:
    """Run strategy `name`; unknown parameters are refused by name. `pricing` prices the chosen moves (default:
    `costs`)."""
    info = strategy_info(name)
    unknown = sorted(set(parameters) - set(info.parameters))
    if unknown:
        raise TypeError(f"strategy {name!r} has no parameter {', '.join(unknown)}; it takes "
                        f"{', '.join(info.parameters)}")
    return info.run(cluster, costs, settings=settings or PlanSettings(), history=history, now_s=now_s, pricing=pricing,
                    **parameters)


register_strategy(StrategyInfo(
    "balance", "hotspot relief, then even load; cost-aware, without churn",
    {
        **_COMMON,
        "hot": "CPU load above which a host is relieved (default 0: the settings' rebalance_hot, or if 0 the "
        "filters' max_cpu_after, 0.85)",
        "tolerance": "even the load until the busiest host is within this of the mean (default: the settings' "
        "rebalance_tolerance, 0.10; 0: off)",
        "weights": f"Weights of the target score (default {BALANCE_WEIGHTS})",
        "horizon_s": "> 0: relief takes only moves whose SLA time saved over this horizon (the host's foreseen "
        "time over capacity) exceeds the migration's own seconds, most saved per second first; a host with VMs of "
        "unknown CPU spread is relieved by load, saying so (default: the settings' rebalance_horizon_s, 0: relief "
        "per second of migration)",
    },
    balance,
))
register_strategy(StrategyInfo(
    "consolidate", "empty underloaded hosts to switch them off; which idle hosts to switch back on",
    {
        **_COMMON,
        "underload": "hosts below this CPU load are candidates to empty (default 0.5)",
        "min_saving_w": "minimum power saved per move, W (default 5)",
        "wake_above": "switch idle hosts on when running hosts' CPU load exceeds this (default 0.8)",
        "wake_target": "... until it is back to this (default 0.7)",
        "weights": f"Weights of the target score (default {PACK_WEIGHTS}: pack)",
        "max_hosts": "at most this many hosts emptied (default 0: no limit)",
        "busy_floor": "rank hosts by power saved per migration second weighted by each VM's busy cores plus this "
        "many (the guests' slowdown while they move); default none: per migration second",
    },
    consolidate,
))
register_strategy(StrategyInfo(
    "drain", "evacuate one host for maintenance within a deadline; dry run of what cannot go",
    {
        **_COMMON,
        "host": "the host to evacuate (required)",
        "deadline_s": "the host should be empty this long after the drain starts (default 0: none)",
        "weights": f"Weights of the target score (default {DRAIN_WEIGHTS})",
    },
    drain,
))
register_strategy(StrategyInfo(
    "evacuate", "restart elsewhere, in priority order, the VMs of a host that is down; say which cannot be",
    {
        **_COMMON,
        "host": "the host that is down (required)",
        "priorities": "restart priority by VM id, higher first (default: all 0)",
        "unrestartable": "VM id -> (kind, reason) of VMs that cannot be restarted elsewhere (default: none)",
        "excluded": "other hosts that take nothing (e.g. also down; default: none)",
        "weights": f"Weights of the target score (default {EVACUATE_WEIGHTS})",
    },
    evacuate,
))
