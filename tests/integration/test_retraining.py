"""The learning loop in the running service: a scheduled retrain runs the real training job (on 1% of the SNU
runs: 1-5 minutes on a shared machine) as a subprocess through the promotion gate, and the reloader serves the
version it promoted, without a restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from advisor.app import App
from advisor.domain.model import MigrationInputs, Technique
from advisor.ml.adaptive_intervals import AdaptivePredictor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_a_scheduled_retrain_is_promoted_by_the_gate_and_served(make_app: Callable[..., App],
                                                                  tmp_path: Path) -> None:
    models = tmp_path / "models"  # no active cost model: the analytic one is served, the gate has none to beat
    models.mkdir()
    app = make_app(models_dir=models, models_reload_interval_s=0.2, retrain_interval_s=1.0,
                   retrain_arguments=("--snu-sample", "0.01"))
    assert app.predictor.model.fallback_reason

    def runs(result: str) -> float:
        return app.metrics.registry.get_sample_value("advisor_retrains_total",
                                                     {"trigger": "schedule", "result": result}) or 0

    # No deadline of its own: the run takes 1-5 minutes on a shared machine; pytest's timeout bounds the wait.
    while not any(runs(r) for r in ("promoted", "not promoted", "failed")):
        time.sleep(0.5)
    assert runs("promoted") == 1, (app.settings.data_dir / "retrain" / "last-run.log").read_text()[-2000:]
    while app.predictor.model.name != "lightgbm-cost":  # the reloader's next look (every 0.2 s)
        time.sleep(0.1)
    assert (models / "cost" / "ACTIVE").read_text().strip() == app.predictor.model.version == "1.0.0"
    assert isinstance(app.predictor, AdaptivePredictor)  # the swapped model keeps the adaptive intervals
    cost = app.predictor.predict(MigrationInputs(1024, 20, 100, 100, 300), Technique.PRECOPY)
    assert cost.model.name == "lightgbm-cost"
    assert (app.metrics.registry.get_sample_value("advisor_retrain_last_duration_seconds") or 0) > 0
