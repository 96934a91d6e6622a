"""The knobs of cluster plans that the settings set (`plan_*`); the strategies themselves are the planning
engine's (advisor.planning.engine: balance, consolidate, drain)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanPolicy:
    """Rebalance evens the load until the busiest host is within `rebalance_tolerance` of the mean; after a move a
    VM cools down for `pin_s` seconds (longer after a long migration) before balance or consolidation moves it
    again, and never goes back to the host it left in twice that (drains may move a cooling VM)."""

    rebalance_tolerance: float = 0.10
    pin_s: float = 1800.0
