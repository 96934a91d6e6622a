"""Fitting, cross-validating and scoring the learned cost models and their two baselines.

Design (figures behind each choice are in docs/cost-model.md):
- One LightGBM model per target (total time, downtime, data) with the technique as a categorical feature, not one
  per technique: the physics (dirty rate over bandwidth, rounds) is shared by all pre-copy variants, the joint model
  scored the same as per-technique models in leave-one-workload-out trials, and 3 boosters are far smaller than 15.
- Time and data are learned relative to one pass over memory, monotone-constrained. LightGBM refuses monotone
  constraints with the quantile, L1 and MAPE objectives, so the point estimate is a Huber regression in log space
  with a small delta (close to L1) and sample weights actual/offset^-1 = 1/ratio: the weighted median of the
  log ratio with weights 1/ratio is the estimate that minimises the mean absolute percentage error (MAPE), since
  a row's APE is |exp(prediction - log ratio) - 1|. Downtime is learned as the analytic model's error with a median
  (quantile 0.5) objective.
- Intervals: split-conformal in log space, per technique and target, from leave-one-workload-out residuals, so
  they state how wrong the model was on workloads it had never seen. Residuals of a new workload spread wider
  than the pooled residuals of the others, so the quantile level is widened until leave-one-workload-out coverage
  of the pooled runs reaches the nominal 80% (chosen on the training workloads only; in the evaluation, nested
  inside each fold). A constant log offset keeps p10 <= p50 <= p90 and keeps the bounds monotone like the median.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from advisor.domain.model import Technique
from advisor.features.inputs import dirty_pages_to_mib_s, mbit_to_mib_s
from advisor.ml.cost_features import (
    TARGETS,
    TECHNIQUES,
    FeatureSet,
    analytic_arrays,
    build_features,
    monotone_constraints,
    technique_codes,
)

QUANTILES = (0.1, 0.9)  # the interval's nominal bounds; the median is the model itself
NOMINAL_COVERAGE = QUANTILES[1] - QUANTILES[0]
# Tail probabilities tried for each bound, narrowest first, until held-out workloads reach the nominal coverage.
TAIL_LEVELS = (0.10, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04, 0.035, 0.03, 0.025, 0.02, 0.015, 0.01)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 20240517
    num_leaves: int = 15
    num_trees: int = 300  # time and data
    downtime_trees: int = 200
    learning_rate: float = 0.05
    min_data_in_leaf: int = 30
    lambda_l2: float = 1.0
    huber_delta: float = 0.05
    mape_weights: bool = True  # weight time/data rows by 1/ratio (the MAPE-optimal point estimate)
    num_threads: int = 2

    def trees(self, target: str) -> int:
        return self.downtime_trees if target == "downtime_ms" else self.num_trees


def lgb_params(target: str, cfg: TrainConfig) -> dict[str, Any]:
    params: dict[str, Any] = {
        "num_leaves": cfg.num_leaves,
        "learning_rate": cfg.learning_rate,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "lambda_l2": cfg.lambda_l2,
        "seed": cfg.seed,
        "num_threads": cfg.num_threads,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }
    if target == "downtime_ms":
        params.update(objective="quantile", alpha=0.5)
    else:
        params.update(
            objective="huber", alpha=cfg.huber_delta, monotone_constraints=monotone_constraints(target),
            monotone_constraints_method="basic",
        )
    return params


def log_targets(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {t: np.log(frame[t].to_numpy(dtype=np.float64)) for t in TARGETS}


def sample_weights(z: np.ndarray, target: str, cfg: TrainConfig) -> np.ndarray | None:
    """1/ratio for the time and data models (z = log(actual / offset)), normalised to mean 1; None otherwise."""
    if target == "downtime_ms" or not cfg.mape_weights:
        return None
    w = np.exp(-z)
    return np.asarray(w / w.mean(), dtype=np.float64)


def fit_target(fs: FeatureSet, y_log: np.ndarray, target: str, cfg: TrainConfig) -> lgb.Booster:
    z = y_log - fs.offset(target)
    data = lgb.Dataset(
        fs.columns(target), z, weight=sample_weights(z, target, cfg), categorical_feature=[0],
        free_raw_data=True, params={"verbose": -1},
    )
    return lgb.train(lgb_params(target, cfg), data, num_boost_round=cfg.trees(target))


def predict_target(booster: lgb.Booster, fs: FeatureSet, target: str) -> np.ndarray:
    """Median prediction in log space."""
    return np.asarray(booster.predict(fs.columns(target)), dtype=np.float64) + fs.offset(target)


# ---- baselines -------------------------------------------------------------------------------------------------


def analytic_log_predictions(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The analytic model's point predictions and its sensitivity band (low, high), as in predict_analytic."""
    code = technique_codes(frame["technique"])
    mem = frame["vm_memory_mib"].to_numpy(dtype=np.float64)
    dirty = dirty_pages_to_mib_s(frame["dirty_rate_pages_per_s"].to_numpy(dtype=np.float64))
    bw = mbit_to_mib_s(frame["available_bandwidth_mbps"].to_numpy(dtype=np.float64))
    cap = frame["max_bandwidth_mib_s"].to_numpy(dtype=np.float64)
    mid = analytic_arrays(code, mem, dirty, bw, cap)
    easy = analytic_arrays(code, mem, dirty * 0.8, bw, cap)
    hard = analytic_arrays(code, mem, dirty * 1.25, bw * 0.9, cap * 0.9)
    point: dict[str, np.ndarray] = {}
    band: dict[str, np.ndarray] = {}
    for t in TARGETS:
        stack = np.column_stack([getattr(easy, t), getattr(mid, t), getattr(hard, t)])
        point[t] = np.log(getattr(mid, t))
        band[t] = np.log(np.column_stack([stack.min(axis=1), stack.max(axis=1)]))
    return point, band


