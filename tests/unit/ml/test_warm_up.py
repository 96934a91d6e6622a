"""At start the advisor asks its cost model one question of every technique, so that the compiled loops are ready
before the first scheduler asks."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from advisor.domain.model import MigrationCost, MigrationInputs, ModelRef, Technique
from advisor.ml.predictor import AnalyticPredictor
from advisor.model_serving import warm_up
from advisor.physics import TECHNIQUES


class Recording:
    def __init__(self) -> None:
        self.inner = AnalyticPredictor()
        self.asked: list[tuple[MigrationInputs, Technique]] = []

    @property
    def model(self) -> ModelRef:
        return self.inner.model

    def predict(self, inputs: MigrationInputs, technique: Technique) -> MigrationCost:
        return self.predict_many([(inputs, technique)])[0]

    def predict_many(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> list[MigrationCost]:
        self.asked += rows
        return self.inner.predict_many(rows)


def test_warm_up_asks_every_technique_once_and_says_how_long_it_took(caplog: pytest.LogCaptureFixture) -> None:
    predictor = Recording()
    with caplog.at_level(logging.INFO, logger="advisor"):
        warm_up(predictor)
    assert [t for _, t in predictor.asked] == list(TECHNIQUES)
    record = next(r for r in caplog.records if r.getMessage() == "cost model warmed")
    assert record.seconds >= 0  # type: ignore[attr-defined]
