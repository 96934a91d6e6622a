"""A paired bootstrap over groups: how sure a difference between two models' figures on the same rows is.

Both models are scored on each resample of the same groups (drawn with replacement, a group's rows together), so
what the rows happen to be cancels out and only the difference between the models is left. Figures are ratios of
sums over rows (a mean error, a coverage, a recall) or a median, each computed for every resample at once from
the rows' weights (how many times their group was drawn).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Resamples:
    """Row weights of `draws` resamples: (draws, rows), a row's weight the number of times its group was drawn."""

    weights: np.ndarray

    @staticmethod
    def of_groups(groups: np.ndarray, draws: int, seed: int) -> Resamples:
        names, index = np.unique(groups.astype(str), return_inverse=True)
        picks = np.random.default_rng(seed).integers(0, len(names), size=(draws, len(names)))
        counts = np.zeros((draws, len(names)))
        np.add.at(counts, (np.arange(draws)[:, None], picks), 1.0)
        return Resamples(counts[:, index])

    def take(self, rows: np.ndarray) -> Resamples:
        return Resamples(self.weights[:, rows])


def ratio(numerator: np.ndarray, denominator: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum(w x numerator) / sum(w x denominator) per row of `weights` (NaN where the denominator sums to 0)."""
    num = weights @ numerator.astype(np.float64)
    den = weights @ denominator.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted median of `values` for each row of `weights` (the lower one at an exact half)."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[:, order], axis=1)
    total = cum[:, -1:] if cum.shape[1] else np.zeros((len(weights), 1))
    first = np.argmax(cum >= total / 2.0, axis=1)
    out = values[order][first] if len(values) else np.full(len(weights), np.nan)
    return np.where(total[:, 0] > 0, out, np.nan)
