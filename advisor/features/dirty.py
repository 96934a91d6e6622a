"""The dirty-rate forecaster's features: one row from a VM's recent samples, shared by training and serving.

`build_dirty_features` turns the last `HISTORY_S` seconds of one VM's `SeriesStore.window()` (times,
values[time, field], NaN = not measured) into one feature row at a time `now_s`. It is the one function both
training (`training/train_dirty.py`) and serving (`advisor.ml.forecast`) use, and `schema_hash()` covers its names,
order, constants and units: an artifact trained on another schema is refused. Every window is defined in seconds,
never in sample counts, so the features mean the same at a 2 s cadence (the lab) and at a 15-60 s cadence
(production). It returns None when there is too little history: fewer than `MIN_SAMPLES` measured dirty rates in
the window, or less than `MIN_SPAN_S` between the oldest and the newest.

Monotonicity: every dirty-rate feature is non-decreasing in each reading (last, mean, EWMA, min, median, max, the
CPU-adjusted mean) or, for the trend, in every reading newer than the window's mean time, so a model constrained
to be non-decreasing in them never lowers its forecast when recent readings rise.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

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


def _mean(values: FloatArray) -> np.float64:
    """`values.mean()` (a non-empty 1-d array) as NumPy takes it, the sum over the count, without its wrapper's cost:
    a forecast takes four."""
    return np.float64(np.add.reduce(values) / len(values))


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
    centred = td - _mean(td)
    slope = float(np.dot(centred, d) / np.dot(centred, centred)) * 60.0
    cpu_ratio, mem_rel = 1.0, math.nan
    c_idx = _field(fields, CPU_FIELD)
    if c_idx is not None:
        ok = np.isfinite(rows[:, c_idx])
        if ok.any():
            c = np.maximum(rows[ok, c_idx][np.argsort(t[ok], kind="stable")], 0.0)
            cpu_mean = float(_mean(c))
            if cpu_mean > 1e-6:
                cpu_ratio = min(CPU_RATIO_MAX, float(c[-1]) / cpu_mean)
    m_idx = _field(fields, MEMORY_FIELD)
    if m_idx is not None:
        ok = np.isfinite(rows[:, m_idx])
        if ok.any():
            m = rows[ok, m_idx][np.argsort(t[ok], kind="stable")]
            mean_m = float(_mean(m))
            mem_rel = float(m[-1]) / mean_m if mean_m > 0 else math.nan
    mean = _mean(d)
    ordered = np.sort(d)
    half = len(ordered) // 2  # the median as np.median takes it (d is finite): the middle, or its two's mean
    median = float(ordered[half]) if len(ordered) % 2 else (float(ordered[half - 1]) + float(ordered[half])) / 2.0
    row = np.array(
        [
            d[-1],
            mean,
            float(np.dot(weights, d) / np.add.reduce(weights)),
            ordered[0],
            median,
            ordered[-1],
            slope,
            mean * cpu_ratio,
            cpu_ratio,
            mem_rel,
        ],
        dtype=np.float64,
    )
    return DirtyFeatures(row=row, samples_used=len(d), window_s=float(now_s - td[0]), dirty=d)