def loglinear_design(frame: pd.DataFrame) -> np.ndarray:
    """The log-linear baseline's inputs: log of each production input (dirty rate as log1p, it can be 0)."""
    return np.column_stack([
        np.log(frame["vm_memory_mib"].to_numpy(dtype=np.float64)),
        np.log1p(frame["dirty_rate_pages_per_s"].to_numpy(dtype=np.float64)),
        np.log(frame["available_bandwidth_mbps"].to_numpy(dtype=np.float64)),
        np.log(frame["max_bandwidth_mib_s"].to_numpy(dtype=np.float64)),
    ])


# ---- cross-validation ------------------------------------------------------------------------------------------


@dataclass
class OutOfFold:
    """Leave-one-workload-out predictions (log space) for every row, per method and target."""

    median: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # method -> target -> (n,)
    interval: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # method -> target -> (n, 2)


def conformal_offsets(
    residual: np.ndarray, technique: np.ndarray, tails: Mapping[str, float] | None = None
) -> dict[str, tuple[float, float]]:
    """Per technique, the tail and 1 - tail quantiles of log(actual / predicted) (tail 0.1 unless given)."""
    out = {}
    for t in TECHNIQUES:
        r = residual[technique == str(t)]
        if len(r) == 0:
            out[str(t)] = (0.0, 0.0)
            continue
        tail = QUANTILES[0] if tails is None else tails[str(t)]
        out[str(t)] = (float(np.quantile(r, tail)), float(np.quantile(r, 1.0 - tail)))
    return out


