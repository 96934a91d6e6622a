"""What a planned move is worth against what it costs, as one dimensionless ratio (benefit over cost).

The strategies measure gain in their own units (balance: the share of a host's CPU relieved, or the spread gained;
consolidate: watts saved). To compare a move with its migration, both sides are valued over the same horizon in
the same unit:
- balance: core-seconds of load moved off a busy host over HORIZON_S, against the core-seconds the migration
  spends (the migration threads of source and target, MIGRATION_CORES, for the predicted time, and the guest's
  vCPUs stopped for the downtime);
- consolidate: joules saved over HORIZON_S, against the joules the migration spends (the same cores at the
  source host's watts per core).
A drain is required, not a trade: it has no ratio (None), and its priority says so.
"""

from __future__ import annotations

from typing import Final

from advisor.planning.engine import ClusterArrays, PlannedMove

HORIZON_S: Final = 3600.0
MIGRATION_CORES: Final = 2.0  # one busy core on each side while memory streams
DEFAULT_WATTS_PER_CORE: Final = 10.0  # when a host's power figures are unknown


def move_cost_core_s(move: PlannedMove, cluster: ClusterArrays) -> float:
    total_s = move.cost.total_time_ms.median / 1000.0
    downtime_s = move.cost.downtime_ms.median / 1000.0
    return MIGRATION_CORES * total_s + downtime_s * float(cluster.vm_vcpus[move.vm])


def benefit_over_cost(strategy: str, move: PlannedMove, cluster: ClusterArrays) -> float | None:
    cost_core_s = max(move_cost_core_s(move, cluster), 1e-3)
    if strategy == "balance":
        return move.benefit * float(cluster.host_cores[move.source]) * HORIZON_S / cost_core_s
    if strategy == "consolidate":
        source = move.source
        span_w = float(cluster.host_max_w[source] - cluster.host_idle_w[source])
        watts_per_core = span_w / float(cluster.host_cores[source]) if span_w > 0 else DEFAULT_WATTS_PER_CORE
        return move.benefit * HORIZON_S / (cost_core_s * watts_per_core)
    return None


def describe(strategy: str) -> str:
    if strategy == "balance":
        return f"core-seconds of load relieved over {HORIZON_S / 3600:g} h per core-second the migration spends"
    if strategy == "consolidate":
        return f"joules saved over {HORIZON_S / 3600:g} h per joule the migration spends"
    return "required (no trade-off)"


def why_worth(strategy: str, move: PlannedMove, unit: str, ratio: float | None) -> str:
    """The move's gain in the strategy's `unit`, and over its cost where it has a ratio."""
    over = f", {ratio:.1f}x its cost in {describe(strategy)}" if ratio is not None else ""
    return f"gain {move.benefit:.3g} ({unit}){over}"
