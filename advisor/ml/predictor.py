"""The one interface every cost model offers to the rest of the advisor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from advisor.domain.model import MigrationCost, MigrationInputs, ModelRef, Technique
from advisor.ml.analytic import ANALYTIC_MODEL, predict_analytic


class CostPredictor(Protocol):
    """Predicts what migrating with a technique will cost. Every prediction names the model that made it."""

    @property
    def model(self) -> ModelRef: ...

    def predict(self, inputs: MigrationInputs, technique: Technique) -> MigrationCost: ...

    def predict_many(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> list[MigrationCost]: ...


class AnalyticPredictor:
    """The physics alone. Also the fallback when no learned model can be loaded; `fallback_reason` says why."""

    def __init__(self, fallback_reason: str = "") -> None:
        self._model = ModelRef(
            ANALYTIC_MODEL.name, ANALYTIC_MODEL.version, ANALYTIC_MODEL.interval_kind, fallback_reason
        )

    @property
    def model(self) -> ModelRef:
        return self._model

    def predict(self, inputs: MigrationInputs, technique: Technique) -> MigrationCost:
        cost = predict_analytic(inputs, technique)
        return MigrationCost(
            cost.technique, cost.total_time_ms, cost.downtime_ms, cost.transferred_mib, cost.converges,
            self._model, cost.notes,
        )

    def predict_many(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> list[MigrationCost]:
        return [self.predict(inputs, technique) for inputs, technique in rows]
