"""The decision engine: pure, vectorised functions over a cluster snapshot (see docs/planning.md).

`from_domain` (or `ClusterArrays.build`) makes the snapshot; `plan(name, cluster, costs, ...)` runs a strategy of
the registry (`balance`, `consolidate`, `drain`, `evacuate`) and returns a `Plan`; `rank_targets` ranks the hosts
for one VM.
Costs come from any `MoveCosts` (the analytic `AnalyticMoveCosts` by default; the learned model plugs in behind
the same protocol).
"""

from advisor.planning.engine.churn import AntiChurn, LastMove, MoveHistory
from advisor.planning.engine.costs import TECHNIQUES, AnalyticMoveCosts, CostEstimates, CostRequest, MoveCosts, select
from advisor.planning.engine.domain_arrays import from_domain
from advisor.planning.engine.filters import FILTERS, FilterKind, FilterPolicy, Rejection, judge
from advisor.planning.engine.planner import PlanSettings
from advisor.planning.engine.ranking import Ranking, all_assessments, rank_targets, warm_up
from advisor.planning.engine.relations import Rule, VmGroupRule, VmHostRule
from advisor.planning.engine.results import Alternative, Explanation, Plan, PlannedMove, PowerAdvice, Refusal
from advisor.planning.engine.schedule import Concurrency, Schedule, schedule
from advisor.planning.engine.snapshot import ClusterArrays
from advisor.planning.engine.strategies import StrategyInfo, plan, register_strategy, strategy_info, strategy_names
from advisor.planning.engine.variants import with_new_vm, with_pinned
from advisor.planning.engine.weighers import COMPONENTS, Weights
from advisor.planning.technique import TechniqueRules

__all__ = [
    "COMPONENTS",
    "FILTERS",
    "TECHNIQUES",
    "Alternative",
    "AnalyticMoveCosts",
    "AntiChurn",
    "ClusterArrays",
    "Concurrency",
    "CostEstimates",
    "CostRequest",
    "Explanation",
    "FilterKind",
    "FilterPolicy",
    "LastMove",
    "MoveCosts",
    "MoveHistory",
    "Plan",
    "PlanSettings",
    "PlannedMove",
    "PowerAdvice",
    "Ranking",
    "Refusal",
    "Rejection",
    "Rule",
    "Schedule",
    "StrategyInfo",
    "TechniqueRules",
    "VmGroupRule",
    "VmHostRule",
    "Weights",
    "all_assessments",
    "from_domain",
    "judge",
    "plan",
    "rank_targets",
    "register_strategy",
    "schedule",
    "select",
    "strategy_info",
    "strategy_names",
    "warm_up",
    "with_new_vm",
    "with_pinned",
]
