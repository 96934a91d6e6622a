"""Serving's rebalance foresees overload as the simulator's policy does: the same VM samples and host loads give the
engine the same forecast and spread, and relief the same choice, through serving's snapshot and through the
simulator's bridge; a VM with too few samples leaves its host to relief by load, said so."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from advisor.adapters.memory import ManualClock, MemoryStore
from advisor.config import Settings, policies
from advisor.domain.cluster import InventoryChange
from advisor.domain.model import Host, Objective, PlanGoal, Vm, VmSample
from advisor.evaluation.bridge import to_arrays
from advisor.evaluation.policy import PACK, AdvisorParams, AdvisorPolicy
from advisor.features.samples import RecentSamples
from advisor.planning.engine import ClusterArrays, CostEstimates, CostRequest
from advisor.planning.engine.balance import balance
from advisor.planning.engine.forecast import TUNED
from advisor.simulation.datacenter import Datacenter, HostType
from advisor.simulation.power import HP_ML110_G5
from advisor.usecases.inventory import Inventory
from advisor.usecases.snapshots import Snapshots
from tests.unit.planning_engine.helpers import COSTS
from tests.unit.simulation.helpers import snapshot
from tests.unit.usecases.world import world

QUAD = HostType("4 PEs of 1,000 MIPS", 4, 1000.0, 65536.0, 1000.0, HP_ML110_G5)  # 4 cores of the engine's
VM_HOST = [0, 0, 0, 0, 0, 1, 2]  # 5 one-core VMs on h0: hot when they ask more than 4 cores together


class SameCosts:
    """The analytic cost of moving 1 GiB dirtied at 5 MiB/s over 100 MiB/s for every move: both paths price
    alike (their memory, dirty rate and link figures differ by design), so only the forecast tells moves apart."""

    name = "same"

    def estimate(self, request: CostRequest) -> CostEstimates:
        n = len(request)
        return COSTS.estimate(dataclasses.replace(request, memory_mib=np.full(n, 1024.0),
                                                  dirty_rate_mib_s=np.full(n, 5.0),
                                                  bandwidth_mib_s=np.full(n, 100.0), memory_configured_mib=None))


def simulated(history: list[list[float]]) -> ClusterArrays:
    """The simulator's arrays of VMs with these utilisation samples (newest first, one length for all)."""
    rows = np.zeros((len(history), 30))
    for k, row in enumerate(history):
        rows[k, : len(row)] = row
    s = snapshot(Datacenter.alternating((QUAD,), 3), [1000.0] * len(history), VM_HOST,
                 [1000.0 * row[0] for row in history], history=rows)
    return to_arrays(s, TUNED.forecast)[0]


def served(history: list[list[float]]) -> ClusterArrays:
    """Serving's snapshot of the same hosts and VMs, the samples pushed as a VM pushes them (oldest first, 30 s
    apart); no host sample, so a host's load is its VMs' (the simulator's hosts have no other)."""
    inventory = Inventory(MemoryStore())
    hosts = tuple(Host(f"h{k}", 4, 65536, idle_power_w=HP_ML110_G5.watts[0], max_power_w=HP_ML110_G5.max_watts)
                  for k in range(3))
    vms = tuple(Vm(f"v{k}", f"h{h}", 1000, 1) for k, h in enumerate(VM_HOST))
    inventory.apply(InventoryChange(hosts=hosts, vms=vms))
    samples = RecentSamples()
    samples.add([], [VmSample(f"v{k}", 1000.0 - 30 * age, cpu_utilization=u)
                     for k, row in enumerate(history) for age, u in reversed(list(enumerate(row)))])
    return Snapshots(inventory, samples, ManualClock()).fresh(TUNED.forecast)


def relief(arrays: ClusterArrays) -> list[tuple[str, str, str, str]]:
    """The simulator policy's relief (its settings and weights) on these arrays: (VM, source, target, why)."""
    settings = AdvisorPolicy(costs=SameCosts()).settings(arrays.n_vms)
    plan = balance(arrays, SameCosts(), settings=settings, hot=TUNED.hot, tolerance=0.0, weights=PACK,
                   horizon_s=TUNED.horizon_s)
    return [(m.vm_id, m.source_id, m.target_id, m.explanation.why_vm) for m in plan.moves]


# Utilisations are multiples of 1/16, which the sample store's float16 keeps exactly (it keeps others within 0.05%).
STEADY = [0.875] * 6
CASES = {
    # one sample each: no spread known, so h0 (4.375 cores asked of 4) is relieved by load, saying why
    "one sample": ([[0.875], [0.875], [0.875], [0.875], [0.875], [0.125], [0.125]], "by load, not SLA time"),
    # six samples: v3 wobbles (0.5 to 1), so moving it ends most of h0's foreseen overload
    "six samples": ([STEADY, STEADY, STEADY, [0.9375, 0.5, 1.0, 0.5, 1.0, 0.5], STEADY, [0.25] * 6, [0.125] * 6],
                    "s of SLA time"),
    # three samples, now below the mean: the mean is planned for; v1's spread is the largest
    "three samples": ([[0.875] * 3, [0.625, 1.0, 0.875], [0.875] * 3, [0.8125] * 3, [0.875] * 3, [0.25] * 3,
                       [0.125] * 3], "s of SLA time"),
}


