"""Foreseen overload: a host's expected SLA time, and relief that moves only what saves more than it costs."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from advisor.planning.engine import AntiChurn, ClusterArrays, PlanSettings
from advisor.planning.engine.balance import balance
from advisor.planning.engine.overload import SPREAD_FLOOR, overload_probability
from tests.unit.planning_engine.helpers import COSTS, cluster, host, vm

FREE = PlanSettings(churn=AntiChurn(max_moves=100))


def test_a_host_forecast_at_its_limit_is_overloaded_half_the_time_and_more_so_above() -> None:
    p = overload_probability(np.array([8.0, 16.0, 17.0, 24.0]), np.zeros(4), 16.0, 1.0)
    assert p[1] == pytest.approx(0.5)
    assert p[0] < 1e-6 < p[1] < p[2] < p[3] and p[3] == pytest.approx(1.0)
    # a VM's wobble makes overload likelier below the limit: one core of spread on 15 busy cores
    wobbly = overload_probability(15.0, 1.0, 16.0, 1.0)[0]
    steady = overload_probability(15.0, 0.0, 16.0, 1.0)[0]
    assert steady < wobbly < 0.5
    assert steady == pytest.approx(0.5 * math.erfc(1 / (SPREAD_FLOOR * 16 * math.sqrt(2))))


def _hot() -> ClusterArrays:
    hosts = [host("hot"), host("b"), host("c")]
    vms = [vm(f"h{i}", "hot", vcpus=8) for i in range(3)] + [vm("b1", "b")]
    c = cluster(hosts, vms, cpu=0.7)  # 16.8 of 16 cores on "hot"
    return replace(c, vm_cpu_spread=np.full(c.n_vms, 0.5))


def test_relief_by_sla_time_moves_a_vm_when_the_overload_it_ends_outlasts_its_migration() -> None:
    p = balance(_hot(), COSTS, settings=FREE, hot=1.0, tolerance=0.0, horizon_s=3600.0)
    assert len(p.moves) == 1 and p.moves[0].source_id == "hot"
    why = p.moves[0].explanation.why_vm
    assert "s of SLA time" in why and "likely over capacity" in why
    assert p.moves[0].benefit == pytest.approx((16.8 - 16) / 16)  # the load taken off, as relief by load records


def test_relief_by_sla_time_leaves_a_host_whose_overload_ends_before_a_migration_would() -> None:
    c = _hot()
    seconds = balance(c, COSTS, settings=FREE, hot=1.0, tolerance=0.0, horizon_s=3600.0)
    migration_s = seconds.moves[0].cost.total_time_ms.median / 1000
    short = balance(c, COSTS, settings=FREE, hot=1.0, tolerance=0.0, horizon_s=migration_s)
    assert short.moves == ()
    still = balance(c, COSTS, settings=FREE, hot=1.0, tolerance=0.0)
    assert len(still.moves) == 1  # without a horizon, relief is by load per second as before


def test_a_host_with_a_vm_of_unknown_spread_is_relieved_by_load_and_says_so() -> None:
    c = _hot()
    spread = c.vm_cpu_spread.copy()
    spread[c.vm_index("h1")] = np.nan  # too few samples for a standard deviation
    p = balance(replace(c, vm_cpu_spread=spread), COSTS, settings=FREE, hot=1.0, tolerance=0.0, horizon_s=3600.0)
    assert len(p.moves) == 1 and p.moves[0].source_id == "hot"
    why = p.moves[0].explanation.why_vm
    assert "SLA time saved" not in why and why.endswith(
        "(by load, not SLA time: the CPU spread of 1 of its 3 VMs is unknown, fewer than 2 samples)"), why
    none = balance(replace(c, vm_cpu_spread=None), COSTS, settings=FREE, hot=1.0, tolerance=0.0, horizon_s=3600.0)
    assert none.moves[0].explanation.why_vm.endswith("(by load, not SLA time: no VM's CPU spread was measured)")


def test_a_target_s_vms_of_unknown_spread_count_for_the_floor_only_and_the_reason_says_so() -> None:
    c = _hot()
    spread = c.vm_cpu_spread.copy()
    spread[c.vm_index("b1")] = np.nan
    p = balance(replace(c, vm_cpu_spread=spread), COSTS, settings=FREE, hot=1.0, tolerance=0.0, horizon_s=3600.0)
    assert len(p.moves) == 1
    move = p.moves[0]
    assert move.source_id == "hot" and move.target_id == "b"  # b runs b1; c is idle and would be woken
    assert "s added on b, 1 VM there of unknown spread)" in move.explanation.why_vm


def test_the_settings_give_balance_its_hot_threshold_and_horizon() -> None:
    settings = replace(FREE, rebalance_hot=1.0, rebalance_horizon_s=3600.0, rebalance_tolerance=0.0)
    by_settings = balance(_hot(), COSTS, settings=settings)
    assert [m.vm_id for m in by_settings.moves] == [m.vm_id for m in balance(
        _hot(), COSTS, settings=FREE, hot=1.0, tolerance=0.0, horizon_s=3600.0).moves]
    assert "s of SLA time" in by_settings.moves[0].explanation.why_vm
    assert by_settings.parameters["horizon_s"] == 3600.0 and by_settings.parameters["hot"] == 1.0
