"""Scoring held-out predictions: errors per source, technique and target, the worst configuration, coverage per
rho band, and the recall and precision of foreseeing non-convergence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression

from advisor.ml import convergence
from advisor.ml.cost import CONVERGE_THRESHOLD
from advisor.ml.cost_features import RHO_BANDS, TARGETS, TECHNIQUES
from advisor.physics import apply_guards
from training.cost_model import NOMINAL_COVERAGE, TAIL_LEVELS, Prepared, convergence_rows
from training.splits import migration_count

MIN_GROUP_MIGRATIONS = 5  # a configuration with fewer held-out migrations is not ranked as "worst"


def heldout_bounds(residual: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(n, 2) log-ratio bounds for each row from the other groups' residuals only, their level chosen on those
    other groups too (nested): how the interval would have done on a configuration it never saw."""
    if np.isnan(residual).any():
        raise ValueError("held-out bounds need residuals without NaN")
    bounds = np.zeros((len(residual), 2))
    codes = np.unique(groups, return_inverse=True)[1].reshape(-1)
    order = np.argsort(residual, kind="stable")
    ranked, ranked_codes = residual[order], codes[order]
    for g in np.unique(codes):
        others = ranked_codes != g
        rest, rest_codes = ranked[others], ranked_codes[others]
        if len(rest) == 0:
            continue
        tail = _nested_tail(rest, rest_codes)
        bounds[codes == g] = (min(0.0, float(np.quantile(rest, tail))), max(0.0, float(np.quantile(rest, 1 - tail))))
    return bounds


def _nested_tail(rest: np.ndarray, rest_codes: np.ndarray) -> float:
    """The first of TAIL_LEVELS whose leave-one-group-out coverage over the sorted `rest` reaches the nominal
    coverage (training.cost_model._coverage_at, every group and level at once), else the last level."""
    present, size = np.unique(rest_codes, return_counts=True)
    if len(present) < 2:
        return TAIL_LEVELS[0]
    # Each group's rows, grouped and ascending, keyed "rank in rest minus rank in its group": the k-th value of rest
    # without that group sits at k plus the count of the group's keys <= k. Blocks of len(rest) + 1 keep the
    # groups apart in one sorted array of keys.
    start = np.cumsum(size) - size
    positions = np.argsort(rest_codes, kind="stable")
    keys = np.repeat(np.arange(len(present)) * (len(rest) + 1) + start, size) + positions - np.arange(len(rest))
    kept = len(rest) - size
    lo = _quantiles_without_group(rest, keys, start, kept, np.array(TAIL_LEVELS))
    hi = _quantiles_without_group(rest, keys, start, kept, np.array([1 - t for t in TAIL_LEVELS]))
    low_edge, high_edge = np.minimum(lo, 0.0) - 1e-12, np.maximum(hi, 0.0) + 1e-12  # (groups, levels)
    group_of_row = np.searchsorted(present, rest_codes)
    inside = (rest >= low_edge[group_of_row].T) & (rest <= high_edge[group_of_row].T)  # (levels, rows)
    coverage = inside.sum(axis=1) / len(rest)
    reached = np.flatnonzero(coverage >= NOMINAL_COVERAGE - 1e-12)
    return TAIL_LEVELS[int(reached[0])] if len(reached) else TAIL_LEVELS[-1]


def _quantiles_without_group(ranked: np.ndarray, keys: np.ndarray, start: np.ndarray, kept: np.ndarray,
                             q: np.ndarray) -> np.ndarray:
    """(groups, len(q)): np.quantile(ranked without each group's rows, q), linear method, computed the way numpy
    computes it (virtual index, its floor and the interpolation below) so that the figures are the same bits."""
    virtual = (kept[:, None] - 1) * q[None, :]
    below = np.floor(virtual)
    last = virtual >= (kept - 1)[:, None]
    below = np.where(last, kept[:, None] - 1, below).astype(np.intp)
    above = np.where(last, below, below + 1)
    gamma = virtual - np.where(last, -1, below)  # numpy counts the last value as index -1 here

    def value(rank: np.ndarray) -> np.ndarray:
        block = np.arange(len(start))[:, None] * (len(ranked) + 1)
        skipped = np.searchsorted(keys, block + rank, side="right") - start[:, None]
        return ranked[rank + skipped]

    a, b = value(below), value(above)
    diff = b - a
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)


def scores(y_log: np.ndarray, pred_log: np.ndarray, inside: np.ndarray | None = None) -> dict[str, float]:
    if len(y_log) == 0:
        return {"n": 0}
    actual = np.exp(y_log)
    ape = np.abs(np.exp(pred_log) - actual) / actual
    out = {"n": len(y_log), "mape": float(ape.mean()), "median_ape": float(np.median(ape)),
           "p90_ape": float(np.quantile(ape, 0.9))}
    if inside is not None:
        out["coverage"] = float(inside.mean())
    return out


