"""The ranges of the numeric settings (advisor.config checks them at load; the README lists them), and the forms of
the other values checked there."""

from __future__ import annotations

import math
from dataclasses import dataclass

from advisor.domain.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take: from `low` (itself excluded when `above`) to `high`."""

    low: float
    high: float = math.inf
    above: bool = False

    def __contains__(self, value: float) -> bool:
        # Written so that NaN is out.
        return (value > self.low if self.above else value >= self.low) and value <= self.high

    def __str__(self) -> str:
        if self.high < math.inf:
            return f"from {self.low:g} to {self.high:g}"
        return f"above {self.low:g}" if self.above else f"at least {self.low:g}"


POSITIVE = Range(0, above=True)
NOT_NEGATIVE = Range(0)
AT_LEAST_1 = Range(1)
# Every numeric setting, and the values that keep it meaningful: a retention of 0 or less would delete every row,
# a poll interval of 0 would loop without pause (tests/unit/adapters/test_sqlite_and_config.py: every one is here).
RANGES: dict[str, Range] = {
    "lease_ttl_s": POSITIVE,
    "grace_s": NOT_NEGATIVE,
    "max_concurrent_calls": AT_LEAST_1,
    "max_concurrent_streams": AT_LEAST_1,
    "stream_idle_timeout_s": POSITIVE,
    "stream_max_duration_s": POSITIVE,
    # gRPC takes 4x this in bytes as a 32-bit signed integer.
    "max_message_mib": Range(1, 511),
    "retention_recommendations": AT_LEAST_1,
    "retention_days": POSITIVE,
    "audit_retention_days": POSITIVE,
    "samples_save_interval_s": POSITIVE,
    "models_reload_interval_s": POSITIVE,
    "drift_error_ratio": POSITIVE,
    "retrain_interval_s": NOT_NEGATIVE,
    "retrain_drift_min_outcomes": NOT_NEGATIVE,
    "retrain_timeout_s": POSITIVE,
    "samples_per_entity": AT_LEAST_1,
    "max_migrations": AT_LEAST_1,
    "max_migrations_per_source": AT_LEAST_1,
    "max_migrations_per_target": AT_LEAST_1,
    "poll_interval_s": POSITIVE,
    # Prometheus scrapes every few seconds at the most; faster polls only load it.
    "prometheus_poll_interval_s": Range(1),
    "prometheus_timeout_s": POSITIVE,
    "prometheus_max_age_s": POSITIVE,
    "dirty_rate_interval_s": NOT_NEGATIVE,
    "evacuate_host_down_after_s": POSITIVE,
    "placement_cpu_allocation_ratio": POSITIVE,
    "placement_memory_allocation_ratio": POSITIVE,
    "placement_max_cpu_after": POSITIVE,
    "placement_cpu_weight": NOT_NEGATIVE,
    "placement_memory_weight": NOT_NEGATIVE,
    "placement_affinity_bonus": NOT_NEGATIVE,
    # 0 ranks by the median, 1 by the pessimistic bound.
    "technique_risk": Range(0, 1),
    "technique_deadline_slack": POSITIVE,
    "technique_deadline_floor_ms": NOT_NEGATIVE,
    "technique_postcopy_safety_factor": POSITIVE,
    "technique_postcopy_exposure_weight": NOT_NEGATIVE,
    "technique_cold_shutdown_timeout_s": NOT_NEGATIVE,
    "plan_rebalance_tolerance": Range(0, 1),
    "plan_pin_s": NOT_NEGATIVE,
    "plan_rebalance_hot": NOT_NEGATIVE,
    "plan_rebalance_horizon_s": NOT_NEGATIVE,
    "plan_max_cpu_after": POSITIVE,
    "plan_cooldown_per_move_s": NOT_NEGATIVE,
    "snapshot_max_age_s": POSITIVE,
    "monitor_judge_from_round": AT_LEAST_1,
    "monitor_stall_rounds": AT_LEAST_1,
    # 0: the allowed downtime is at its limit from the first round.
    "monitor_downtime_steps": NOT_NEGATIVE,
    "automation_min_benefit_over_cost": NOT_NEGATIVE,
    "recommendation_max_age_s": NOT_NEGATIVE,
    "expiry_tolerance": NOT_NEGATIVE,
    "expiry_check_interval_s": POSITIVE,
}
LOG_LEVELS = ("debug", "info", "warning", "error")


def check_address(name: str, address: str) -> None:
    _, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{name} must be HOST:PORT with a port from 0 to 65535, got {address!r}")
