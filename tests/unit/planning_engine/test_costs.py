"""The engine's analytic costs are the physics' band (advisor.physics), and the technique choice over arrays
follows the technique policy's rules."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from advisor.domain.model import Interval, MigrationCost, MigrationInputs, ModelRef, Objective, Technique
from advisor.physics import predict_analytic
from advisor.planning.engine import TECHNIQUES, AnalyticMoveCosts, CostRequest, PlanSettings, TechniqueRules, plan
from advisor.planning.engine.costs import CostEstimates, select
from advisor.planning.technique import choose_technique
from tests.unit.planning_engine.helpers import COSTS, FAST, cluster, host, vm


def request(memory: list[float], dirty: list[float], bandwidth: list[float], postcopy: list[bool] | None = None,
            **kw: object) -> CostRequest:
    n = len(memory)
    return CostRequest(np.arange(n), np.zeros(n, dtype=np.int64), np.array(memory), np.array(dirty),
                       np.array(bandwidth), np.array(postcopy if postcopy is not None else [True] * n),
                       **kw)  # type: ignore[arg-type]


def test_the_band_matches_the_analytic_predictions_interval() -> None:
    est = AnalyticMoveCosts(TechniqueRules(techniques=(Technique.PRECOPY,))).estimate(
        request([2048.0], [20.0], [100.0]))
    expected = predict_analytic(MigrationInputs(2048.0, 20.0, 100.0, 100.0), Technique.PRECOPY)
    assert est.total_ms[0].tolist() == pytest.approx(
        [expected.total_time_ms.low, expected.total_time_ms.median, expected.total_time_ms.high])
    assert est.downtime_ms[0, 1] == pytest.approx(expected.downtime_ms.median)


@pytest.mark.parametrize("postcopy", [True, False])
@pytest.mark.parametrize("limits", [{}, {"max_downtime_ms": 30.0}, {"max_downtime_ms": 1.0},
                                    {"deadline_ms": 20_000.0}, {"deadline_ms": 100.0}])
def test_the_array_choice_is_the_technique_policys_choice(postcopy: bool, limits: dict[str, float]) -> None:
    """Row for row, against planning.technique.choose_technique over the physics' predictions."""
    memory, dirty, bw = [512.0, 4096.0, 4096.0, 4096.0, 16384.0], [1.0, 1.0, 60.0, 300.0, 20.0], [117.0] * 5
    est = AnalyticMoveCosts().estimate(request(memory, dirty, bw, [postcopy] * 5, **limits))
    objective = Objective(max_downtime_ms=limits.get("max_downtime_ms", 300.0),
                          deadline_ms=limits.get("deadline_ms", 0.0))
    for k in range(5):
        inputs = MigrationInputs(memory[k], dirty[k], bw[k], bw[k], objective.max_downtime_ms)
        reference = choose_technique([predict_analytic(inputs, t) for t in TECHNIQUES], objective,
                                     bandwidth_mib_s=bw[k], postcopy_allowed=postcopy, dirty_rate_mib_s=dirty[k])
        params = est.parameters(k)
        assert params.technique is reference.parameters.technique, (k, limits)
        assert params.postcopy_after_ms == pytest.approx(reference.parameters.postcopy_after_ms)
        assert params.deadline_ms == pytest.approx(reference.parameters.deadline_ms)
        assert params.max_downtime_ms == reference.parameters.max_downtime_ms
        assert bool(est.meets_limits[k]) is not reference.reasons[0].startswith("no technique meets")
        cost = est.cost(k)
        assert cost.total_time_ms.median == pytest.approx(reference.cost.total_time_ms.median)
        assert (cost.notes == ()) is bool(est.meets_limits[k])


def test_allowed_techniques_and_estimate_rows() -> None:
    costs = AnalyticMoveCosts(TechniqueRules(techniques=(Technique.PRECOPY,)))
    est = costs.estimate(request([1024.0, 1024.0], [1.0, 500.0], [117.0, 117.0]))
    assert [TECHNIQUES[int(t)] for t in est.technique] == [Technique.PRECOPY, Technique.PRECOPY]
    assert est.meets_limits.tolist() == [True, False] and "not to converge" in est.violation(1)
    assert np.isinf(est.rank_ms[:, 1:]).all()  # the others were not allowed
    assert len(est.take([1])) == 1 and est.take([1]).technique.tolist() == [0]
    assert "precopy: total" in est.describe(0)


@pytest.mark.parametrize(("precopy_downtime", "dirty", "chosen"), [
    ((100.0, 250.0, 375.0), 8.0, Technique.PRECOPY),  # 75 ms over the limit: less than post-copy's harm
    ((1000.0, 3000.0, 4500.0), 8.0, Technique.POSTCOPY),  # seconds over: post-copy
    ((100.0, 250.0, 375.0), 500.0, Technique.PRECOPY),  # a busy guest would stall in post-copy
], ids=["idle", "far over", "busy"])
def test_postcopy_is_priced_in_the_array_choice_as_in_the_technique_policy(
        precopy_downtime: tuple[float, float, float], dirty: float, chosen: Technique) -> None:
    """A 4 GiB VM over 128 MiB/s: every pre-copy alike (converging, 35 s), post-copy 33 s with a 2 ms pause."""
    post = TECHNIQUES.index(Technique.POSTCOPY)
    total = np.tile([[[31_500.0, 35_000.0, 42_000.0]]], (len(TECHNIQUES), 1, 1))
    downtime = np.tile([[precopy_downtime]], (len(TECHNIQUES), 1, 1))
    data = np.tile([[[4000.0, 4400.0, 4800.0]]], (len(TECHNIQUES), 1, 1))
    total[post], downtime[post], data[post] = [[32_000, 33_000, 36_000]], [[1, 2, 3]], [[4096, 4096, 4200]]
    converges = np.ones((len(TECHNIQUES), 1), dtype=bool)
    est = select(request([4096.0], [dirty], [128.0]), total, downtime, data, converges, converges * 1.0,
                 TechniqueRules(), "test")
    costs = [MigrationCost(t, Interval(*total[k, 0]), Interval(*downtime[k, 0]), Interval(*data[k, 0]), True,
                           ModelRef("test", "0")) for k, t in enumerate(TECHNIQUES)]
    reference = choose_technique(costs, Objective(max_downtime_ms=300), bandwidth_mib_s=128, postcopy_allowed=True,
                                 dirty_rate_mib_s=dirty)
    assert TECHNIQUES[int(est.technique[0])] is reference.parameters.technique is chosen
    assert bool(est.meets_limits[0]) is not reference.reasons[0].startswith("no technique meets")


