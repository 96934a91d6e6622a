"""Fitting and cross-validating the learned cost models (time, downtime, data) and the convergence classifier.

Design (figures behind each choice are in docs/cost-model.md):
- Per target, a LightGBM base model learned from the SNU profile's migrations (technique a categorical feature:
  the physics of rho, the working set over the budget and rounds is shared by every technique), and for each
  other host profile a small correction model of the base's error on that profile's hosts (`TargetModel`). The
  SNU figures stay exactly those of the SNU-only model, and a few hundred lab migrations teach what differs on
  the lab's hosts better than when they are mixed into 22,000 SNU runs with a weight (`--joint`, kept to compare).
- Time and data are learned relative to one pass over the memory copied, monotone-constrained. LightGBM refuses
  monotone constraints with the quantile, L1 and MAPE objectives, so the point estimate is a Huber regression in
  log space with a small delta and row weights 1/ratio: the weighted median that minimises the mean APE.
  Downtime is learned as the analytic model's error with a median objective. Only migrations that completed
  teach time, downtime and data (an aborted one's figures are the deadline's, not the migration's).
- Convergence (pre-copy variants of the lab, completed vs aborted at the deadline) is a monotone LightGBM
  classifier on dimensionless features (advisor/ml/convergence.py), its probabilities calibrated by isotonic
  regression on held-out groups; the physics guard overrides it where pre-copy cannot converge.
- Cross-validation holds out whole configurations: each SNU workload in turn, and the lab's configurations in
  GROUP_FOLDS folds fixed by a hash of each configuration's name (training/splits.py: new data never moves a
  configuration to another fold), the other source always in training. Every row of a held-out group is
  predicted by models that never saw its configuration. The locked test part is not here at all.
- Every "enough to learn from" threshold counts migrations, not rows (a lab run and its variants are one).
- Intervals: split-conformal in log space per (host profile, technique, rho band) cell, from those held-out
  residuals, the quantile level widened until held-out coverage in the cell reaches 80% (cells with fewer than
  MIN_CELL migrations borrow the residuals of their profile and technique, then of their technique).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from advisor.domain.model import Technique
from advisor.features.inputs import DEFAULT_PROFILE, PROFILES, InputTable
from advisor.ml import convergence
from advisor.ml.cost import interval_key
from advisor.ml.cost_features import (
    PROFILE_CODE,
    RHO_BANDS,
    TARGET_FEATURES,
    TARGETS,
    TECHNIQUES,
    FeatureSet,
    build_cost_features,
    categorical_positions,
    monotone_constraints,
)
from training.cost_data import typical_first_pass
from training.splits import FOLDS, fold_labels, migration_count, migration_ids

QUANTILES = (0.1, 0.9)
NOMINAL_COVERAGE = QUANTILES[1] - QUANTILES[0]
TAIL_LEVELS = (0.10, 0.09, 0.08, 0.07, 0.06, 0.05, 0.04, 0.035, 0.03, 0.025, 0.02, 0.015, 0.01, 0.005, 0.0)
GROUP_FOLDS = FOLDS
MIN_CELL = 30  # migrations
# The 1/ratio weights of a row are bounded (a factor e either way): a correction's residuals, of a base that saw
# none of its hosts, reach factors of 10, and unbounded weights would leave a few rows to decide it.
MAX_LOG_RATIO_WEIGHT = 1.0
MIN_CORRECTION_MIGRATIONS = 40  # fewer completed migrations of a profile teach no correction
MIN_CONVERGENCE_MIGRATIONS = 20


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 20240517
    num_leaves: int = 15
    num_trees: int = 300  # time and data
    downtime_trees: int = 200
    convergence_trees: int = 200
    learning_rate: float = 0.05
    min_data_in_leaf: int = 20
    lambda_l2: float = 1.0
    huber_delta: float = 0.05
    mape_weights: bool = True  # weight time/data rows by 1/ratio (the MAPE-optimal point estimate)
    lab_weight: float = 8.0  # a lab migration weighs this many SNU runs (in the convergence classifier; and
    # in the cost models when they are trained jointly, corrections=False)
    corrections: bool = True  # cost models on the SNU profile, then a correction per other profile (see below)
    # The techniques a correction learns from and applies to (every one: the lab's memory in use, RAM less
    # MemAvailable, reads 9% below what QEMU sends, for every technique alike; a correction per target learns it).
    correction_techniques: tuple[str, ...] = tuple(str(t) for t in TECHNIQUES)
    correction_trees: int = 100
    # Every tree of a correction first splits post-copy from the pre-copy variants (a split forced on the technique):
    # post-copy sends each page once, whatever the guest dirties, so what pre-copy's rounds teach a shared tree (a
    # long analytic time: more sent, a longer pause) must not hold for it. 9 leaves: 4 splits a side, as 5 before.
    postcopy_apart: bool = True
    correction_leaves: int = 9
    num_threads: int = 2

    def trees(self, target: str) -> int:
        return self.downtime_trees if target == "downtime_ms" else self.num_trees


def _base_params(cfg: TrainConfig) -> dict[str, Any]:
    return {"num_leaves": cfg.num_leaves, "learning_rate": cfg.learning_rate, "min_data_in_leaf": cfg.min_data_in_leaf,
            "lambda_l2": cfg.lambda_l2, "seed": cfg.seed, "num_threads": cfg.num_threads, "deterministic": True,
            "force_row_wise": True, "verbose": -1, "min_data_per_group": 10, "cat_smooth": 1.0}


def lgb_params(target: str, cfg: TrainConfig) -> dict[str, Any]:
    params = _base_params(cfg)
    if target == "downtime_ms":
        params.update(objective="quantile", alpha=0.5)
    else:
        params.update(objective="huber", alpha=cfg.huber_delta, monotone_constraints=monotone_constraints(target),
                      monotone_constraints_method="basic")
    return params


def correction_params(target: str, cfg: TrainConfig) -> dict[str, Any]:
    """A correction is learned from a few hundred migrations: small trees, more regularisation, starting from no
    correction at all (not from the mean), and a Huber threshold wide enough that its steps are not capped at a
    few percent (the base's 0.05 would need thousands of trees to move a factor of 2)."""
    params = lgb_params(target, cfg)
    params.update(num_leaves=cfg.correction_leaves, min_data_in_leaf=10, lambda_l2=5.0, min_data_per_group=5,
                  learning_rate=0.1, boost_from_average=False)
    if target != "downtime_ms":
        params.update(alpha=1.0)
    return params


def convergence_params(cfg: TrainConfig) -> dict[str, Any]:
    params = _base_params(cfg)
    params.update(objective="binary", monotone_constraints=convergence.monotone_constraints(),
                  monotone_constraints_method="basic", min_data_in_leaf=10)
    return params


@dataclass(frozen=True)
class Prepared:
    """A table of migrations made ready once: features, log targets, weights, labels."""

    frame: pd.DataFrame
    features: FeatureSet
    y: Mapping[str, np.ndarray]
    weight: np.ndarray  # per row: the variant's share x the source's weight
    completed: np.ndarray
    deadline_ms: np.ndarray

    def subset(self, mask: np.ndarray) -> Prepared:
        return Prepared(self.frame[mask].reset_index(drop=True), self.features.subset(mask),
                        {t: v[mask] for t, v in self.y.items()}, self.weight[mask], self.completed[mask],
                        self.deadline_ms[mask])


def prepare(frame: pd.DataFrame, cfg: TrainConfig) -> Prepared:
    table = InputTable.from_frame(frame)
    fs = build_cost_features(table)
    y = {t: np.log(np.maximum(frame[t].to_numpy(dtype=np.float64), 1e-3)) for t in TARGETS}
    share = frame["weight"].to_numpy(dtype=np.float64) if "weight" in frame else np.ones(len(frame))
    weight = share * np.where(frame["source"].to_numpy() == "lab", cfg.lab_weight, 1.0)
    return Prepared(frame, fs, y, weight, frame["outcome"].to_numpy() == "completed", table.deadline_ms)


@dataclass(frozen=True)
class TargetModel:
    """One target's models: the base, and a correction per host profile other than the base's, learned on that
    profile's residuals after the base (added in log space, so a factor)."""

    base: lgb.Booster
    corrections: Mapping[str, lgb.Booster] = field(default_factory=dict)
    techniques: tuple[str, ...] = ()  # those the corrections apply to
    blind_base: bool = False  # the base reads the BASE_BLIND features as an SNU run has them


def _profile_rows(fs: FeatureSet, profile: str, techniques: tuple[str, ...] | None = None) -> np.ndarray:
    rows = fs.column("profile").astype(np.int64) == PROFILE_CODE[profile]
    if techniques is not None:
        rows &= np.isin(fs.column("technique").astype(np.int64), [TECHNIQUES.index(Technique(t)) for t in techniques])
    return np.asarray(rows)


def _postcopy_split(fs: FeatureSet, target: str) -> Path | None:
    """The file LightGBM reads a forced split from: the technique's code (a number) at the highest pre-copy
    variant's among the rows, which LightGBM puts at the upper edge of that code's bin, below post-copy's (the
    last); None without both sides (LightGBM crashes on a forced split with one side empty). Its name says its
    content, the same on every run (and so are the models written); written whole, then renamed."""
    post = fs.technique_code == TECHNIQUES.index(Technique.POSTCOPY)
    if post.all() or not post.any():
        return None
    feature, threshold = TARGET_FEATURES[target].index("technique"), int(fs.technique_code[~post].max())
    staged = Path(tempfile.gettempdir()) / f"advisor-postcopy-apart-{feature}-{threshold}.{os.getpid()}"
    staged.write_text(json.dumps({"feature": feature, "threshold": threshold}))
    return staged.replace(staged.with_suffix(".json"))


def _fit(fs: FeatureSet, z: np.ndarray, w: np.ndarray, target: str, params: dict[str, Any], trees: int,
         cfg: TrainConfig, max_log_weight: float = np.inf, base: bool = False, apart: bool = False) -> lgb.Booster:
    if target != "downtime_ms" and cfg.mape_weights:
        w = w * np.exp(-np.clip(z, -max_log_weight, max_log_weight))
    x = fs.base_columns(target) if base else fs.columns(target)
    categorical = categorical_positions(target)
    if apart and (split := _postcopy_split(fs, target)):
        params = dict(params, forcedsplits_filename=str(split))
        categorical.remove(TARGET_FEATURES[target].index("technique"))  # LightGBM forces no split on a category
    dataset = lgb.Dataset(x, z, weight=w / w.mean(), categorical_feature=categorical,
                          free_raw_data=True, params={"verbose": -1})
    return lgb.train(params, dataset, num_boost_round=trees)


def fit_target(data: Prepared, target: str, cfg: TrainConfig) -> TargetModel:
    """Fit on the completed migrations of `data`.

    With `cfg.corrections` the base learns from the SNU profile's migrations alone (22,000 of them: what served
    well keeps serving exactly as well), and each other profile with enough migrations gets a small correction
    model of the base's error on its hosts. Trained jointly instead, a few hundred lab migrations, weighted up,
    pull the SNU predictions (post-copy downtime most) without being learned as well as a correction learns them."""
    keep = data.completed
    fs = data.features.subset(keep)
    z = data.y[target][keep] - fs.offset(target)
    w = data.weight[keep]
    if not cfg.corrections:
        return TargetModel(_fit(fs, z, w, target, lgb_params(target, cfg), cfg.trees(target), cfg))
    ids = migration_ids(data.frame)[keep]
    nonzero = data.frame.reindex(columns=["nonzero_mib"])["nonzero_mib"].to_numpy(dtype=np.float64)[keep]
    resident = data.frame.reindex(columns=["resident_memory_mib"])["resident_memory_mib"].notna().to_numpy()[keep]
    base_rows = _profile_rows(fs, DEFAULT_PROFILE)
    base = _fit(fs.subset(base_rows), z[base_rows], w[base_rows], target, lgb_params(target, cfg),
                cfg.trees(target), cfg, base=True)
    corrections = {}
    for profile in PROFILES:
        rows = _profile_rows(fs, profile, cfg.correction_techniques)
        if profile == DEFAULT_PROFILE or len(np.unique(ids[rows])) < MIN_CORRECTION_MIGRATIONS:
            continue
        part = fs.subset(rows)
        residual = z[rows] - np.asarray(base.predict(part.base_columns(target)), dtype=np.float64)
        if target != "downtime_ms":  # the first pass is part of time and data, not of the last round's pause
            residual += typical_first_pass(part, nonzero[rows], resident[rows])
        corrections[profile] = _fit(part, residual, w[rows], target, correction_params(target, cfg),
                                    cfg.correction_trees, cfg, MAX_LOG_RATIO_WEIGHT, apart=cfg.postcopy_apart)
    return TargetModel(base, corrections, cfg.correction_techniques, blind_base=True)


def predict_target(model: TargetModel, fs: FeatureSet, target: str) -> np.ndarray:
    """Median prediction in log space."""
    x = fs.columns(target)
    z = np.asarray(model.base.predict(fs.base_columns(target) if model.blind_base else x), dtype=np.float64)
    for profile, correction in model.corrections.items():
        rows = _profile_rows(fs, profile, model.techniques)
        if rows.any():
            z[rows] += np.asarray(correction.predict(x[rows]), dtype=np.float64)
    return z + fs.offset(target)


def convergence_rows(data: Prepared) -> np.ndarray:
    """The rows that teach convergence: pre-copy variants measured against a deadline (the lab's)."""
    code = data.features.column("technique").astype(np.int64)
    return np.asarray((code != TECHNIQUES.index(Technique.POSTCOPY)) & (data.deadline_ms > 0))


def convergence_teachable(data: Prepared) -> bool:
    """Enough migrations against a deadline, converged and not, to learn convergence from (none in the SNU data)."""
    rows = convergence_rows(data)
    return migration_count(data.frame, rows) >= MIN_CONVERGENCE_MIGRATIONS and len(np.unique(data.completed[rows])) > 1


def fit_convergence(data: Prepared, cfg: TrainConfig) -> lgb.Booster | None:
    if not convergence_teachable(data):
        return None
    rows = convergence_rows(data)
    fs = data.features.subset(rows)
    x = convergence.convergence_matrix(fs, data.deadline_ms[rows])
    dataset = lgb.Dataset(x, data.completed[rows].astype(np.float64), weight=data.weight[rows],
                          categorical_feature=[0, 1], free_raw_data=True, params={"verbose": -1})
    return lgb.train(convergence_params(cfg), dataset, num_boost_round=cfg.convergence_trees)


def raw_probability(booster: lgb.Booster | None, data: Prepared) -> np.ndarray:
    if booster is None:
        return np.where(data.features.analytic.converges, 1.0, 0.0)
    x = convergence.convergence_matrix(data.features, data.deadline_ms)
    return np.asarray(booster.predict(x), dtype=np.float64)


def isotonic(raw: np.ndarray, label: np.ndarray, weight: np.ndarray) -> convergence.Calibration:
    """Calibration of held-out raw probabilities (a monotone map, stored as its breakpoints)."""
    if len(raw) < 20 or len(np.unique(label)) < 2:
        return convergence.Calibration((), ())
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, label.astype(float), weight)
    return convergence.Calibration(tuple(float(v) for v in model.X_thresholds_),
                                   tuple(float(v) for v in model.y_thresholds_))


