"""Cold migration in advice: its cost comes from its steps (advisor.physics.cold), never from the served predictor,
beside the live techniques' costs; a VM's label asks for it, and the reasons say so."""

from __future__ import annotations

from collections.abc import Sequence

from advisor.domain.model import MigrationCost, MigrationInputs, Objective, Technique, Vm
from advisor.ml.predictor import AnalyticPredictor
from advisor.physics import COLD_MODEL
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
