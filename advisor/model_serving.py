"""The models the advisor serves: loading the active versions of the registry's artifacts (`models/<kind>/`) at
start, and serving a newly promoted one, or an active artifact that changed, without a restart."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from advisor.domain.model import MigrationInputs
from advisor.metrics import AdvisorMetrics
from advisor.ml.adaptive_intervals import AdaptiveIntervals, AdaptivePredictor
from advisor.ml.cost import load_cost_predictor
from advisor.ml.forecast import DirtyRateForecaster, load_dirty_forecaster
from advisor.ml.predictor import CostPredictor
from advisor.ml.profile_serving import ProfileServingPredictor
from advisor.ml.profile_store import ProfileStore
from advisor.ml.registry import active_fingerprint
from advisor.physics import TECHNIQUES
from advisor.usecases.estimates import CostEstimator

log = logging.getLogger("advisor")


def load_predictor(models_dir: Path, intervals: AdaptiveIntervals | None = None) -> CostPredictor:
    """The active learned cost model under `models_dir/cost`, or the analytic model saying why not; a host profile
    it does not know is served by the physics, calibrated from `models_dir/profiles` where it was. With `intervals`
    (the serving advisor's), the intervals served adapt to the coverage of recent outcomes."""
    served = ProfileServingPredictor(load_cost_predictor(models_dir / "cost"),
                                     ProfileStore(models_dir / "profiles").get)
    return served if intervals is None else AdaptivePredictor(served, intervals)


def load_models(models_dir: Path, metrics: AdvisorMetrics, intervals: AdaptiveIntervals | None = None
                ) -> tuple[CostPredictor, DirtyRateForecaster]:
    predictor = load_predictor(models_dir, intervals)
    if predictor.model.fallback_reason:
        log.warning("cost model fallback", extra={"reason": predictor.model.fallback_reason})
    forecaster = load_dirty_forecaster(models_dir / "dirty_rate")
    if forecaster.model.fallback_reason:
        log.warning("dirty-rate forecaster fallback", extra={"reason": forecaster.model.fallback_reason})
    metrics.cost_model.info({"name": predictor.model.name, "version": predictor.model.version,
                             "fallback_reason": predictor.model.fallback_reason})
    warm_up(predictor)
    return predictor, forecaster


# A question of every technique asked once at start: the compiled loops (advisor.ml.trees, advisor.physics.rounds)
# are compiled or read from their cache at their first call, 0.5-1.7 s here, which the first scheduler to ask after
# a start would otherwise wait for.
WARM_UP = MigrationInputs(2048.0, 40.0, 1000.0, 500.0, 300.0, memory_configured_mib=4096.0, working_set_mib=64.0,
                          deadline_ms=60_000.0)


def warm_up(predictor: CostPredictor) -> None:
    started = time.perf_counter()
    predictor.predict_many([(WARM_UP, t) for t in TECHNIQUES])
    log.info("cost model warmed", extra={"seconds": round(time.perf_counter() - started, 3)})


def models_reloader(models_dir: Path, estimator: CostEstimator, metrics: AdvisorMetrics,
                    intervals: AdaptiveIntervals | None = None) -> Callable[[], None]:
    """A task that serves a newly activated (promoted) model without a restart: when a kind's active artifact
    changes (ACTIVE points elsewhere, or the files of the version it names were replaced), it is loaded and swapped
    in (the adaptive intervals go on from where they were); one that cannot be served is refused and the current
    model stays, saying why in the log and in
    advisor_model_reloads{outcome="refused"}."""
    seen = {kind: active_fingerprint(models_dir / kind) for kind in ("cost", "dirty_rate")}

    def reload() -> None:
        for kind, load in (("cost", lambda: load_predictor(models_dir, intervals)),
                           ("dirty_rate", lambda: load_dirty_forecaster(models_dir / "dirty_rate"))):
            now = active_fingerprint(models_dir / kind)
            if now == seen[kind]:
                continue
            seen[kind] = now
            version = now[0] if now else ""
            model = load()
            if model.model.fallback_reason:
                metrics.model_reloads.labels(kind, "refused").inc()
                log.error("activated model refused, keeping the current one",
                          extra={"kind": kind, "version": version, "reason": model.model.fallback_reason})
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