# ---- cross-validation ------------------------------------------------------------------------------------------


def folds(frame: pd.DataFrame, k: int = GROUP_FOLDS) -> np.ndarray:
    """Fold of every row: one per SNU workload, every other configuration one of k by its name's hash."""
    return fold_labels(frame["group"], k)


@dataclass
class OutOfFold:
    """Held-out predictions (log space) of every row: the learned models, and the baselines."""

    median: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # method -> target -> (n,)
    raw_converge: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fold: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))


def cross_validate(data: Prepared, cfg: TrainConfig, log: Callable[[str], None] = print,
                   train_on: Callable[[Prepared], np.ndarray] | None = None, method: str = "learned") -> OutOfFold:
    """Hold out each fold in turn. `train_on` (default: every row) restricts what the models may learn from,
    e.g. the SNU rows only, to evaluate a SNU-only model the same way."""
    fold = folds(data.frame)
    learned = {t: np.zeros(len(fold)) for t in TARGETS}
    raw = np.zeros(len(fold))
    allowed = np.ones(len(fold), dtype=bool) if train_on is None else train_on(data)
    for k in np.unique(fold):
        test = fold == k
        train = data.subset(~test & allowed)
        held = data.subset(test)
        for target in TARGETS:
            learned[target][test] = predict_target(fit_target(train, target, cfg), held.features, target)
        raw[test] = raw_probability(fit_convergence(train, cfg), held)
        names = ", ".join(sorted(set(held.frame["group"])))
        log(f"  {method} fold {k}: held out {names[:90]} ({int(test.sum())} rows)")
    return OutOfFold({method: learned}, raw, fold)


