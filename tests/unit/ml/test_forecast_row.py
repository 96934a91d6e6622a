"""A served forecast's one row in floats (`predict_row`) is the same four doubles as the array path (`predict_rows`)
gives that row: NaN, signed zeros and bounds that cross included."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from advisor.features.dirty import BASE_FEATURE, FEATURES
from advisor.ml.forecast import ConformalInterval, LearnedDirtyForecaster

EDGES = [0.0, -0.0, 1.0, -1.0, 3.5, -7.25, 1e-300, -1e-300, math.nan, math.inf, -math.inf]


class Fixed:
    """A model whose prediction for a row is read from the row's last feature (scaled per model)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def num_feature(self) -> int:
        return len(FEATURES)

    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(x[:, -1] * self.scale, dtype=np.float64)


def bits(value: float) -> tuple[bool, float, float]:
    return math.isnan(value), 0.0 if math.isnan(value) else value, math.copysign(1.0, value)


def test_one_row_in_floats_is_the_array_paths_row() -> None:
    rng = np.random.default_rng(3)
    base = FEATURES.index(BASE_FEATURE)
    forecaster = LearnedDirtyForecaster({"mean": Fixed(1.0), "p90": Fixed(-2.0)},
                                        ConformalInterval(-0.3, 0.6, 0.5), "1", "test")
    rows = rng.normal(size=(4000, len(FEATURES))) * 20
    rows[:, base] = rng.choice([*EDGES, *rng.normal(size=20) * 30], len(rows))
    rows[:, -1] = rng.choice([*EDGES, *rng.normal(size=20) * 30], len(rows))
    with np.errstate(invalid="ignore", over="ignore"):  # infinities of opposite signs meet on purpose
        arrays = forecaster.predict_rows(rows)
    for k, row in enumerate(rows):
        got = forecaster.predict_row(row)
        want = tuple(float(arrays[name][k]) for name in ("mean", "p90", "low", "high"))
        assert [bits(v) for v in got] == [bits(v) for v in want], (row[base], row[-1], got, want)
