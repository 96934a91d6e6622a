"""Dirty-rate forecasts: what a VM will dirty over the next migration window, from its recent history.

* `load_dirty_forecaster(models_dir)` loads the active version of `models_dir` (e.g. models/dirty_rate) through
  the model registry as a `LearnedDirtyForecaster` ("lightgbm-dirty"), or falls back, saying why, to
  `MovingAverageForecaster`: the mean of the window as the forecast, its maximum as the p90 and (min, max) as
  the interval.
* `forecast(...)` returns a `DirtyRateForecast` (advisor.domain.model), or None when the window holds too little
  history (advisor.features.dirty says how much is enough).

The features are `advisor.features.dirty.build_dirty_features`, shared with training. The learned models predict
the horizon minus the EWMA and are constrained to be non-decreasing in every dirty-rate feature, so raising the
most recent readings of an otherwise equal history never lowers the forecast. The interval is a scaled
split-conformal one around the mean forecast (LightGBM cannot constrain quantile objectives):
low = mean + q_low * (floor + mean), high = mean + q_high * (floor + p90), with -1 < q_low <= 0 <= q_high from
out-of-fold residuals, so both bounds are non-decreasing too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from advisor.domain.model import DirtyRateForecast, ModelRef
from advisor.features.dirty import BASE_FEATURE, FEATURES, HORIZON_S, build_dirty_features, schema_hash
from advisor.ml.registry import Artifact, ArtifactError, ModelRegistry, load_or_fallback
from advisor.ml.trees import Forest

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Values = TypeVar("Values", float, FloatArray)  # one row's, or many rows'

KIND: Final = "dirty_rate"
MODEL_NAME: Final = "lightgbm-dirty"
BASELINE_NAME: Final = "moving-average-dirty"
BASELINE_VERSION: Final = "1"
# One LightGBM text model per output: the mean and the p90 of the readings over the horizon (roles in the card).
MODEL_ROLES: Final = ("mean", "p90")
_BASE: Final = FEATURES.index(BASE_FEATURE)  # the feature both models' outputs are added to


def registry(models_dir: Path) -> ModelRegistry:
    return ModelRegistry(models_dir, KIND, schema_hash(), retrain_hint="python -m training.train_dirty")


class DirtyRateForecaster(Protocol):
    @property
    def model(self) -> ModelRef: ...

    def forecast(
        self, times_s: npt.ArrayLike, values: npt.ArrayLike, fields: Sequence[str], now_s: float
    ) -> DirtyRateForecast | None: ...


def _ordered(mean: float, p90: float, low: float, high: float) -> tuple[float, float, float, float]:
    mean = max(0.0, mean)
    return mean, max(mean, p90), min(max(0.0, low), mean), max(high, mean)


class MovingAverageForecaster:
    """The robust baseline: the window's mean, its maximum as the p90 and (min, max) as the interval."""

    def __init__(self, fallback_reason: str = "") -> None:
        self._model = ModelRef(name=BASELINE_NAME, version=BASELINE_VERSION, interval_kind="window min-max",
                               fallback_reason=fallback_reason)

    @property
    def model(self) -> ModelRef:
        return self._model

    def forecast(
        self, times_s: npt.ArrayLike, values: npt.ArrayLike, fields: Sequence[str], now_s: float
    ) -> DirtyRateForecast | None:
        fs = build_dirty_features(times_s, values, fields, now_s)
        if fs is None:
            return None
        mean, p90, low, high = _ordered(float(fs.dirty.mean()), float(fs.dirty.max()), float(fs.dirty.min()),
                                        float(fs.dirty.max()))
        return DirtyRateForecast(mean, p90, (low, high), fs.samples_used, fs.window_s, self._model, HORIZON_S)


@dataclass(frozen=True)
class ConformalInterval:
    """low = mean + q_low * (floor + mean), high = mean + q_high * (floor + p90), in MiB/s."""

    q_low: float
    q_high: float
    floor_mib_s: float

    def bounds(self, mean: Values, p90: Values) -> tuple[Values, Values]:
        return mean + self.q_low * (self.floor_mib_s + mean), mean + self.q_high * (self.floor_mib_s + p90)


def _maximum(a: float, b: float) -> float:
    """np.maximum of two floats, as NumPy takes it: NaN wins, and of two zeros the second."""
    return a if a > b or math.isnan(a) else b


def _clip(x: float, low: float, high: float) -> float:
    """np.clip of one float, as NumPy takes it: NaN kept, raised to `low`, then lowered to `high`."""
    x = x if x > low or math.isnan(x) else low
    return x if x < high or math.isnan(x) else high