class PessimisticDowntime:
    """Every pre-copy converges in memory/bandwidth x 1.1 with a p90 downtime of 375 ms; post-copy takes
    memory/bandwidth with a 2 ms pause: the case where a model's downtime alone once chose post-copy."""

    name = "pessimistic downtime"

    def estimate(self, request: CostRequest) -> CostEstimates:
        t, n = len(TECHNIQUES), len(request)
        seconds = np.asarray(request.memory_mib) / np.asarray(request.bandwidth_mib_s) * 1000
        total = np.tile(np.stack([seconds, seconds * 1.1, seconds * 1.3], axis=-1), (t, 1, 1))
        downtime = np.tile([100.0, 250.0, 375.0], (t, n, 1))
        data = np.tile(np.stack([np.asarray(request.memory_mib)] * 3, axis=-1), (t, 1, 1))
        post = TECHNIQUES.index(Technique.POSTCOPY)
        total[post], downtime[post] = total[post] / 1.1, np.tile([1.0, 2.0, 3.0], (n, 1))
        converges = np.ones((t, n), dtype=bool)
        return select(request, total, downtime, data, converges, converges * 1.0, TechniqueRules(), self.name)


def test_a_plans_move_by_precopy_over_the_downtime_limit_says_why_postcopy_was_not_chosen() -> None:
    forbid = {"advisor.postcopy": "forbidden"}
    c = cluster([host("a"), host("b")], [vm("v", "a"), vm("kept", "a", labels=forbid)], dirty=8.0)
    p = plan("drain", c, PessimisticDowntime(), host="a")
    assert [m.vm_id for m in p.moves] == ["v"]
    assert p.moves[0].parameters.technique is Technique.PRECOPY
    assert "less than post-copy's harm" in p.moves[0].explanation.why_technique
    # post-copy forbidden by its label, nothing weighs the predicted downtime: the limit holds, as before
    assert [(r.vm_id, r.kind) for r in p.dry_run] == [("kept", "limit")] and "downtime" in p.dry_run[0].reason


def test_a_cluster_that_forbids_postcopy_keeps_the_downtime_limit_in_plans() -> None:
    east = {"cluster": "east"}
    c = cluster([host("a", labels=east), host("b", labels=east)], [vm("v", "a")], dirty=8.0, cluster_label="cluster")
    allowed = plan("drain", c, PessimisticDowntime(), host="a")
    forbidden = plan("drain", c, PessimisticDowntime(), host="a",
                     settings=PlanSettings(postcopy_forbidden_clusters=frozenset({"east"})))
    assert [m.vm_id for m in allowed.moves] == ["v"] and not forbidden.moves
    assert [(r.vm_id, r.kind) for r in forbidden.dry_run] == [("v", "limit")]


class TwiceAsSlow:
    """The analytic costs with every time doubled, noting each (VM, bandwidth) it is asked to price."""

    def __init__(self) -> None:
        self.inner = AnalyticMoveCosts()
        self.asked: list[tuple[int, float]] = []

    @property
    def name(self) -> str:
        return "twice as slow"

    def estimate(self, request: CostRequest) -> CostEstimates:
        self.asked += zip(request.vm.tolist(), request.bandwidth_mib_s.tolist(), strict=True)
        e = self.inner.estimate(request)
        return replace(e, total_ms=e.total_ms * 2)


def test_a_plan_given_a_pricing_ranks_by_its_costs_and_prices_schedules_and_shows_the_chosen_moves_by_it() -> None:
    c = cluster([host("a"), host("b"), host("c")], [vm(f"v{i}", "a") for i in range(4)])
    ranked = plan("drain", c, COSTS, host="a", max_moves=3)
    pricing = TwiceAsSlow()
    priced = plan("drain", c, COSTS, host="a", max_moves=3, pricing=pricing)
    assert [(m.vm_id, m.target_id) for m in priced.moves] == [(m.vm_id, m.target_id) for m in ranked.moves]
    assert priced.cost_model == "twice as slow" and len(priced.moves) == 3
    assert {v for v, _ in pricing.asked} == {m.vm for m in priced.moves}  # the candidate left behind is not
    for mine, theirs in zip(priced.moves, ranked.moves, strict=True):
        assert mine.cost.total_time_ms.median == pytest.approx(2 * theirs.cost.total_time_ms.median)
        assert (mine.vm, mine.priced_mib_s) in pricing.asked and mine.priced_mib_s in (FAST, FAST / 2)
    assert priced.duration_s == pytest.approx(2 * ranked.duration_s)
