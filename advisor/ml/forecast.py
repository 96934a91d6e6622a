"""Dirty-rate forecasts: what a VM will dirty over the next migration window, from its recent history.

The forecast is made from one VM's `SeriesStore.window()` (times, values[time, field], NaN = not measured) at a
time `now_s`:

* `build_dirty_features` turns the last `HISTORY_S` seconds into one feature row. It is the one function both
  training (`training/train_dirty.py`) and serving use, and `schema_hash()` covers its names, order, constants and
  units: an artifact trained on another schema is refused. Every window is defined in seconds, never in sample
  counts, so the features mean the same at a 2 s cadence (the lab) and at a 15-60 s cadence (production); the
  card says which cadences the model was trained on.
* `load_dirty_forecaster(models_dir)` loads `models_dir/ACTIVE` -> `models_dir/<version>/` (LightGBM text models
  and `card.json`) as a `LearnedDirtyForecaster` ("lightgbm-dirty"), or falls back, saying why, to
  `MovingAverageForecaster`: the mean of the window as the forecast, its maximum as the p90 and (min, max) as
  the interval.
* `forecast(...)` returns a `DirtyRateForecast`, or None when there is too little history: fewer than
  `MIN_SAMPLES` measured dirty rates in the window, or less than `MIN_SPAN_S` between the oldest and the newest.

Monotonicity: every dirty-rate feature is non-decreasing in each reading (last, mean, EWMA, min, median, max, the
CPU-adjusted mean) or, for the trend, in every reading newer than the window's mean time; the learned models
predict the horizon minus the EWMA and are constrained to be non-decreasing in all of them, so raising the most
recent readings of an otherwise equal history never lowers the forecast. The interval is a scaled
split-conformal one around the mean forecast (LightGBM cannot constrain quantile objectives):
low = mean + q_low * (floor + mean), high = mean + q_high * (floor + p90), with -1 < q_low <= 0 <= q_high from
out-of-fold residuals, so both bounds are non-decreasing too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from advisor.domain.model import ModelRef

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

SCHEMA_VERSION: Final = 2
HISTORY_S: Final = 60.0  # features look at (now - HISTORY_S, now]
HORIZON_S: Final = 30.0  # the forecast is for (now, now + HORIZON_S]: about one migration window
EWMA_TAU_S: Final = 15.0  # time constant of the exponentially weighted mean
MIN_SAMPLES: Final = 2  # measured dirty rates needed in the window
MIN_SPAN_S: Final = 10.0  # ... at least this far apart (oldest to newest)

DIRTY_FIELD: Final = "dirty_rate_mib_s"
CPU_FIELD: Final = "cpu_utilization"
MEMORY_FIELD: Final = "memory_used_mib"

FEATURES: Final[tuple[str, ...]] = (
    "dirty_last",  # newest measured dirty rate, MiB/s
    "dirty_mean",  # mean of the measured dirty rates in the window
    "dirty_ewma",  # time-weighted: weight exp(-(now - t) / EWMA_TAU_S)
    "dirty_min",
    "dirty_median",
    "dirty_max",
    "dirty_trend",  # least-squares slope, MiB/s per minute
    "dirty_cpu_adjusted",  # dirty_mean * cpu_ratio: the window's level moved by how CPU use changed since
    "cpu_ratio",  # newest CPU utilisation / the window's mean, clipped to [0, CPU_RATIO_MAX]; 1 when unknown
    "memory_rel",  # newest memory use / mean memory use in the window; NaN when none
)
# Absolute CPU utilisation is deliberately not a feature: how much a VM dirties per CPU-% differs from VM to VM
# (and workload to workload), and on held-out VMs an absolute CPU level made forecasts worse, not better.
CPU_RATIO_MAX: Final = 4.0
# The models learn the horizon's value minus this feature (a residual), so a forecast follows the VM's own level
# even beyond the levels seen in training.
BASE_FEATURE: Final = "dirty_ewma"
# LightGBM monotone constraints, in FEATURES order: +1 for every dirty-rate feature, none for the others.
MONOTONE: Final[tuple[int, ...]] = tuple(1 if f.startswith("dirty_") else 0 for f in FEATURES)

MODEL_NAME: Final = "lightgbm-dirty"
BASELINE_NAME: Final = "moving-average-dirty"
BASELINE_VERSION: Final = "1"
ACTIVE_FILE: Final = "ACTIVE"
CARD_FILE: Final = "card.json"
# One LightGBM text model per output: the mean and the p90 of the readings over the horizon.
MODEL_FILES: Final[dict[str, str]] = {"mean": "mean.txt", "p90": "p90.txt"}
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


def schema_document() -> dict[str, object]:
    return {
        "schema_version": SCHEMA_VERSION,
        "features": list(FEATURES),
        "monotone": list(MONOTONE),
        "fields": [CPU_FIELD, MEMORY_FIELD, DIRTY_FIELD],
        "base_feature": BASE_FEATURE,
        "cpu_ratio_max": CPU_RATIO_MAX,
        "history_s": HISTORY_S,
        "horizon_s": HORIZON_S,
        "ewma_tau_s": EWMA_TAU_S,
        "min_samples": MIN_SAMPLES,
        "min_span_s": MIN_SPAN_S,
        "units": {"dirty": "MiB/s", "cpu": "fraction 0..1", "trend": "MiB/s per minute", "memory": "ratio"},
    }


def schema_hash() -> str:
    """sha256 of the canonical JSON of the schema: stable across processes and platforms."""
    text = json.dumps(schema_document(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class DirtyFeatures:
    """One feature row (FEATURES order) and what it was built from."""

    row: FloatArray
    samples_used: int  # measured dirty rates in the window
    window_s: float  # now - the oldest of them
    dirty: FloatArray  # those readings (for the baseline)


def _field(fields: Sequence[str], name: str) -> int | None:
    return fields.index(name) if name in fields else None


def build_dirty_features(
    times_s: npt.ArrayLike, values: npt.ArrayLike, fields: Sequence[str], now_s: float
) -> DirtyFeatures | None:
    """The feature row for a forecast at `now_s`, or None when the window holds too little dirty-rate history.

    `times_s` (n,) and `values` (n, len(fields)) as `SeriesStore.window()` returns them; rows newer than `now_s`
    are ignored, NaN means "not measured". Shared by training and serving.
    """
    times = np.asarray(times_s, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    d_idx = _field(fields, DIRTY_FIELD)
    if d_idx is None:
        raise ValueError(f"no {DIRTY_FIELD!r} among the fields {tuple(fields)}")
    if vals.ndim != 2 or vals.shape[0] != times.shape[0] or vals.shape[1] != len(fields):
        raise ValueError(f"values of shape {vals.shape} do not match {times.shape[0]} times x {len(fields)} fields")
    in_window = (times > now_s - HISTORY_S) & (times <= now_s)
    t = times[in_window]
    rows = vals[in_window]
    dirty_ok = np.isfinite(rows[:, d_idx])
    td = t[dirty_ok]
    d = np.maximum(rows[dirty_ok, d_idx], 0.0)
    if len(d) < MIN_SAMPLES or float(td.max() - td.min()) < MIN_SPAN_S:
        return None
    order = np.argsort(td, kind="stable")
    td, d = td[order], d[order]
    weights = np.exp(-(now_s - td) / EWMA_TAU_S)
    centred = td - td.mean()
    slope = float(np.dot(centred, d) / np.dot(centred, centred)) * 60.0
    cpu_ratio, mem_rel = 1.0, math.nan
    c_idx = _field(fields, CPU_FIELD)
    if c_idx is not None:
        ok = np.isfinite(rows[:, c_idx])
        if ok.any():
            c = np.maximum(rows[ok, c_idx][np.argsort(t[ok], kind="stable")], 0.0)
            cpu_mean = float(c.mean())
            if cpu_mean > 1e-6:
                cpu_ratio = min(CPU_RATIO_MAX, float(c[-1]) / cpu_mean)
    m_idx = _field(fields, MEMORY_FIELD)
    if m_idx is not None:
        ok = np.isfinite(rows[:, m_idx])
        if ok.any():
            m = rows[ok, m_idx][np.argsort(t[ok], kind="stable")]
            mean_m = float(m.mean())
            mem_rel = float(m[-1]) / mean_m if mean_m > 0 else math.nan
    row = np.array(
        [
            d[-1],
            d.mean(),
            float(np.dot(weights, d) / weights.sum()),
            d.min(),
            float(np.median(d)),
            d.max(),
            slope,
            d.mean() * cpu_ratio,
            cpu_ratio,
            mem_rel,
        ],
        dtype=np.float64,
    )
    return DirtyFeatures(row=row, samples_used=len(d), window_s=float(now_s - td[0]), dirty=d)


@dataclass(frozen=True)
class DirtyRateForecast:
    """The dirty rate expected over the next `horizon_s` seconds (MiB/s).

    `mean_mib_s` is the forecast mean over the horizon, `p90_mib_s` its 90th percentile (bursts), `interval` an
    (about 80 %) interval for the mean. Ordered: low <= mean <= high and mean <= p90.
    """

    mean_mib_s: float
    p90_mib_s: float
    interval: tuple[float, float]
    samples_used: int
    window_s: float
    model: ModelRef
    horizon_s: float = HORIZON_S

    def describe(self) -> str:
        text = (f"dirty rate {self.mean_mib_s:.1f} MiB/s (p90 {self.p90_mib_s:.1f}) forecast by "
                f"{self.model.name} {self.model.version} from {self.samples_used} samples over "
                f"{self.window_s:.0f} s")
        if self.model.fallback_reason:
            text += f" (fallback: {self.model.fallback_reason})"
        return text


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
        return DirtyRateForecast(mean, p90, (low, high), fs.samples_used, fs.window_s, self._model)


class ArtifactError(Exception):
    """An artifact cannot be used; the message says why (it becomes the fallback reason)."""


@dataclass(frozen=True)
class ConformalInterval:
    """low = mean + q_low * (floor + mean), high = mean + q_high * (floor + p90), in MiB/s."""

    q_low: float
    q_high: float
    floor_mib_s: float

    def bounds(self, mean: FloatArray, p90: FloatArray) -> tuple[FloatArray, FloatArray]:
        return mean + self.q_low * (self.floor_mib_s + mean), mean + self.q_high * (self.floor_mib_s + p90)


class LearnedDirtyForecaster:
    """LightGBM models for the horizon's mean and p90, with a scaled conformal interval for the mean."""

    def __init__(self, boosters: dict[str, Any], interval: ConformalInterval, version: str,
                 interval_kind: str) -> None:
        for key in MODEL_FILES:
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
        base = matrix[:, FEATURES.index(BASE_FEATURE)]
        mean = np.maximum(base + np.asarray(self._boosters["mean"].predict(matrix), dtype=np.float64), 0.0)
        p90 = np.maximum(base + np.asarray(self._boosters["p90"].predict(matrix), dtype=np.float64), mean)
        low, high = self._interval.bounds(mean, p90)
        return {"mean": mean, "p90": p90, "low": np.clip(low, 0.0, mean), "high": np.maximum(high, mean)}

    def forecast(
        self, times_s: npt.ArrayLike, values: npt.ArrayLike, fields: Sequence[str], now_s: float
    ) -> DirtyRateForecast | None:
        fs = build_dirty_features(times_s, values, fields, now_s)
        if fs is None:
            return None
        raw = self.predict_rows(fs.row[None, :])
        mean, p90, low, high = (float(raw[k][0]) for k in ("mean", "p90", "low", "high"))
        return DirtyRateForecast(mean, p90, (low, high), fs.samples_used, fs.window_s, self._model)


