"""The learning loop in the running service: a scheduled retrain runs the real training job (on 1% of the SNU
runs, half the lab's configurations, a fifth of the trees: 1-3 minutes on a shared machine) as a subprocess
through the promotion gate -- with no active model, against the physics the service serves -- and the reloader
serves the version it promoted, without a restart; a refused one is never served."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from advisor.app import App
from advisor.domain.model import MigrationInputs, Technique
from advisor.ml.adaptive_intervals import AdaptivePredictor
from tests.support.training import TREES, lab_configurations

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_a_scheduled_retrain_goes_through_the_gate_against_the_physics_served_and_only_a_promoted_one_is_served(
        make_app: Callable[..., App], tmp_path: Path) -> None:
    models = tmp_path / "models"  # no active cost model: the physics is served, and the candidate must beat it
    models.mkdir()
    lab = lab_configurations(tmp_path / "lab_migrations.csv")  # the job's plumbing is tested, not the model
    app = make_app(models_dir=models, models_reload_interval_s=0.2, retrain_interval_s=1.0,
                   retrain_arguments=("--snu-sample", "0.01", *TREES, "--lab-data", str(lab)))
    assert app.predictor.model.fallback_reason

    def runs(result: str) -> float:
        return app.metrics.registry.get_sample_value("advisor_retrains_total",
                                                     {"trigger": "schedule", "result": result}) or 0

    # No deadline of its own: the run takes 1-3 minutes on a shared machine; pytest's timeout bounds the wait.
    while not any(runs(r) for r in ("promoted", "not promoted", "failed")):
        time.sleep(0.5)
    log = (app.settings.data_dir / "retrain" / "last-run.log").read_text()
    assert not runs("failed"), log[-2000:]
    promotion = json.loads((models / "cost" / "1.0.0" / "card.json").read_text())["promotion"]
    gate = promotion["gate"]
    assert gate["baseline"] == "the physics fallback serving would use" and gate["comparisons"]
    assert "no active cost model" in gate["baseline_why"]
    if not promotion["promoted"]:  # worse than the physics on some comparison: never served
        assert runs("not promoted") == 1 and promotion["refused"], promotion["reason"]
        assert not (models / "cost" / "ACTIVE").exists() and app.predictor.model.fallback_reason
        return
    assert runs("promoted") == 1, log[-2000:]
    while app.predictor.model.name != "lightgbm-cost":  # the reloader's next look (every 0.2 s)
        time.sleep(0.1)
    assert (models / "cost" / "ACTIVE").read_text().strip() == app.predictor.model.version == "1.0.0"
    assert isinstance(app.predictor, AdaptivePredictor)  # the swapped model keeps the adaptive intervals
    cost = app.predictor.predict(MigrationInputs(1024, 20, 100, 100, 300), Technique.PRECOPY)
    assert cost.model.name == "lightgbm-cost"
    assert (app.metrics.registry.get_sample_value("advisor_retrain_last_duration_seconds") or 0) > 0