# ---- intervals -------------------------------------------------------------------------------------------------


def cells(data: Prepared) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's interval cell at three levels: (profile|technique|band), (profile|technique), (technique)."""
    profile = data.frame["source"].where(data.frame["source"].isin(PROFILES), PROFILES[0]).to_numpy()
    technique = data.frame["technique"].to_numpy()
    band = data.features.bands()
    fine = np.array([interval_key(p, t, b) for p, t, b in zip(profile, technique, band, strict=True)])
    mid = np.array([f"{p}|{t}" for p, t in zip(profile, technique, strict=True)])
    return fine, mid, technique


def _coverage_at(residual: np.ndarray, groups: np.ndarray, tail: float) -> float:
    inside = 0
    for g in np.unique(groups):
        rest = residual[groups != g]
        if len(rest) == 0:
            continue
        lo, hi = np.quantile(rest, tail), np.quantile(rest, 1 - tail)
        r = residual[groups == g]
        inside += int(((r >= min(lo, 0) - 1e-12) & (r <= max(hi, 0) + 1e-12)).sum())
    return inside / max(len(residual), 1)


def calibrated_offsets(residual: np.ndarray, groups: np.ndarray) -> tuple[float, float, float]:
    """(low, high, tail): the narrowest tail level whose leave-one-group-out coverage reaches 80%."""
    tail = TAIL_LEVELS[-1]
    for level in TAIL_LEVELS:
        if _coverage_at(residual, groups, level) >= NOMINAL_COVERAGE - 1e-12:
            tail = level
            break
    return float(np.quantile(residual, tail)), float(np.quantile(residual, 1 - tail)), tail


