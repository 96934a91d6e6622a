"""The physics of live migration, below the learned models (advisor.ml) and the planner (advisor.planning): the
analytic model over arrays (`rounds`), its answer per row of MigrationInputs (`costs`), the hard guards on
convergence (`guards`) and pre-copy with a writable working set (`working_set`, not yet behind the served model).
It imports only the domain and numpy (an import contract says so)."""

from advisor.physics.costs import ANALYTIC_MODEL, analytic_costs, analytic_point, predict_analytic, validate
from advisor.physics.guards import (
    GUARD_BUDGETS,
    Guard,
    apply_guards,
    deadline_shorter_than_pass,
    dirties_faster_than_sent,
    effective_rate,
    guard_verdicts,
    working_set_fits,
)
from advisor.physics.rounds import (
    DEFAULT_CONSTANTS,
    DEFAULT_DOWNTIME_MS,
    TECHNIQUES,
    AnalyticArrays,
    AnalyticConstants,
    BoolArray,
    FloatArray,
    IntArray,
    analytic_arrays,
    one_pass_ms,
    send_ratios,
    simulate,
)
from advisor.physics.working_set import working_set_arrays

__all__ = [
    "ANALYTIC_MODEL", "DEFAULT_CONSTANTS", "DEFAULT_DOWNTIME_MS", "GUARD_BUDGETS", "TECHNIQUES", "AnalyticArrays",
    "AnalyticConstants", "BoolArray", "FloatArray", "Guard", "IntArray", "analytic_arrays", "analytic_costs",
    "analytic_point", "apply_guards", "deadline_shorter_than_pass", "dirties_faster_than_sent", "effective_rate",
    "guard_verdicts", "one_pass_ms", "predict_analytic", "send_ratios", "simulate", "validate", "working_set_arrays",
    "working_set_fits",
]
