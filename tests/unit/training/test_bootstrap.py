"""The paired bootstrap's figures, computed for every resample at once, equal those of the rows repeated."""

from __future__ import annotations

import numpy as np

from training.bootstrap import Resamples, ratio, weighted_median


def test_resampled_figures_equal_those_of_the_rows_repeated() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat([f"g{k}" for k in range(12)], 3)
    values = rng.random(len(groups))
    draws = Resamples.of_groups(groups, 50, seed=1)
    assert draws.weights.shape == (50, len(groups))
    assert (draws.weights.sum(axis=1) == len(groups)).all()  # 12 groups drawn of 3 rows each
    # a group's rows are drawn together
    assert (draws.weights.reshape(50, 12, 3) == draws.weights.reshape(50, 12, 3)[:, :, :1]).all()
    means, medians = ratio(values, np.ones(len(values)), draws.weights), weighted_median(values, draws.weights)
    for b in range(50):
        repeated = np.repeat(values, draws.weights[b].astype(int))
        assert np.isclose(means[b], repeated.mean())
        assert medians[b] == np.sort(repeated)[(len(repeated) - 1) // 2]  # the lower median


def test_the_same_seed_draws_the_same_resamples_and_nothing_drawn_is_unknown() -> None:
    groups = np.array(["a", "a", "b", "c"])
    assert (Resamples.of_groups(groups, 20, 5).weights == Resamples.of_groups(groups, 20, 5).weights).all()
    nothing = np.zeros((1, 4))
    assert np.isnan(ratio(np.ones(4), np.ones(4), nothing)).all()
    assert np.isnan(weighted_median(np.arange(4.0), nothing)).all()