def interval_table(data: Prepared, residual: Mapping[str, np.ndarray], usable: np.ndarray
                   ) -> tuple[dict[str, dict[str, tuple[float, float]]], dict[str, dict[str, Any]]]:
    """Offsets for every interval key of every target, and how each was made (rows, level, borrowed from)."""
    fine, mid, coarse = cells(data)
    groups = data.frame["group"].to_numpy()
    offsets: dict[str, dict[str, tuple[float, float]]] = {}
    how: dict[str, dict[str, Any]] = {}
    for target in TARGETS:
        offsets[target], how[target] = {}, {}
        for p in PROFILES:
            for t in TECHNIQUES:
                for b, _ in RHO_BANDS:
                    key = interval_key(p, str(t), b)
                    for level, labels, name in ((0, fine, key), (1, mid, f"{p}|{t}"), (2, coarse, str(t))):
                        m = usable & (labels == name)
                        if migration_count(data.frame, m) >= MIN_CELL or level == 2:
                            break
                    if m.sum() == 0:
                        offsets[target][key] = (0.0, 0.0)
                        how[target][key] = {"n": 0, "from": "none"}
                        continue
                    lo, hi, tail = calibrated_offsets(residual[target][m], groups[m])
                    offsets[target][key] = (lo, hi)
                    how[target][key] = {"n": int(m.sum()), "from": name, "tail": tail}
                _monotone_across_bands(offsets[target], p, str(t))
    return offsets, how


def _monotone_across_bands(offsets: dict[str, tuple[float, float]], profile: str, technique: str) -> None:
    """Neither bound may fall as rho rises into the next band: each band's offsets are at least the previous
    band's. With a median that is monotone in the dirty rate, so are the bounds (a riskier band may only widen
    the interval upwards)."""
    lo_floor = hi_floor = -np.inf
    for band, _ in RHO_BANDS:
        key = interval_key(profile, technique, band)
        lo, hi = offsets[key]
        lo_floor, hi_floor = max(lo_floor, lo), max(hi_floor, hi)
        offsets[key] = (min(lo_floor, 0.0), max(hi_floor, 0.0))
