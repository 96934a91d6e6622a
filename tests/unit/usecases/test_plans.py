"""Cluster plans as values: drains, rebalances and their dry runs, what a client may ask, and each move held to
the threshold of its own cluster."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from advisor.domain.automation import VM_LABEL
from advisor.domain.errors import InvalidArgument, NotFound
from advisor.domain.migration import Phase
from advisor.domain.model import TECHNIQUE_LABEL, Disk, HostSample, Objective, PlanGoal, Technique, Vm, VmSample
from advisor.domain.recommendation import Decision, RecommendationState
from advisor.features.dataset import outcome_row
from advisor.features.inputs import PROFILE_LABEL, Overrides
from advisor.ml.forecast import DirtyRateForecaster, MovingAverageForecaster, load_dirty_forecaster
from advisor.planning import engine
from advisor.planning.engine import halves
from advisor.planning.engine.results import describe_inputs
from advisor.usecases.estimates import CostEstimator
from advisor.usecases.plan_costs import AdviceMoveCosts
from tests.support import REPO
from tests.unit.usecases.world import KNOBS, World, hosts, world


@pytest.fixture
def w() -> World:
    w = world()
    w.push(hosts("a", "b", "c"), [Vm("v1", "a", 4096, 2), Vm("v2", "a", 8192, 2),
                                  Vm("mine", "a", 2048, 1, labels={VM_LABEL: "disabled"}), Vm("v3", "b", 4096, 2)])
    return w


def test_a_drain_moves_every_vm_it_may_off_the_host_and_says_what_stays(w: World) -> None:
    plan = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective())
    assert (plan.goal, plan.state, plan.id) == ("drain:a", RecommendationState.PROPOSED, "r1")
    assert sorted(m.vm_id for m in plan.moves) == ["v1", "v2"]
    assert {m.target_host_id for m in plan.moves} <= {"b", "c"} and {m.source_host_id for m in plan.moves} == {"a"}
    assert "Cannot be evacuated: mine (migrating now or pinned by its owner)" in plan.summary
    assert (plan.priority.level, plan.priority.reason) == (1, "drain of a asked for")
    for move in plan.moves:
        assert move.inputs is not None and any(r.startswith("wave ") for r in move.reasons)
    assert w.review.get(plan.id) == plan and w.store.list_assessments(plan.id, 1) is not None
    assert w.metrics.registry.get_sample_value("advisor_recommendations_total", {"goal": "drain"}) == 1


def test_a_dry_run_stores_nothing_and_has_no_id(w: World) -> None:
    dry = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 1, Objective(), dry_run=True)
    assert dry.id == "" and len(dry.moves) == 1  # max_moves
    assert w.review.page(None)[0] == []


def test_a_vm_migrating_now_is_not_planned_again(w: World) -> None:
    rec = w.advice.recommend_target("v1", Objective())
    w.migrations.execute(w.review.decide(rec.id, Decision.APPROVE, "alice", "").id, "alice")
    plan = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective(), dry_run=True)
    assert [m.vm_id for m in plan.moves] == ["v2"] and "v1 (migrating now" in plan.summary


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda w: w.planning.plan_cluster("shuffle", "a", 0, Objective()),  # a goal no client may send
     InvalidArgument, "goal: must be one of"),
    (lambda w: w.planning.plan_cluster(PlanGoal.REBALANCE, "a", 0, Objective()), InvalidArgument,
     "host_id: only a drain or an evacuation names a host"),
    (lambda w: w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective(), force=True), InvalidArgument,
     "force: only an evacuation is forced"),
    (lambda w: w.planning.plan_cluster(PlanGoal.DRAIN, "", 0, Objective()), InvalidArgument, "host_id"),
    (lambda w: w.planning.plan_cluster(PlanGoal.DRAIN, "z", 0, Objective()), NotFound, "host_id"),
    (lambda w: w.planning.plan_cluster(PlanGoal.CONSOLIDATE, "", -1, Objective()), InvalidArgument, "max_moves"),
    (lambda w: w.planning.plan_cluster(PlanGoal.CONSOLIDATE, "", 0, Objective(deadline_ms=-5)), InvalidArgument,
     "objective.deadline_ms"),
    (lambda w: w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective(max_downtime_ms=0)), InvalidArgument,
     r"objective.max_downtime_ms: must be in \[1, 3.6e\+06\] \(got 0\)"),
])
def test_what_a_client_asks_is_checked_first(w: World, call: Callable[[World], object], error: type[Exception],
                                             match: str) -> None:
    with pytest.raises(error, match=match):
        call(w)
    assert w.review.page(None)[0] == []


def test_each_move_is_held_to_the_threshold_of_its_own_cluster() -> None:
    """Host a (cluster east) is the busiest; the first host of the inventory is in cluster west: a's moves are held
    to east's threshold, not to the first host's cluster's. (At 95% a is no longer relieved as hot, the threshold
    being 100% since serving took the simulator policy's settings: its moves come from evening the load, which the
    threshold holds alike.)"""
    w = world()
    clusters = {"a": "east", "b": "east", "c": "west", "d": "west"}
    crowded = {f"e{i}": "a" for i in range(8)} | {f"w{i}": "c" for i in range(2)}
    w.push(hosts(*"cdab", labels={h: {"cluster": c} for h, c in clusters.items()}),
           [Vm(n, h, 4096, 2) for n, h in crowded.items()])
    w.load({h: 0.95 if h == "a" else 0.1 for h in "cdab"},
           {n: 0.9 if n.startswith("e") else 0.2 for n in crowded})
    before = w.planning.plan_cluster(PlanGoal.REBALANCE, "", 0, Objective(), dry_run=True)
    assert before.moves and {m.source_host_id for m in before.moves} == {"a"}, before.summary
    assert before.benefit_over_cost is not None and before.benefit_over_cost > 0
    w.automation.set("east", "manual", 1e6, "carol")
    after = w.planning.plan_cluster(PlanGoal.REBALANCE, "", 0, Objective(), dry_run=True)
    assert not after.moves and "their cluster's threshold (0/1e+06x)" in after.summary, after.summary
    w.automation.set("west", "manual", 1e6, "carol")  # a single threshold is named as such
    assert "the cluster's threshold 1e+06x" in w.planning.plan_cluster(PlanGoal.REBALANCE, "", 0, Objective(),
                                                                       dry_run=True).summary


def test_a_plan_names_the_open_recommendations_that_already_move_its_vms(w: World) -> None:
    single = w.advice.recommend_target("v1", Objective())
    plan = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective())
    flagged = next(m for m in plan.moves if m.vm_id == "v1")
    assert flagged.reasons[-1] == f"v1 is also moved by proposed recommendation {single.id} (target:v1)"
    assert all("also moved" not in r for m in plan.moves if m.vm_id != "v1" for r in m.reasons)
    assert f"1 VM of this plan is also moved by other open recommendations, e.g. v1 by proposed " \
           f"recommendation {single.id}" in plan.summary
    again = w.advice.recommend_target("v1", Objective())  # supersedes the single one, names the plan
    assert w.review.get(single.id).state is RecommendationState.SUPERSEDED
    assert again.moves[0].reasons[-1] == f"v1 is also moved by proposed recommendation {plan.id} (drain:a)"
    assert w.review.get(plan.id).state is RecommendationState.PROPOSED  # a plan is never superseded by one VM's


def test_a_plan_reads_the_clusters_settings_once_for_its_thresholds_and_once_for_its_level(w: World) -> None:
    reads = []
    stored = w.store.automation
    w.store.automation = lambda: reads.append(1) or stored()  # type: ignore[method-assign]
    plan = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective())
    assert len(plan.moves) == 2 and len(reads) == 2  # not once per host and once per moved VM


def test_consolidation_empties_one_host_even_past_the_cap_and_an_empty_plan_says_why_unstored() -> None:
    w = world()
    w.push([replace(h, idle_power_w=100, max_power_w=300) for h in hosts("a", "b", "c")],
           [Vm(f"v{i}", "abc"[i % 3], 2048, 1) for i in range(6)])  # two VMs a host: the cap of 6 VMs is 1
    w.load({"a": 0.1, "b": 0.2, "c": 0.15})
    plan = w.planning.plan_cluster(PlanGoal.CONSOLIDATE, "", 0, Objective())
    assert len(plan.moves) == 2 and len({m.source_host_id for m in plan.moves}) == 1, plan.summary
    assert "empty 1 of 3 hosts" in plan.summary and w.review.get(plan.id) == plan
    capped = w.planning.plan_cluster(PlanGoal.CONSOLIDATE, "", 1, Objective())  # a bound asked for holds
    assert (capped.id, capped.moves) == ("", ()) and "would pass the cap of 1 move" in capped.summary
    assert [r.id for r in w.review.page(None)[0]] == [plan.id]  # nothing to review stored
    kept = w.planning.plan_cluster(PlanGoal.CONSOLIDATE, "", 1, Objective(), store_empty=True)
    assert kept.id and not kept.moves and w.review.get(kept.id).summary == kept.summary


def test_a_consolidation_that_empties_nothing_names_the_first_blocking_vm(w: World) -> None:
    plan = w.planning.plan_cluster(PlanGoal.CONSOLIDATE, "", 0, Objective())
    assert plan.id == "" and "Nothing emptied: a stays, mine: pinned or migrating." in plan.summary


def test_a_plan_holds_every_move_to_the_downtime_limit_asked_for(w: World) -> None:
    plan = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective(max_downtime_ms=50), dry_run=True)
    assert plan.moves and all(m.parameters.max_downtime_ms == 50 and m.inputs is not None
                              and m.inputs.max_downtime_ms == 50 for m in plan.moves)
    assert all(m.predicted_cost.downtime_ms.high <= 50 for m in plan.moves)


def lab_world() -> World:
    """Hosts a and b of profile lab (b the busier: 1.8 runnable threads per CPU), two VMs on a measured for a minute
    (memory in use, dirty rate, working set, what their QEMU holds resident), their dirty rates forecast: a drain
    of a sends both to b at once."""
    w = world(forecaster=MovingAverageForecaster())
    w.push(hosts("a", "b", labels={h: {PROFILE_LABEL: "lab"} for h in "ab"}),
           [Vm("v1", "a", 4096, 2), Vm("v2", "a", 8192, 2)])
    now = w.clock()
    w.ingestion.push_samples([HostSample(h, now, load_per_cpu=load) for h, load in (("a", 0.4), ("b", 1.8))],
                             [VmSample(v, now - age, memory_used_mib=used, dirty_rate_mib_s=20.0 + age / 10,
                                       working_set_mib=300.0, resident_memory_mib=resident)
                              for v, used, resident in (("v1", 1500.0, 2560.0), ("v2", 3000.0, 3072.0))
                              for age in (60, 30, 0)])
    w.snapshots.fresh()
    return w


@pytest.mark.parametrize("objective", [Objective(), Objective(max_downtime_ms=500, deadline_ms=600_000)])
def test_a_plan_move_is_priced_and_stored_as_advice_prices_that_vm_and_target(objective: Objective) -> None:
    w = lab_world()
    plan = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, objective, dry_run=True)
    moves = {m.vm_id: m for m in plan.moves}
    link = w.inventory.hosts()["a"].network_bandwidth_mib_s
    assert sorted(moves) == ["v1", "v2"] and {m.target_host_id for m in moves.values()} == {"b"}
    for vm_id, move in moves.items():
        inputs = move.inputs
        assert inputs is not None and inputs.host_profile == "lab"  # the hosts' profile, not the model's default
        assert inputs.working_set_mib == 300.0 and inputs.dirty_rate_source.startswith("p90")  # measured, forecast
        assert inputs.load_per_cpu == pytest.approx(1.8)  # the busier of the two hosts, as advice reads it
        assert inputs.bandwidth_mib_s == link and describe_inputs(inputs) in move.reasons
        assert (inputs.max_downtime_ms, inputs.deadline_ms) == (objective.max_downtime_ms, objective.deadline_ms)
        # what advice builds and predicts for this VM and target, at the cap the schedule gives the move
        cap = inputs.max_bandwidth_mib_s
        advised = w.advice.predict_cost(vm_id, "b", [move.parameters.technique], Overrides(
            max_downtime_ms=objective.max_downtime_ms, deadline_ms=objective.deadline_ms or None,
            max_bandwidth_mib_s=None if cap == link else cap))
        assert advised.inputs == inputs and advised.costs == (move.predicted_cost,)
    # they start together: one has a's link to itself, the other shares it (the executor records what it gets)
    shared = {vm_id: m.inputs.max_bandwidth_mib_s for vm_id, m in moves.items() if m.inputs is not None}
    assert sorted(shared.values()) == [link / 2, link]
    alone = next(m for m in moves.values() if shared[m.vm_id] == link)
    advice = w.advice.recommend_target(alone.vm_id, objective, dry_run=True).moves[0]
    assert (advice.target_host_id, advice.inputs) == ("b", alone.inputs)
    assert (advice.parameters, advice.predicted_cost) == (alone.parameters, alone.predicted_cost)


def test_a_plan_move_on_lab_hosts_is_exported_as_lab() -> None:
    w = lab_world()
    plan = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 1, Objective())
    w.migrations.execute(w.review.decide(plan.id, Decision.APPROVE, "alice", "").id, "alice")
    w.executor.end(w.executor.submitted[0], Phase.SUCCEEDED)
    rows = [outcome_row(r) for r in w.store.outcomes()]
    assert [(r["host_profile"], r["source"]) for r in rows if r is not None] == [("lab", "lab")]
    # what its QEMU held resident, as the advice read it, goes with it to the data training reads
    assert [r["resident_memory_mib"] for r in rows if r is not None] in ([2560.0], [3072.0])


def test_a_plan_moves_a_vm_asking_for_cold_cold_and_prices_a_local_disk_as_advice_does() -> None:
    w = world()
    disk = Disk("vda", 8192.0, 4096.0, False, 1.0)
    w.push(hosts("a", "b"), [Vm("cold", "a", 2048, 1, labels={TECHNIQUE_LABEL: "cold"}),
                             Vm("local", "a", 2048, 1, disks=(disk,))])
    plan = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective(), dry_run=True)
    moves = {m.vm_id: m for m in plan.moves}
    cold = moves["cold"]
    assert cold.parameters.technique is Technique.COLD and cold.predicted_cost.technique is Technique.COLD
    assert cold.parameters.shutdown_timeout_ms > 0
    advised = w.advice.recommend_target("cold", Objective(), dry_run=True).moves[0]
    assert advised.predicted_cost.total_time_ms == cold.predicted_cost.total_time_ms
    local = moves["local"]
    assert local.parameters.migrate_disks == ("vda",)
    assert any(n.startswith("local disks: 4096 MiB in use") for n in local.predicted_cost.notes)
    technique = local.parameters.technique
    priced = w.advice.predict_cost("local", "b", [technique], Overrides(
        max_bandwidth_mib_s=local.inputs.max_bandwidth_mib_s if local.inputs else None)).costs[0]
    assert priced == local.predicted_cost


def test_moves_priced_in_two_halves_at_once_are_priced_as_in_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    w = world()
    disk = Disk("vda", 8192.0, 4096.0, False, 1.0)
    w.push(hosts("a", "b", "c"), [Vm("cold", "a", 2048, 1, labels={TECHNIQUE_LABEL: "cold"}),
                                  Vm("local", "a", 2048, 1, disks=(disk,)), Vm("v1", "b", 4096, 2),
                                  Vm("v2", "c", 8192, 4)])
    cluster = w.snapshots.fresh()
    n = cluster.n_vms
    request = engine.CostRequest(np.arange(n), (cluster.loads.vm_host + 1) % 3, cluster.vm_memory_used_mib,
                                 np.full(n, 10.0), np.array([1250.0, 625.0, 1250.0, 400.0]), np.ones(n, dtype=bool))
    whole, cut = (AdviceMoveCosts(w.planning._estimator, cluster, w.inventory.vms(), w.inventory.hosts(), Objective(),
                                  KNOBS.technique) for _ in range(2))
    expected = whole.estimate(request)
    monkeypatch.setattr(halves, "MIN_ROWS", 2)  # the four rows in two halves
    got = cut.estimate(request)
    assert got.technique.tolist() == expected.technique.tolist() and np.array_equal(got.total_ms, expected.total_ms)
    for vm, target, bandwidth in zip(request.vm.tolist(), request.target.tolist(), request.bandwidth_mib_s.tolist(),
                                     strict=True):
        for technique in (*engine.TECHNIQUES, Technique.COLD):
            assert cut.priced(vm, target, bandwidth, technique) == whole.priced(vm, target, bandwidth, technique)


@pytest.mark.parametrize("forecaster", [None, MovingAverageForecaster(),
                                        load_dirty_forecaster(REPO / "models" / "dirty_rate")],
                         ids=["none", "baseline", "learned"])
def test_what_the_samples_say_of_many_vms_at_once_is_what_they_say_of_each(
        forecaster: DirtyRateForecaster | None) -> None:
    w = world(forecaster=forecaster)
    w.push(hosts("a", "b"), [Vm(f"v{k}", "a", 4096, 2) for k in range(5)])
    w.ingestion.push_samples([], [VmSample(f"v{k}", w.clock() - age, dirty_rate_mib_s=k * 10.0 + age / 10,
                                           memory_used_mib=1000.0 + k, working_set_mib=300.0)
                                  for k in range(4) for age in range(0, 600, 30)])  # v4: never sampled
    estimator = CostEstimator(w.planning._estimator.predictor, forecaster, w.samples, w.clock)
    vms = [w.inventory.vms()[f"v{k}"] for k in (3, 0, 4, 1, 2, 0)]
    many = estimator.observe_many(vms)
    assert many == [estimator.observe(vm) for vm in vms]
    assert (forecaster is None) == all(forecast is None for _, forecast in many)