@pytest.mark.parametrize("case", CASES)
def test_serving_and_the_simulator_give_the_engine_the_same_forecast_and_relief_the_same_choice(case: str) -> None:
    history, reason = CASES[case]
    simulator, serving = simulated(history), served(history)
    assert serving.vm_ids == simulator.vm_ids and serving.host_ids == simulator.host_ids
    assert serving.vm_cpu == pytest.approx(simulator.vm_cpu, rel=1e-6)  # kept exactly (multiples of 1/16)
    assert serving.vm_cpu_spread == pytest.approx(simulator.vm_cpu_spread, rel=1e-6, abs=1e-7, nan_ok=True)
    assert serving.loads.host_cpu == pytest.approx(simulator.loads.host_cpu, rel=1e-6)
    moves = relief(serving)
    assert moves and {source for _, source, _, _ in moves} == {"h0"}
    assert [m[:3] for m in moves] == [m[:3] for m in relief(simulator)]
    assert all(reason in why for *_, why in moves), moves


def test_a_rebalance_plan_says_what_sla_time_its_moves_save() -> None:
    """Through PlanCluster with the default settings: host a's VMs ask 18 of its 16 cores and two of them wobble;
    the plan relieves it by the SLA time moves save over the horizon, and says so in the moves' reasons."""
    w = world()
    w.push([Host(h, 16, 32768, hypervisor_uri=f"fake://{h}") for h in "abc"],
           [Vm(f"a{i}", "a", 4096, 3) for i in range(6)] + [Vm("b0", "b", 4096, 2), Vm("c0", "c", 4096, 2)])
    now = w.clock()
    wobbly = [1.0, 0.6, 1.0, 0.6, 1.0, 0.6]
    steady = {f"a{i}": [1.0] * 6 for i in range(4)} | {"a4": wobbly, "a5": wobbly[::-1], "b0": [0.2] * 6,
                                                        "c0": [0.2] * 6}
    w.ingestion.push_samples([], [VmSample(v, now - 30 * age, cpu_utilization=u)
                                  for v, row in steady.items() for age, u in enumerate(row)])
    plan = w.planning.plan_cluster(PlanGoal.REBALANCE, "", 0, Objective(), dry_run=True)
    relieved = [m for m in plan.moves if m.source_host_id == "a"]
    assert relieved, plan.summary
    why = relieved[0].reasons[0]
    assert f"likely over capacity in the next {TUNED.horizon_s:.0f} s" in why and "s of SLA time there" in why, why


def test_serving_plans_with_the_settings_the_simulator_policy_was_given() -> None:
    policy, plans = AdvisorParams(), policies(Settings()).plans
    assert (plans.rebalance_hot, plans.rebalance_horizon_s, plans.filters.max_cpu_after,
            plans.churn.cooldown_per_move_s, plans.rebalance_forecast) == (
        policy.hot, policy.horizon_s, policy.headroom, policy.cooldown_per_move_s, policy.forecast)
    old = policies(Settings(plan_rebalance_horizon_s=0.0)).plans  # relief by load on the latest samples
    assert old.rebalance_horizon_s == 0.0 and old.rebalance_forecast is None


def test_a_vm_without_samples_keeps_its_snapshot_cpu_and_an_unknown_spread() -> None:
    inventory = Inventory(MemoryStore())
    inventory.apply(InventoryChange(hosts=(Host("h", 8, 65536),), vms=(Vm("seen", "h", 1000, 2),
                                                                      Vm("new", "h", 1000, 2))))
    samples = RecentSamples()
    samples.add([], [VmSample("seen", t, cpu_utilization=u) for t, u in ((0.0, 0.25), (30.0, 0.875), (60.0, 0.375))])
    snapshots = Snapshots(inventory, samples, ManualClock())
    latest, forecast = snapshots.fresh(), snapshots.fresh(TUNED.forecast)
    seen, new = forecast.vm_index("seen"), forecast.vm_index("new")
    assert forecast.vm_cpu[seen] == pytest.approx(2 * 0.5)  # the mean of 0.25, 0.875 and 0.375 beats now
    assert forecast.vm_cpu_spread[seen] == pytest.approx(2 * np.std([0.375, 0.875, 0.25]), rel=1e-6)
    assert forecast.vm_cpu[new] == latest.vm_cpu[new] and np.isnan(forecast.vm_cpu_spread[new])
    assert latest.vm_cpu_spread is None  # the snapshot single-VM advice reads is left as it was