def _load(models_dir: Path) -> LearnedDirtyForecaster:
    active = models_dir / ACTIVE_FILE
    if not active.is_file():
        raise ArtifactError(f"no {active}")
    version = active.read_text().strip()
    if not _VERSION_RE.match(version):
        raise ArtifactError(f"{active} names no valid version: {version[:40]!r}")
    directory = models_dir / version
    try:
        card = json.loads((directory / CARD_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {directory / CARD_FILE}: {exc}") from exc
    if not isinstance(card, dict):
        raise ArtifactError(f"{directory / CARD_FILE} is not an object")
    if card.get("schema_hash") != schema_hash():
        raise ArtifactError(f"feature schema mismatch: artifact {str(card.get('schema_hash'))[:12]}, "
                            f"code {schema_hash()[:12]} (retrain with python -m training.train_dirty)")
    boosters: dict[str, Any] = {}
    for key, name in MODEL_FILES.items():
        try:
            boosters[key] = lgb.Booster(model_file=str(directory / name))
        except (OSError, lgb.basic.LightGBMError) as exc:
            raise ArtifactError(f"cannot load {directory / name}: {exc}") from exc
    try:
        raw = card["interval"]
        interval = ConformalInterval(float(raw["q_low"]), float(raw["q_high"]), float(raw["floor_mib_s"]))
        kind = str(raw["kind"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{directory / CARD_FILE} has no usable interval: {exc!r}") from exc
    return LearnedDirtyForecaster(boosters, interval, str(card.get("version", version)), kind)


def load_dirty_forecaster(models_dir: Path) -> DirtyRateForecaster:
    """The active learned forecaster under `models_dir` (e.g. models/dirty_rate), else the moving-average
    baseline whose `model.fallback_reason` says why."""
    try:
        return _load(Path(models_dir))
    except ArtifactError as exc:
        log.warning("dirty-rate forecaster: using the moving average: %s", exc)
        return MovingAverageForecaster(fallback_reason=str(exc))
