"""Scoring held-out predictions: errors per source, technique and target, the worst configuration, coverage per
rho band, and the recall and precision of foreseeing non-convergence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from advisor.ml import convergence
from advisor.ml.cost import CONVERGE_THRESHOLD
from advisor.ml.cost_features import RHO_BANDS, TARGETS, TECHNIQUES
from advisor.physics import apply_guards
from training.cost_model import NOMINAL_COVERAGE, TAIL_LEVELS, Prepared, _coverage_at, convergence_rows
from training.splits import migration_count

MIN_GROUP_MIGRATIONS = 5  # a configuration with fewer held-out migrations is not ranked as "worst"


def heldout_bounds(residual: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(n, 2) log-ratio bounds for each row from the other groups' residuals only, their level chosen on those
    other groups too (nested): how the interval would have done on a configuration it never saw."""
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