def _inside(residual: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.asarray((residual >= min(lo, 0.0) - 1e-12) & (residual <= max(hi, 0.0) + 1e-12))


def calibrate_tails(residual: np.ndarray, technique: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Per technique, the narrowest tail level whose leave-one-group-out coverage reaches the nominal 80%.

    For each candidate level, every group's runs are checked against the interval built from the other groups'
    residuals only; the level is accepted when the share of all runs inside reaches NOMINAL_COVERAGE.
    """
    out: dict[str, float] = {}
    for t in TECHNIQUES:
        m = technique == str(t)
        r, g = residual[m], groups[m]
        chosen = TAIL_LEVELS[-1]
        for tail in TAIL_LEVELS:
            inside = 0
            for h in np.unique(g):
                rest = r[g != h]
                if len(rest) == 0:
                    continue
                inside += int(_inside(r[g == h], float(np.quantile(rest, tail)),
                                      float(np.quantile(rest, 1.0 - tail))).sum())
            if len(r) == 0 or inside / len(r) >= NOMINAL_COVERAGE - 1e-12:
                chosen = tail
                break
        out[str(t)] = chosen
    return out


def _leave_one_group_conformal(
    residual: np.ndarray, median: np.ndarray, technique: np.ndarray, groups: np.ndarray, calibrate: bool = True
) -> np.ndarray:
    """Interval for each held-out group from the other groups' residuals only (no peeking at its own): the tail
    level is calibrated (calibrate_tails) on the other groups, then their quantiles at that level are applied."""
    bounds = np.zeros((len(median), 2))
    for g in np.unique(groups):
        held = groups == g
        tails = calibrate_tails(residual[~held], technique[~held], groups[~held]) if calibrate else None
        offsets = conformal_offsets(residual[~held], technique[~held], tails)
        lo = np.array([offsets[t][0] for t in technique[held]])
        hi = np.array([offsets[t][1] for t in technique[held]])
        bounds[held, 0] = median[held] + np.minimum(lo, 0.0)
        bounds[held, 1] = median[held] + np.maximum(hi, 0.0)
    return bounds


def cross_validate(
    frame: pd.DataFrame, cfg: TrainConfig, log: Callable[[str], None] = print
) -> OutOfFold:
    """Leave one workload out: every prediction is made by models that never saw that workload."""
    groups = frame["workload"].to_numpy()
    technique = frame["technique"].to_numpy()
    fs_all = build_features(frame)
    y = log_targets(frame)
    loglin_x = loglinear_design(frame)
    oof = OutOfFold()
    learned = {t: np.zeros(len(frame)) for t in TARGETS}
    loglin = {t: np.zeros(len(frame)) for t in TARGETS}
    for k, g in enumerate(np.unique(groups), start=1):
        test = groups == g
        train = ~test
        fs_train = fs_all.subset(train)
        fs_test = fs_all.subset(test)
        for target in TARGETS:
            booster = fit_target(fs_train, y[target][train], target, cfg)
            learned[target][test] = predict_target(booster, fs_test, target)
            for t in TECHNIQUES:
                tr = train & (technique == str(t))
                te = test & (technique == str(t))
                if te.any():
                    model = LinearRegression().fit(loglin_x[tr], y[target][tr])
                    loglin[target][te] = model.predict(loglin_x[te])
        log(f"  fold {k}: held out workload {g!r} ({int(test.sum())} runs)")
    analytic_point, analytic_band = analytic_log_predictions(frame)
    oof.median = {"learned": learned, "loglinear": loglin, "analytic": analytic_point}
    oof.interval = {
        "learned": {t: _leave_one_group_conformal(y[t] - learned[t], learned[t], technique, groups) for t in TARGETS},
        "loglinear": {t: _leave_one_group_conformal(y[t] - loglin[t], loglin[t], technique, groups) for t in TARGETS},
        "analytic": analytic_band,
    }
    return oof


# ---- metrics ---------------------------------------------------------------------------------------------------


def scores(y_log: np.ndarray, pred_log: np.ndarray, interval_log: np.ndarray) -> dict[str, float]:
    actual = np.exp(y_log)
    ape = np.abs(np.exp(pred_log) - actual) / actual
    inside = (y_log >= interval_log[:, 0] - 1e-12) & (y_log <= interval_log[:, 1] + 1e-12)
    return {
        "n": len(y_log),
        "mape": float(ape.mean()),
        "median_ape": float(np.median(ape)),
        "p90_ape": float(np.quantile(ape, 0.9)),
        "coverage": float(inside.mean()),
        "mean_interval_width_ratio": float(np.mean(np.exp(interval_log[:, 1] - interval_log[:, 0]))),
    }


def metric_table(frame: pd.DataFrame, oof: OutOfFold) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """method -> technique -> target -> scores, over all out-of-fold rows."""
    y = log_targets(frame)
    technique = frame["technique"].to_numpy()
    table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for method in oof.median:
        table[method] = {}
        for t in TECHNIQUES:
            m = technique == str(t)
            table[method][str(t)] = {
                target: scores(y[target][m], oof.median[method][target][m], oof.interval[method][target][m])
                for target in TARGETS
            }
    return table


def per_workload_table(frame: pd.DataFrame, oof: OutOfFold, method: str = "learned") -> dict[str, dict[str, float]]:
    """Pre-copy total time MAPE per held-out workload (where the error comes from)."""
    y = log_targets(frame)["total_time_ms"]
    pre = frame["technique"].to_numpy() != str(Technique.POSTCOPY)
    out = {}
    for g in sorted(frame["workload"].unique()):
        m = pre & (frame["workload"].to_numpy() == g)
        s = scores(y[m], oof.median[method]["total_time_ms"][m], oof.interval[method]["total_time_ms"][m])
        out[str(g)] = {"n": s["n"], "mape": s["mape"], "median_ape": s["median_ape"], "coverage": s["coverage"]}
    return out


def config_dict(cfg: TrainConfig) -> Mapping[str, Any]:
    return asdict(cfg)


__all__ = ["OutOfFold", "TrainConfig", "cross_validate", "fit_target", "metric_table"]
