"""The compiled tree loop gives what LightGBM's predictor gives, to the last bit, and refuses what it cannot."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from advisor.ml.trees import Forest, TreeFormatError
from tests.support import REPO

SHIPPED = sorted((REPO / "models").glob("*/*/*.txt"))


def awkward_rows(n: int, features: int, seed: int = 0) -> np.ndarray:
    """Rows with NaN, exact and near zeros, negative and unseen category codes, and far-out values."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 3.0, size=(n, features))
    x[:, 0] = rng.integers(-2, 40, n)  # a categorical feature's codes, some negative, some never seen
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.05] = 0.0
    x[rng.random(x.shape) < 0.02] = 1e-40
    x[rng.random(x.shape) < 0.02] = -0.5
    x[rng.random(x.shape) < 0.01] = 1e12
    return x


def test_every_shipped_model_is_found() -> None:
    assert any("cost" in p.parts for p in SHIPPED) and any("dirty_rate" in p.parts for p in SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: "/".join(p.parts[-3:]))
def test_every_shipped_model_predicts_what_lightgbm_does(path: Path) -> None:
    booster, forest = lgb.Booster(model_file=str(path)), Forest.from_file(path)
    x = awkward_rows(3_000, forest.num_feature())
    assert forest.num_feature() == booster.num_feature() and forest.num_trees() == booster.num_trees()
    assert np.array_equal(forest.predict(x), booster.predict(x))
    assert np.array_equal(forest.predict(x[:5]), booster.predict(x[:5]))


def train(params: dict[str, object], label: str = "regression", rounds: int = 30) -> lgb.Booster:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 4))
    x[:, 0] = rng.integers(0, 12, 600)
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.15] = 0.0
    y = np.nan_to_num(x[:, 1]) * 2 + (np.nan_to_num(x[:, 0]) % 3) + rng.normal(size=600)
    if label == "binary":
        y = (y > np.median(y)).astype(float)
    data = lgb.Dataset(x, y, categorical_feature=[0], params={"verbose": -1, "min_data_per_group": 5,
                                                               "cat_smooth": 1})
    return lgb.train({"verbose": -1, "num_leaves": 15, "min_data_in_leaf": 5, **params}, data,
                     num_boost_round=rounds)


@pytest.mark.parametrize("params", [
    {"objective": "regression"},
    {"objective": "huber", "zero_as_missing": True},
    {"objective": "quantile", "alpha": 0.9, "use_missing": False},
    {"objective": "binary", "sigmoid": 0.7},
    {"objective": "regression", "max_depth": 1, "min_gain_to_split": 1e9},  # single-leaf trees
], ids=["nan-missing", "zero-missing", "no-missing", "binary", "stumps"])
def test_every_kind_of_split_and_output_matches(params: dict[str, object]) -> None:
    booster = train(params, "binary" if params["objective"] == "binary" else "regression")
    forest = Forest(booster.model_to_string())
    x = awkward_rows(2_000, 4, seed=3)
    x[:, 0] = np.where(np.isnan(x[:, 0]), np.nan, np.abs(x[:, 0]) % 14 - 1)
    assert np.array_equal(forest.predict(x), booster.predict(x))


@pytest.mark.parametrize(("params", "why"), [
    ({"objective": "poisson"}, "objective"),
    ({"objective": "regression", "linear_tree": True}, "linear trees"),
    ({"objective": "multiclass", "num_class": 3}, "several trees per iteration"),
])
def test_a_model_the_loop_does_not_evaluate_is_refused(params: dict[str, object], why: str) -> None:
    if params["objective"] == "multiclass":
        booster = lgb.train({"verbose": -1, **params}, lgb.Dataset(np.random.default_rng(0).normal(size=(90, 3)),
                                                                   np.arange(90) % 3), num_boost_round=2)
    else:
        booster = train(params, "binary")  # labels of 0 and 1 suit every objective here
    with pytest.raises(TreeFormatError, match=why):
        Forest(booster.model_to_string())


def test_text_that_is_not_a_model_is_refused_and_rows_must_fit() -> None:
    with pytest.raises(TreeFormatError, match="no trees"):
        Forest("objective=regression\n")
    forest = Forest(train({"objective": "regression"}).model_to_string())
    with pytest.raises(ValueError, match="rows of 4 features"):
        forest.predict(np.zeros((2, 3)))
