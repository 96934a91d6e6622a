"""Nested held-out bounds: the sorted, every-group-at-once heldout_bounds gives the same bits as the plain
definition (per held-out group, per tail level, np.quantile of the rows of every other group but one) on
generated residuals with ties, one-row groups, a single group and two groups; NaN residuals are refused."""

from __future__ import annotations

import numpy as np
import pytest

from training.cost_eval import heldout_bounds
from training.cost_model import NOMINAL_COVERAGE, TAIL_LEVELS, _coverage_at

SEEDS = 16


def _plain_heldout_bounds(residual: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The definition, group by group and level by level (quadratic in the groups, each step an np.quantile)."""
    bounds = np.zeros((len(residual), 2))
    for g in np.unique(groups):
        held = groups == g
        rest, rest_groups = residual[~held], groups[~held]
        if len(rest) == 0:
            continue
        tail = TAIL_LEVELS[-1]
        for level in TAIL_LEVELS:
            if len(np.unique(rest_groups)) < 2 or _coverage_at(rest, rest_groups, level) >= NOMINAL_COVERAGE - 1e-12:
                tail = level
                break
        bounds[held] = (min(0.0, float(np.quantile(rest, tail))), max(0.0, float(np.quantile(rest, 1 - tail))))
    return bounds


def _residuals(rng: np.random.Generator, groups: int, rounded: bool) -> tuple[np.ndarray, np.ndarray]:
    """Groups of 1 to 40 rows, shuffled, each with its own bias and spread (so levels other than the first are
    chosen); rounded to 0.1 for many ties."""
    sizes = rng.integers(1, 41, groups)
    labels = np.repeat(np.array([f"config-{i}" for i in range(groups)]), sizes)
    rng.shuffle(labels)
    codes = np.unique(labels, return_inverse=True)[1]
    bias, spread = rng.normal(0, 0.2, groups), rng.choice([0.02, 0.1, 0.5, 1.5], groups)
    residual = rng.normal(bias[codes], spread[codes])
    return (np.round(residual, 1) if rounded else residual), labels


@pytest.mark.parametrize("seed", range(SEEDS))
def test_the_sorted_bounds_are_the_plain_definitions_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    residual, groups = _residuals(rng, groups=int(rng.integers(1, 16)), rounded=seed % 3 == 0)
    fast, plain = heldout_bounds(residual, groups), _plain_heldout_bounds(residual, groups)
    assert fast.tobytes() == plain.tobytes()


def test_every_level_is_reached_on_some_generated_data() -> None:
    """The comparison above means something only if the levels it chooses vary: the held-out groups' bounds
    widen from the 10/90% tails to the widest."""
    levels = set()
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        residual, groups = _residuals(rng, groups=int(rng.integers(1, 16)), rounded=seed % 3 == 0)
        bounds = heldout_bounds(residual, groups)
        for g in np.unique(groups):
            rest = residual[groups != g]
            if len(rest) == 0:
                continue
            row = bounds[groups == g][0]
            levels |= {t for t in TAIL_LEVELS if row[0] == min(0.0, float(np.quantile(rest, t)))
                       and row[1] == max(0.0, float(np.quantile(rest, 1 - t)))}
    assert {TAIL_LEVELS[0], TAIL_LEVELS[-1]} <= levels and len(levels) > 5


def test_one_group_has_no_bounds_and_two_groups_bound_each_other() -> None:
    residual = np.array([-0.3, 0.1, 0.2, 0.5])
    assert heldout_bounds(residual, np.array(["a"] * 4)).tolist() == [[0.0, 0.0]] * 4
    groups = np.array(["a", "a", "b", "b"])
    bounds = heldout_bounds(residual, groups)
    assert bounds.tobytes() == _plain_heldout_bounds(residual, groups).tobytes()
    assert bounds[0, 1] > 0.2 and bounds[2, 0] < -0.2  # a's from b's rows, b's from a's


def test_nan_residuals_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        heldout_bounds(np.array([0.1, np.nan, 0.2]), np.array(["a", "b", "c"]))