def coverage_inside(data: Prepared, residual: np.ndarray, cell: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Whether each row of `mask` falls inside its cell's held-out interval (nested per cell)."""
    inside = np.zeros(len(residual), dtype=bool)
    groups = data.frame["group"].to_numpy()
    for c in np.unique(cell[mask]):
        m = mask & (cell == c)
        b = heldout_bounds(residual[m], groups[m])
        r = residual[m]
        inside[m] = (r >= b[:, 0] - 1e-12) & (r <= b[:, 1] + 1e-12)
    return inside


def error_table(data: Prepared, median: Mapping[str, np.ndarray], mask: np.ndarray,
                cell: np.ndarray | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """technique -> target -> scores over the completed rows of `mask` (with coverage when `cell` is given)."""
    technique = data.frame["technique"].to_numpy()
    out: dict[str, dict[str, dict[str, float]]] = {}
    for t in TECHNIQUES:
        m = mask & data.completed & (technique == str(t))
        out[str(t)] = {}
        for target in TARGETS:
            residual = data.y[target] - median[target]
            inside = coverage_inside(data, residual, cell, m)[m] if cell is not None else None
            out[str(t)][target] = scores(data.y[target][m], median[target][m], inside)
    return out


def worst_group(data: Prepared, median: Mapping[str, np.ndarray], mask: np.ndarray,
                target: str = "total_time_ms") -> dict[str, Any]:
    """The held-out group (`report_group`: an SNU workload; a lab pattern, memory and cap) with the largest MAPE of
    `target`, every technique together."""
    groups = data.frame["report_group"].to_numpy()
    worst: dict[str, Any] = {"group": "", "n": 0, "mape": 0.0}
    for g in np.unique(groups[mask & data.completed]):
        m = mask & data.completed & (groups == g)
        if migration_count(data.frame, m) < MIN_GROUP_MIGRATIONS:
            continue
        s = scores(data.y[target][m], median[target][m])
        if s["mape"] > worst["mape"]:
            worst = {"group": str(g), "n": s["n"], "mape": s["mape"], "median_ape": s["median_ape"]}
    return worst


def band_coverage(data: Prepared, median: Mapping[str, np.ndarray], cell: np.ndarray, source: str
                  ) -> dict[str, dict[str, dict[str, float]]]:
    """target -> rho band -> {n, coverage} over the completed rows of a source (nested held-out intervals)."""
    bands = data.features.bands()
    src = data.frame["source"].to_numpy() == source
    out: dict[str, dict[str, dict[str, float]]] = {}
    for target in TARGETS:
        residual = data.y[target] - median[target]
        inside = coverage_inside(data, residual, cell, src & data.completed)
        out[target] = {}
        for band, _ in RHO_BANDS:
            m = src & data.completed & (bands == band)
            out[target][band] = {"n": int(m.sum()), "coverage": float(inside[m].mean()) if m.any() else float("nan")}
    return out


def nonconvergence_scores(foreseen: np.ndarray, never: np.ndarray) -> dict[str, float]:
    """Recall (share of non-converging migrations foreseen) and false alarms (share of the converging ones
    flagged), with precision."""
    tp = int((foreseen & never).sum())
    fp = int((foreseen & ~never).sum())
    fn = int((~foreseen & never).sum())
    converging = int((~never).sum())
    return {"non_converging": int(never.sum()), "converging": converging, "foreseen": tp,
            "recall": tp / (tp + fn) if tp + fn else float("nan"),
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "false_alarm_rate": fp / converging if converging else float("nan")}


def convergence_table(data: Prepared, probability: Mapping[str, np.ndarray], mask: np.ndarray
                      ) -> dict[str, dict[str, dict[str, float]]]:
    """method -> technique (and "all") -> non-convergence scores over the pre-copy rows of `mask` with a deadline;
    a method foresees non-convergence where its probability is below 0.5."""
    rows = mask & convergence_rows(data)
    never = ~data.completed
    technique = data.frame["technique"].to_numpy()
    out: dict[str, dict[str, dict[str, float]]] = {}
    for method, p in probability.items():
        out[method] = {"all": nonconvergence_scores((p <= CONVERGE_THRESHOLD)[rows], never[rows])}
        for t in TECHNIQUES[:-1]:
            m = rows & (technique == str(t))
            out[method][str(t)] = nonconvergence_scores((p <= CONVERGE_THRESHOLD)[m], never[m])
    return out


def guard_verdicts(data: Prepared) -> np.ndarray:
    """Every physics guard's verdict per row, as serving applies them (advisor.ml.convergence.guards)."""
    return convergence.guards(data.features, data.deadline_ms)


def guard_probability(data: Prepared) -> np.ndarray:
    """The physics guards alone as a probability: 0 where one rules convergence out, else 1."""
    return apply_guards(np.ones(len(data.frame)), guard_verdicts(data))


def analytic_probability(data: Prepared) -> np.ndarray:
    """The analytic model alone: converges at the row's allowed downtime (within 30 rounds), 1 or 0."""
    return np.where(data.features.analytic.converges, 1.0, 0.0)


def loglinear_oof(data: Prepared, fold: np.ndarray) -> dict[str, np.ndarray]:
    """The log-linear baseline per technique (log memory, log1p dirty rate, log bandwidth, log cap), same folds."""
    f = data.frame
    x = np.column_stack([data.features.column("log_memory_mib"), data.features.column("log1p_dirty_rate_mib_s"),
                         data.features.column("log_bandwidth_mib_s"), data.features.column("log_max_bandwidth_mib_s")])
    technique = f["technique"].to_numpy()
    out = {t: np.zeros(len(f)) for t in TARGETS}
    for k in np.unique(fold):
        for tech in np.unique(technique):
            tr = (fold != k) & (technique == tech) & data.completed
            te = (fold == k) & (technique == tech)
            if te.any() and tr.sum() > 5:
                for target in TARGETS:
                    out[target][te] = LinearRegression().fit(x[tr], data.y[target][tr]).predict(x[te])
    return out
