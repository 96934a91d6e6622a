"""The bridge between the advisor and the simulator: the `advisor` policy and the learned migration-time model.

`register()` adds the `advisor` policy to the simulator's registry (the CLI calls it before parsing); then
`advisor simulate --policy advisor ...` or `python -m advisor.evaluation simulate --policy advisor ...` runs it.
"""

from __future__ import annotations

from advisor.evaluation.policy import AdvisorParams, AdvisorPolicy, make
from advisor.simulation import PolicyInfo, policy_names, register_policy

POLICY = "advisor"


def register() -> None:
    """Register the `advisor` policy once (later calls do nothing)."""
    if POLICY in policy_names():
        return
    defaults = AdvisorParams()
    register_policy(PolicyInfo(
        POLICY,
        "the project's engine each update: hotspot relief + consolidation, cost-aware (learned model), "
        "with anti-churn",
        {
            "headroom": defaults.headroom, "hot": defaults.hot, "underload": defaults.underload,
            "min_saving_w": defaults.min_saving_w, "max_moves_fraction": defaults.max_moves_fraction,
            "min_moves": defaults.min_moves, "cooldown_s": defaults.cooldown_s,
            "cooldown_per_move_s": defaults.cooldown_per_move_s, "return_factor": defaults.return_factor,
            "forecast": str(defaults.forecast), "costs": defaults.costs, "check_ram": defaults.check_ram,
            "busy_floor": defaults.busy_floor,
        },
        make,
    ))


__all__ = ["POLICY", "AdvisorParams", "AdvisorPolicy", "make", "register"]
