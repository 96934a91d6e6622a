"""The learned cost models: LightGBM corrections of the analytic model, loaded from a versioned artifact.

An artifact is a version of the model registry's "cost" kind (`models/cost/<version>/`, written by
`python -m training.train_cost`): one LightGBM text model per target (the card's files, by target name) and the
interval offsets in its card. `load_cost_predictor` loads the active version; the registry refuses an artifact
whose schema hash differs from the code's (advisor/ml/cost_features.py), or that is missing or corrupt, and the
analytic model is used instead, saying why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from advisor.domain.model import Interval, MigrationCost, MigrationInputs, ModelRef, Technique
from advisor.ml.analytic import _validate
from advisor.ml.cost_features import (
    FEATURE_MAX_DOWNTIME_MS,
    TARGET_FEATURES,
    TARGETS,
    TECHNIQUES,
    FloatArray,
    analytic_arrays,
    build_features_from_inputs,
    schema_hash,
)
from advisor.ml.predictor import AnalyticPredictor, CostPredictor
from advisor.ml.registry import Artifact, ArtifactError, ModelRegistry, load_or_fallback

log = logging.getLogger(__name__)

KIND = "cost"
MODEL_NAME = "lightgbm-cost"


@dataclass(frozen=True)
class CostArrays:
    """Predictions for many rows: per target an (n, 3) array of p10, median, p90 (data in MiB)."""

    techniques: tuple[Technique, ...]
    total_time_ms: FloatArray
    downtime_ms: FloatArray
    transferred_mib: FloatArray
    converges: np.ndarray[Any, np.dtype[np.bool_]]
    analytic_rounds: np.ndarray[Any, np.dtype[np.int64]]


class LearnedCostPredictor:
    """LightGBM models for total time, downtime and data, each with a conformal p10-p90 interval."""

    def __init__(
        self,
        boosters: Mapping[str, Any],
        offsets: Mapping[str, Mapping[str, tuple[float, float]]],
        version: str,
        interval_kind: str,
    ) -> None:
        missing = [t for t in TARGETS if t not in boosters or t not in offsets]
        if missing:
            raise ArtifactError(f"no model or interval offsets for {', '.join(missing)}")
        for target in TARGETS:
            expected = len(TARGET_FEATURES[target])
            got = boosters[target].num_feature()
            if got != expected:
                raise ArtifactError(f"{target} model reads {got} features, the schema gives it {expected}")
            for t in TECHNIQUES:
                if str(t) not in offsets[target]:
                    raise ArtifactError(f"no interval offsets for {target} / {t}")
        self._boosters = dict(boosters)
        # Offsets as arrays indexed by technique code; low <= 0 <= high so the median stays inside.
        self._low = {
            t: np.array([min(0.0, float(offsets[t][str(x)][0])) for x in TECHNIQUES]) for t in TARGETS
        }
        self._high = {
            t: np.array([max(0.0, float(offsets[t][str(x)][1])) for x in TECHNIQUES]) for t in TARGETS
        }
        self._model = ModelRef(name=MODEL_NAME, version=version, interval_kind=interval_kind)

    @property
    def model(self) -> ModelRef:
        return self._model

    def predict(self, inputs: MigrationInputs, technique: Technique) -> MigrationCost:
        return self.predict_many([(inputs, technique)])[0]

    def predict_arrays(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> CostArrays:
        """All rows at once: one feature build and one booster call per target."""
        for inputs, _ in rows:
            _validate(inputs)
        fs = build_features_from_inputs(rows)
        code = fs.matrix[:, 0].astype(np.int64)
        out: dict[str, FloatArray] = {}
        for target in TARGETS:
            median = np.asarray(self._boosters[target].predict(fs.columns(target)), dtype=np.float64)
            median = median + fs.offset(target)
            bounds = np.column_stack([median + self._low[target][code], median, median + self._high[target][code]])
            out[target] = np.exp(np.sort(bounds, axis=1))
        max_downtime = np.array([i.max_downtime_ms for i, _ in rows], dtype=np.float64)
        # Converges: the learned downtime fits the allowed downtime, for a pre-copy the analytic model also
        # converging at that limit or the learned downtime doing so. Post-copy always completes.
        analytic_at_limit = analytic_arrays(
            code,
            np.array([i.memory_mib for i, _ in rows], dtype=np.float64),
            np.array([i.dirty_rate_mib_s for i, _ in rows], dtype=np.float64),
            np.array([i.bandwidth_mib_s for i, _ in rows], dtype=np.float64),
            np.array([i.max_bandwidth_mib_s for i, _ in rows], dtype=np.float64),
            max_downtime,
        )
        converges = analytic_at_limit.converges | (out["downtime_ms"][:, 1] <= max_downtime)
        return CostArrays(
            techniques=tuple(t for _, t in rows),
            total_time_ms=out["total_time_ms"],
            downtime_ms=out["downtime_ms"],
            transferred_mib=out["transferred_mib"],
            converges=converges,
            analytic_rounds=fs.analytic.rounds,
        )

    def predict_many(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> list[MigrationCost]:
        if not rows:
            return []
        arrays = self.predict_arrays(rows)
        costs = []
        for k, (inputs, technique) in enumerate(rows):
            notes: list[str] = []
            if technique.is_precopy:
                notes.append(f"analytic model: {int(arrays.analytic_rounds[k])} pre-copy rounds")
            if not math.isclose(inputs.max_downtime_ms, FEATURE_MAX_DOWNTIME_MS):
                notes.append(
                    f"learned from migrations at {FEATURE_MAX_DOWNTIME_MS:.0f} ms allowed downtime; "
                    f"{inputs.max_downtime_ms:.0f} ms requested"
                )
            costs.append(
                MigrationCost(
                    technique=technique,
                    total_time_ms=Interval(*(float(v) for v in arrays.total_time_ms[k])),
                    downtime_ms=Interval(*(float(v) for v in arrays.downtime_ms[k])),
                    transferred_mib=Interval(*(float(v) for v in arrays.transferred_mib[k])),
                    converges=bool(arrays.converges[k]),
                    model=self._model,
                    notes=tuple(notes),
                )
            )
        return costs


def registry(models_dir: Path) -> ModelRegistry:
    return ModelRegistry(models_dir, KIND, schema_hash(), retrain_hint="python -m training.train_cost")


def load_artifact(artifact: Artifact) -> LearnedCostPredictor:
    """Load one checked version; raises ArtifactError (or a card error the registry reports) saying what is wrong."""
    boosters = {target: lgb.Booster(model_file=str(artifact.path(target))) for target in TARGETS}
    intervals = artifact.card["intervals"]
    parsed = {
        t: {k: (float(v[0]), float(v[1])) for k, v in dict(intervals["offsets"][t]).items()} for t in TARGETS
    }
    return LearnedCostPredictor(boosters, parsed, version=artifact.version, interval_kind=str(intervals["kind"]))


def load_cost_predictor(models_dir: Path) -> CostPredictor:
    """The active learned model under `models_dir` (e.g. models/cost), else the analytic model with the reason."""

    def fallback(reason: str) -> CostPredictor:
        log.warning("learned cost model refused, using the analytic model: %s", reason)
        return AnalyticPredictor(fallback_reason=reason)

    return load_or_fallback(registry(Path(models_dir)), load_artifact, fallback)
