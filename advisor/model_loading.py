"""Loading the trained models the advisor serves, and serving newly promoted ones without a restart."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from advisor.metrics import AdvisorMetrics
from advisor.ml.cost import load_cost_predictor
from advisor.ml.forecast import DirtyRateForecaster, load_dirty_forecaster
from advisor.ml.predictor import CostPredictor
from advisor.usecases.estimates import CostEstimator

log = logging.getLogger("advisor")


def load_predictor(models_dir: Path) -> CostPredictor:
    """The active learned cost model under `models_dir/cost`, or the analytic model saying why not."""
    return load_cost_predictor(models_dir / "cost")


def load_models(models_dir: Path, metrics: AdvisorMetrics) -> tuple[CostPredictor, DirtyRateForecaster]:
    predictor = load_predictor(models_dir)
    if predictor.model.fallback_reason:
        log.warning("cost model fallback", extra={"reason": predictor.model.fallback_reason})
    forecaster = load_dirty_forecaster(models_dir / "dirty_rate")
    if forecaster.model.fallback_reason:
        log.warning("dirty-rate forecaster fallback", extra={"reason": forecaster.model.fallback_reason})
    metrics.cost_model.info({"name": predictor.model.name, "version": predictor.model.version,
                             "fallback_reason": predictor.model.fallback_reason})
    return predictor, forecaster


def models_reloader(models_dir: Path, estimator: CostEstimator, metrics: AdvisorMetrics) -> Callable[[], None]:
    """A task that serves a newly activated (promoted) model without a restart: when a kind's ACTIVE pointer
    changes, the new version is loaded and swapped in; one that cannot be served is refused and the current
    model stays, saying why in the log and in advisor_model_reloads{outcome="refused"}."""
    seen = {kind: _active(models_dir / kind) for kind in ("cost", "dirty_rate")}

    def reload() -> None:
        for kind, load in (("cost", lambda: load_predictor(models_dir)),
                           ("dirty_rate", lambda: load_dirty_forecaster(models_dir / "dirty_rate"))):
            now = _active(models_dir / kind)
            if now == seen[kind]:
                continue
            seen[kind] = now
            model = load()
            if model.model.fallback_reason:
                metrics.model_reloads.labels(kind, "refused").inc()
                log.error("activated model refused, keeping the current one",
                          extra={"kind": kind, "version": now, "reason": model.model.fallback_reason})
                continue
            if kind == "cost":
                estimator.swap(predictor=model)  # type: ignore[arg-type]
                metrics.cost_model.info({"name": model.model.name, "version": model.model.version,
                                         "fallback_reason": ""})
            else:
                estimator.swap(forecaster=model)  # type: ignore[arg-type]
            metrics.model_reloads.labels(kind, "served").inc()
            log.info("serving a newly activated model", extra={"kind": kind, "model": model.model.name,
                                                               "version": model.model.version})

    return reload


def _active(directory: Path) -> str:
    try:
        return (directory / "ACTIVE").read_text().strip()
    except OSError:
        return ""
