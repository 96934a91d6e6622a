"""Cold migration in advice: its cost comes from its steps (advisor.physics.cold), never from the served predictor,
beside the live techniques' costs; a VM's label asks for it, and the reasons say so."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from advisor.domain.errors import FailedPrecondition
from advisor.domain.model import (
    TECHNIQUE_LABEL,
    MigrationCost,
    MigrationInputs,
    Objective,
    PlanGoal,
    Technique,
    Vm,
    VmSample,
)
from advisor.ml.predictor import AnalyticPredictor
from advisor.physics import COLD_MODEL, TECHNIQUES
from advisor.planning.technique import COLD_BY_LIMITS, COLD_REFUSED, TechniqueRules
from tests.unit.usecases.world import hosts, world


class LiveOnly(AnalyticPredictor):
    """The analytic model, refusing what the learned models refuse: a technique they were not trained on."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[Technique] = []

    def predict_many(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> list[MigrationCost]:
        self.asked.extend(t for _, t in rows)
        assert all(t.is_live for _, t in rows), "cold reached the predictor"
        return super().predict_many(rows)


def test_every_technique_is_priced_cold_by_its_steps_and_the_predictor_never_sees_it() -> None:
    predictor = LiveOnly()
    w = world(predictor=predictor)
    w.push(hosts("a", "c"), [Vm("v1", "a", 4096, 2)])
    costs = w.advice.predict_cost("v1").costs
    assert [c.technique for c in costs] == list(Technique)
    cold = costs[-1]
    assert cold.model == COLD_MODEL and cold.transferred_mib.median < 0.01
    assert cold.downtime_ms.high > 60_000  # the default 60 s shutdown timeout bounds it, then forced off
    assert Technique.COLD not in predictor.asked and len(predictor.asked) == len(Technique) - 1


def test_a_vm_labelled_for_cold_is_moved_cold_and_the_reason_names_the_label() -> None:
    w = world()
    w.push(hosts("a", "c"), [Vm("v1", "a", 4096, 2), Vm("legacy", "a", 4096, 2,
                                                         labels={"advisor.technique": "cold"})])
    w.load({"a": 0.6, "c": 0.1})
    live = w.advice.recommend_target("v1", Objective(), dry_run=True).moves[0]
    cold = w.advice.recommend_target("legacy", Objective(), dry_run=True).moves[0]
    assert live.parameters.technique is not Technique.COLD
    assert any(r.startswith("not cold: ") for r in live.reasons)
    assert cold.parameters.technique is Technique.COLD and cold.predicted_cost.technique is Technique.COLD
    assert cold.parameters.shutdown_timeout_ms == 60_000
    assert any("asked for by the VM's label advisor.technique=cold" in r for r in cold.reasons)


def test_a_vm_asking_for_cold_where_the_rules_forbid_it_is_refused_by_advice_and_left_out_of_plans() -> None:
    """One rule (TechniqueRules.cold_refused, the engine's select): never moved live against its label."""
    w = world(technique=TechniqueRules(techniques=TECHNIQUES))
    w.push(hosts("a", "c"), [Vm("legacy", "a", 4096, 2, labels={TECHNIQUE_LABEL: "cold"}), Vm("v1", "a", 4096, 2)])
    with pytest.raises(FailedPrecondition, match=f"VM 'legacy' cannot move: {re.escape(COLD_REFUSED)}"):
        w.advice.recommend_target("legacy", Objective(), dry_run=True)
    plan = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective(), dry_run=True)
    assert [m.vm_id for m in plan.moves] == ["v1"]
    assert f"Cannot be evacuated: legacy (even to c: {COLD_REFUSED})" in plan.summary


def test_plans_and_advice_choose_cold_where_it_alone_meets_the_limits() -> None:
    """A 16 GiB VM writing faster than the link, post-copy forbidden: 90 s of allowed downtime and a 90 s deadline,
    which no live technique keeps (copying 16 GiB once takes longer) and cold does (p90 70.5 s)."""
    w = world()
    w.push(hosts("a", "c"), [Vm("hot", "a", 16384, 2, postcopy_allowed=False)])
    now = w.clock()
    w.ingestion.push_samples([], [VmSample("hot", now - age, dirty_rate_mib_s=400.0) for age in (30, 0)])
    objective = Objective(max_downtime_ms=90_000, deadline_ms=90_000)
    advised = w.advice.recommend_target("hot", objective, dry_run=True).moves[0]
    planned = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, objective, dry_run=True).moves[0]
    assert advised.parameters.technique is planned.parameters.technique is Technique.COLD
    assert advised.predicted_cost == planned.predicted_cost
    assert any(r.endswith(COLD_BY_LIMITS) for r in advised.reasons)
    assert any(COLD_BY_LIMITS in r for r in planned.reasons)
    # the same VM under the default allowed downtime: live (the fallback), in both
    strict = Objective(deadline_ms=90_000)
    assert w.advice.recommend_target("hot", strict, dry_run=True).moves[0].parameters.technique.is_live
    assert "hot (even to c:" in w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, strict, dry_run=True).summary