class LearnedDirtyForecaster:
    """LightGBM models for the horizon's mean and p90, with a scaled conformal interval for the mean."""

    def __init__(self, boosters: dict[str, Any], interval: ConformalInterval, version: str,
                 interval_kind: str) -> None:
        for key in MODEL_ROLES:
            if key not in boosters:
                raise ArtifactError(f"no {key} model")
            got = boosters[key].num_feature()
            if got != len(FEATURES):
                raise ArtifactError(f"{key} model reads {got} features, the schema has {len(FEATURES)}")
        if not (-1.0 < interval.q_low <= 0.0 <= interval.q_high and interval.floor_mib_s >= 0
                and math.isfinite(interval.q_high)):
            raise ArtifactError(f"unusable interval {interval}")
        self._boosters = boosters
        self._interval = interval
        self._model = ModelRef(name=MODEL_NAME, version=version, interval_kind=interval_kind)

    @property
    def model(self) -> ModelRef:
        return self._model

    def predict_rows(self, matrix: FloatArray) -> dict[str, FloatArray]:
        """Mean, p90, low and high for many feature rows (n, len(FEATURES)), ordered as `forecast` orders them."""
        base = matrix[:, _BASE]
        mean = np.maximum(base + np.asarray(self._boosters["mean"].predict(matrix), dtype=np.float64), 0.0)
        p90 = np.maximum(base + np.asarray(self._boosters["p90"].predict(matrix), dtype=np.float64), mean)
        low, high = self._interval.bounds(mean, p90)
        return {"mean": mean, "p90": p90, "low": np.clip(low, 0.0, mean), "high": np.maximum(high, mean)}

    def predict_row(self, row: FloatArray) -> tuple[float, float, float, float]:
        """`predict_rows` of one feature row (a served question's), in floats: the same operations without the cost
        of arrays of one element."""
        x = row[None, :]
        base = float(row[_BASE])
        mean = _maximum(base + float(self._boosters["mean"].predict(x)[0]), 0.0)
        p90 = _maximum(base + float(self._boosters["p90"].predict(x)[0]), mean)
        low, high = self._interval.bounds(mean, p90)
        return mean, p90, _clip(low, 0.0, mean), _maximum(high, mean)

    def forecast(
        self, times_s: npt.ArrayLike, values: npt.ArrayLike, fields: Sequence[str], now_s: float
    ) -> DirtyRateForecast | None:
        fs = build_dirty_features(times_s, values, fields, now_s)
        if fs is None:
            return None
        mean, p90, low, high = self.predict_row(fs.row)
        return DirtyRateForecast(mean, p90, (low, high), fs.samples_used, fs.window_s, self._model, HORIZON_S)

    def forecast_many(self, windows: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]], fields: Sequence[str],
                      now_s: float) -> list[DirtyRateForecast | None]:
        """`forecast` of each (times, values) window, the trees walked once over all their feature rows (a plan
        prices thousands of VMs)."""
        built = [build_dirty_features(times, values, fields, now_s) for times, values in windows]
        rows = [fs.row for fs in built if fs is not None]
        if not rows:
            return [None] * len(built)
        p = self.predict_rows(np.vstack(rows))
        predicted = iter(zip(p["mean"].tolist(), p["p90"].tolist(), p["low"].tolist(), p["high"].tolist(),
                             strict=True))
        out: list[DirtyRateForecast | None] = []
        for fs in built:
            if fs is None:
                out.append(None)
                continue
            mean, p90, low, high = next(predicted)
            out.append(DirtyRateForecast(mean, p90, (low, high), fs.samples_used, fs.window_s, self._model,
                                         HORIZON_S))
        return out


def _load(artifact: Artifact) -> LearnedDirtyForecaster:
    boosters: dict[str, Any] = {role: Forest.from_file(artifact.path(role)) for role in MODEL_ROLES}
    raw = artifact.card["interval"]
    interval = ConformalInterval(float(raw["q_low"]), float(raw["q_high"]), float(raw["floor_mib_s"]))
    return LearnedDirtyForecaster(boosters, interval, artifact.version, str(raw["kind"]))


def load_dirty_forecaster(models_dir: Path) -> DirtyRateForecaster:
    """The active learned forecaster under `models_dir` (e.g. models/dirty_rate), else the moving-average
    baseline whose `model.fallback_reason` says why."""

    def fallback(reason: str) -> DirtyRateForecaster:
        log.warning("dirty-rate forecaster: using the moving average: %s", reason)
        return MovingAverageForecaster(fallback_reason=reason)

    return load_or_fallback(registry(Path(models_dir)), _load, fallback)
