"""Host overload detectors of Beloglazov & Buyya (CCPE 2012), vectorised over hosts, with CloudSim's rules.

Each detector sees, for m hosts, the summed utilisation history of the VMs on the host (newest first, as
fractions of the host's MIPS, zero-padded) and the requested MIPS / host MIPS now. Like CloudSim, the adaptive
detectors trim the zero tail of the history and fall back to a static 0.7 threshold until they have enough values.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from advisor.simulation.arrays import BoolArray, FloatArray, IntArray


@dataclass(frozen=True)
class HostLoad:
    """What a detector may look at for m hosts."""

    history: FloatArray  # (m, H) newest first
    requested: FloatArray  # (m,) requested MIPS / host MIPS
    max_ram_mb: FloatArray  # (m,) largest VM RAM on the host (LR's migration-time look-ahead)
    bw_mbit_s: FloatArray  # (m,)


class Detector(Protocol):
    @property
    def name(self) -> str: ...

    def overloaded(self, load: HostLoad) -> BoolArray:
        """True where the host counts as overloaded."""
        ...


def history_length(history: FloatArray) -> IntArray:
    """CloudSim's MathUtil.countNonZeroBeginning: length after trimming trailing zeros (1 when all are zero)."""
    nonzero = history != 0
    last = history.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    lengths: IntArray = np.where(nonzero.any(axis=1), last, 1).astype(np.int64)
    return lengths


def legacy_median(sorted_rows: FloatArray) -> FloatArray:
    """commons-math Percentile(50), legacy estimation, on rows already sorted ascending."""
    n = sorted_rows.shape[1]
    pos = 50 * (n + 1) / 100
    low = math.floor(pos)
    if low < 1:
        return sorted_rows[:, 0].copy()
    if pos >= n:
        return sorted_rows[:, n - 1].copy()
    lower, upper = sorted_rows[:, low - 1], sorted_rows[:, low]
    median: FloatArray = lower + (pos - low) * (upper - lower)
    return median


def mad(values: FloatArray) -> FloatArray:
    """Median absolute deviation of each row (CloudSim's MathUtil.mad)."""
    median = legacy_median(np.sort(values, axis=1))
    return legacy_median(np.sort(np.abs(median[:, None] - values), axis=1))


def iqr(values: FloatArray) -> FloatArray:
    """Interquartile range of each row, with CloudSim's rounded quartile positions (MathUtil.iqr)."""
    ordered = np.sort(values, axis=1)
    n = values.shape[1]
    q1 = math.floor(0.25 * (n + 1) + 0.5) - 1
    q3 = math.floor(0.75 * (n + 1) + 0.5) - 1
    spread: FloatArray = ordered[:, q3] - ordered[:, q1]
    return spread


@dataclass(frozen=True)
class StaticThreshold:
    """THR: overloaded when requested / capacity exceeds the threshold."""

    threshold: float = 0.8
    name: str = "thr"

    def overloaded(self, load: HostLoad) -> BoolArray:
        result: BoolArray = load.requested > self.threshold
        return result


@dataclass(frozen=True)
class _Dispersion:
    """MAD and IQR: threshold 1 - safety x dispersion of the trimmed history, given >= min_history values."""

    safety: float
    min_history: int = 12
    fallback: StaticThreshold = StaticThreshold(0.7)

    def _dispersion(self, values: FloatArray) -> FloatArray:
        raise NotImplementedError

    def overloaded(self, load: HostLoad) -> BoolArray:
        result = self.fallback.overloaded(load)
        lengths = history_length(load.history)
        if (lengths == lengths[0]).all():  # the usual case: one length for all hosts
            if lengths[0] >= self.min_history:
                upper = 1 - self.safety * self._dispersion(load.history[:, : lengths[0]])
                result = load.requested > upper
            return result
        for length in np.unique(lengths[lengths >= self.min_history]):
            rows = np.flatnonzero(lengths == length)
            upper = 1 - self.safety * self._dispersion(load.history[rows, :length])
            result[rows] = load.requested[rows] > upper
        return result


@dataclass(frozen=True)
class MedianAbsoluteDeviation(_Dispersion):
    safety: float = 2.5
    name: str = "mad"

    def _dispersion(self, values: FloatArray) -> FloatArray:
        return mad(values)


@dataclass(frozen=True)
class InterQuartileRange(_Dispersion):
    safety: float = 1.5
    name: str = "iqr"

    def _dispersion(self, values: FloatArray) -> FloatArray:
        return iqr(values)


@functools.cache
def _ols_weights(window: int) -> tuple[FloatArray, FloatArray, float]:
    """Least-squares weights for x = window..1 (newest first): slope = y . a, mean = y . b."""
    x = np.arange(window, 0, -1, dtype=np.float64)
    centred = x - x.mean()
    return centred / (centred @ centred), np.full(window, 1.0 / window), float(x.mean())


@dataclass(frozen=True)
class LocalRegression:
    """LR: least squares over the last `window` values, extrapolated past the longest migration, x safety >= 1.

    CloudSim calls it tricube-weighted loess, but with no zero weights its MathUtil skips the weighting, so this
    is ordinary least squares on x = 1..window (newest at x = window), evaluated at window + ceil(T_mig / interval).
    """

    safety: float = 1.2
    interval_s: float = 300.0
    window: int = 10
    fallback: StaticThreshold = StaticThreshold(0.7)
    name: str = "lr"

    def predicted(self, load: HostLoad) -> FloatArray:
        """Predicted utilisation x safety (NaN where the history is too short)."""
        w = self.window
        newest_first = load.history[:, :w]
        slope_weights, mean_weights, x_mean = _ols_weights(w)
        slope = newest_first @ slope_weights
        intercept = newest_first @ mean_weights - slope * x_mean
        steps = np.ceil(load.max_ram_mb / (load.bw_mbit_s / 16.0) / self.interval_s)
        result: FloatArray = (intercept + slope * (w + steps)) * self.safety
        result[~(load.history[:, w - 1 :] != 0).any(axis=1)] = np.nan  # fewer than w values after trimming
        return result

    def overloaded(self, load: HostLoad) -> BoolArray:
        predicted = self.predicted(load)
        short = np.isnan(predicted)
        result: BoolArray = predicted >= 1
        if short.any():
            result[short] = self.fallback.overloaded(load)[short]
        return result
