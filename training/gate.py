"""The promotion gate: the candidate replaces the active cost model only if it is not worse on the same rows.

The baseline is what serving would use were the candidate not promoted: the active model, or, when the current
code cannot load it (a feature-schema change, a missing or corrupt artifact), the fallback serving then uses, the
physics (advisor.model_serving.load_predictor) -- the moment the model changes most is no free pass. Only with
neither (no model at all and no fallback) is nothing compared, and the card says so. The card names the baseline
and, when it is not the active model, why.

Both models predict the locked test part (training/splits.py: groups no training, tuning or cross-validation
ever reads), every migration once, with all its measurements. Per host profile and technique, each figure is
compared with a paired bootstrap over the locked groups (RESAMPLES draws, a fixed seed: the same verdict for
the same models and data):
- time, downtime and data error: total-time MAPE, downtime median APE, data MAPE (completed migrations);
- interval coverage: how far the share of actual values inside the p10-p90 interval is from 80%, per target;
- non-convergence (pre-copy with a deadline): recall (share of the migrations that did not converge foreseen),
  false alarms (share of those that converged called non-converging).
The same comparisons are made again with each profile other than the default one left out: its rows predicted
under the default profile, as the learned base alone (neither model's correction for it applies).
A comparison refuses the candidate when, with ONE_SIDED_CONFIDENCE, it is worse by more than the figure's fixed
margin (the lower end of the 90% bootstrap interval of "how much worse" above the margin), or when the figures
themselves differ by more than the margin (so that a wide interval on few groups lets nothing clearly worse
through). Figures are shares, margins and differences percentage points. The card records every comparison:
both figures, how much worse the candidate is, the interval, the margin and the verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from advisor.domain.model import Technique
from advisor.features.inputs import DEFAULT_PROFILE, InputTable
from advisor.ml.cost import CONVERGE_THRESHOLD, CostArrays
from advisor.ml.cost_features import TECHNIQUES
from advisor.ml.predictor import CostPredictor
from training.bootstrap import Resamples, ratio, weighted_median
from training.splits import migration_count, share_of

# Margins: how much worse a figure may get before the candidate is refused (absolute, in the figure's units).
TIME_MAPE_MARGIN = 0.02
DOWNTIME_MEDIAN_APE_MARGIN = 0.05
DATA_MAPE_MARGIN = 0.02
COVERAGE_MARGIN = 0.05  # on the distance of the p10-p90 coverage from 80%
RECALL_MARGIN = 0.05
FALSE_ALARM_MARGIN = 0.05
NOMINAL_COVERAGE = 0.8
# The interval of "how much worse" runs from the 5th to the 95th percentile of the resamples: a 90% interval,
# whose lower end above the margin says worse beyond it with 95% confidence (one-sided). The card's `confidence`.
ONE_SIDED_CONFIDENCE = 0.95
INTERVAL_LEVEL = 2 * ONE_SIDED_CONFIDENCE - 1
RESAMPLES = 1000
SEED = 20240517
# A left-out profile's rows are predicted under the default profile: the learned base without that profile's
# correction (a profile the learned model does not know is not served by it at all, but by the physics).
UNCALIBRATED = DEFAULT_PROFILE
TARGETS = (("total_time_ms", "time", TIME_MAPE_MARGIN), ("downtime_ms", "downtime", DOWNTIME_MEDIAN_APE_MARGIN),
           ("transferred_mib", "data", DATA_MAPE_MARGIN))


@dataclass(frozen=True)
class Predictions:
    """What the gate scores: per target an (n, 3) array of p10, median, p90, and the probability of converging."""

    intervals: Mapping[str, np.ndarray]
    converge_probability: np.ndarray

    @staticmethod
    def of(arrays: CostArrays) -> Predictions:
        return Predictions({"total_time_ms": arrays.total_time_ms, "downtime_ms": arrays.downtime_ms,
                            "transferred_mib": arrays.transferred_mib}, arrays.converge_probability)


class TablePredictor(Protocol):
    def predict_table(self, table: InputTable) -> CostArrays: ...


Predict = Callable[[pd.DataFrame], Predictions]


def predictions_of(model: TablePredictor) -> Predict:
    return lambda frame: Predictions.of(model.predict_table(InputTable.from_frame(frame)))


def served_predictions(model: CostPredictor) -> Predict:
    """A predictor's answers as serving gives them, row by row (the physics fallback has no table path); where it
    gives no probability of converging, its verdict (1 converges, 0 not) stands for one."""

    def predict(frame: pd.DataFrame) -> Predictions:
        costs = model.predict_many(InputTable.from_frame(frame).rows())
        bands = {target: np.array([[getattr(c, target).low, getattr(c, target).median, getattr(c, target).high]
                                   for c in costs], dtype=np.float64).reshape(len(costs), 3)
                 for target, _, _ in TARGETS}
        probability = np.array([float(c.converges) if c.converge_probability is None else c.converge_probability
                                for c in costs], dtype=np.float64)
        return Predictions(bands, probability)

    return predict


@dataclass(frozen=True)
class Baseline:
    """What the candidate must not be worse than: what serving would use were it not promoted. `predict` None:
    nothing at all (no model and no fallback); `why` says why the baseline is not the active model."""

    name: str  # e.g. "the active version 2.0.0", "the physics fallback serving would use"
    predict: Predict | None
    why: str = ""  # e.g. "active 2.0.0 unreadable: feature schema v3 vs v4 (...)"


@dataclass(frozen=True)
class Figure:
    name: str
    margin: float
    rows: np.ndarray  # which rows it is computed over (the same for both models)
    median: bool = False  # else a mean
    worse: Callable[[np.ndarray], np.ndarray] = lambda value: value  # larger is worse


def _mean_or_median(figure: Figure, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    v = values[figure.rows].astype(np.float64)
    w = weights[:, figure.rows]
    return weighted_median(v, w) if figure.median else ratio(v, np.ones(len(v)), w)


def _figures(frame: pd.DataFrame, technique: Technique) -> list[tuple[Figure, Callable[[Predictions], np.ndarray]]]:
    """Each figure of one technique's rows, with what it reads of a model's predictions per row."""
    completed = frame["outcome"].to_numpy() == "completed"
    out: list[tuple[Figure, Callable[[Predictions], np.ndarray]]] = []
    for target, word, margin in TARGETS:
        actual = frame[target].to_numpy(dtype=np.float64)
        known = completed & np.isfinite(actual) & (actual > 0)
        safe = np.where(known, actual, 1.0)

        def ape(p: Predictions, target: str = target, safe: np.ndarray = safe) -> np.ndarray:
            return np.asarray(np.abs(p.intervals[target][:, 1] - safe) / safe)

        def inside(p: Predictions, target: str = target, safe: np.ndarray = safe) -> np.ndarray:
            band = p.intervals[target]
            return np.asarray((band[:, 0] <= safe * (1 + 1e-9)) & (safe <= band[:, 2] * (1 + 1e-9)))

        error = "median APE" if target == "downtime_ms" else "MAPE"
        out.append((Figure(f"{word} {error}", margin, known, median=target == "downtime_ms"), ape))
        out.append((Figure(f"{word} p10-p90 coverage", COVERAGE_MARGIN, known,
                           worse=lambda c: np.abs(c - NOMINAL_COVERAGE)), inside))
    if technique.is_precopy:
        deadline = pd.to_numeric(frame["deadline_ms"], errors="coerce").to_numpy(dtype=np.float64)
        judged = np.nan_to_num(deadline) > 0

        def foreseen(p: Predictions) -> np.ndarray:
            return np.asarray(p.converge_probability <= CONVERGE_THRESHOLD)

        out.append((Figure("non-convergence recall", RECALL_MARGIN, judged & ~completed, worse=lambda r: 1 - r),
                    foreseen))
        out.append((Figure("false alarms", FALSE_ALARM_MARGIN, judged & completed), foreseen))
    return out


def _verdict(worse_by: float, lower: float, upper: float, margin: float) -> str:
    """Worse: with ONE_SIDED_CONFIDENCE beyond the margin, or beyond it on the figures themselves (few locked groups
    give a wide interval, which must not let a candidate that measured clearly worse through)."""
    if not np.isfinite(lower):
        return "not measured"
    return "worse" if lower > margin or worse_by > margin else "better" if upper < 0 else "not worse"


def compare(frame: pd.DataFrame, baseline: Predictions, candidate: Predictions, scope: str,
            seed: int = SEED) -> list[dict[str, Any]]:
    """Every comparison of one scope's rows (one migration each), per technique."""
    out: list[dict[str, Any]] = []
    techniques = frame["technique"].astype(str).to_numpy()
    groups = frame["group"].astype(str).to_numpy()
    for technique in TECHNIQUES:
        mine = techniques == str(technique)
        if not mine.any():
            continue
        draws = Resamples.of_groups(groups[mine], RESAMPLES, seed + int(share_of(f"{scope}|{technique}", "seed")
                                                                        * 1e9)).weights
        sub = frame[mine].reset_index(drop=True)
        a = _take(baseline, mine)
        c = _take(candidate, mine)
        for figure, read in _figures(sub, technique):
            ones = np.ones((1, len(sub)))
            fig_a = float(_mean_or_median(figure, read(a), ones)[0]) if figure.rows.any() else float("nan")
            fig_c = float(_mean_or_median(figure, read(c), ones)[0]) if figure.rows.any() else float("nan")
            worse = figure.worse(_mean_or_median(figure, read(c), draws)) - figure.worse(
                _mean_or_median(figure, read(a), draws))
            finite = worse[np.isfinite(worse)]
            lower, upper = ((float(np.quantile(finite, 1 - ONE_SIDED_CONFIDENCE)),
                             float(np.quantile(finite, ONE_SIDED_CONFIDENCE)))
                            if figure.rows.any() and len(finite) else (float("nan"), float("nan")))
            worse_by = float(figure.worse(np.array([fig_c]))[0] - figure.worse(np.array([fig_a]))[0])
            out.append({"scope": scope, "technique": str(technique), "figure": figure.name,
                        "migrations": int(figure.rows.sum()), "groups": len(np.unique(groups[mine][figure.rows])),
                        "baseline": fig_a, "candidate": fig_c,
                        "worse_by": worse_by, "interval": [lower, upper], "margin": figure.margin,
                        "verdict": _verdict(worse_by, lower, upper, figure.margin)})
    return out


def _take(p: Predictions, rows: np.ndarray) -> Predictions:
    return Predictions({t: v[rows] for t, v in p.intervals.items()}, p.converge_probability[rows])


def scopes(locked: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Each host profile's locked rows, and each non-default profile's again as a profile never calibrated."""
    profile = locked["source"].astype(str).to_numpy()
    names = sorted(set(profile), key=lambda p: (p != DEFAULT_PROFILE, p))
    out = [(p, locked[profile == p].reset_index(drop=True)) for p in names]
    out += [(f"{p} left out", locked[profile == p].assign(source=UNCALIBRATED).reset_index(drop=True))
            for p in names if p != DEFAULT_PROFILE]
    return out


def run(locked: pd.DataFrame, candidate: Predict, baseline: Baseline, *, promote: bool,
        seed: int = SEED) -> dict[str, Any]:
    """The card's `promotion`: whether the candidate is promoted or refused, why, and every comparison with the
    baseline. `locked` holds each migration once (never the variants of `training.cost_data.with_variants`), so
    every figure and count is in migrations."""
    migrations = migration_count(locked)
    if migrations != len(locked):
        raise ValueError(f"the gate scores each migration once: {len(locked)} rows of {migrations} migrations "
                         "(give it the locked rows, not their variants)")
    comparisons: list[dict[str, Any]] = []
    if baseline.predict is not None:
        for scope, rows in scopes(locked):
            if len(rows):
                comparisons += compare(rows, baseline.predict(rows), candidate(rows), scope, seed)
    worse = [c for c in comparisons if c["verdict"] == "worse"]
    if worse:
        reason = f"refused: worse than {baseline.name} on " + "; ".join(_describe(c) for c in worse)
    elif baseline.predict is None:
        reason = f"passed without any comparison: {baseline.name}" + (f" ({baseline.why})" if baseline.why else "")
    else:
        reason = (f"passed: not worse than {baseline.name} beyond a margin on any of {len(comparisons)} "
                  f"comparisons on {migrations} locked migrations")
    if baseline.why and baseline.predict is not None:
        reason = f"{baseline.why}; compared with {baseline.name}; {reason}"
    promoted = promote and not worse
    verdict = "promoted" if promoted else "not promoted" if worse else "not promoted (--promote not given)"
    return {"promoted": promoted, "refused": bool(worse), "reason": f"{verdict}; {reason}",
            "gate": {"baseline": baseline.name, "baseline_why": baseline.why,
                     "compared": baseline.predict is not None, "locked_migrations": migrations,
                     "locked_groups": int(locked["group"].nunique()) if len(locked) else 0,
                     "resamples": RESAMPLES, "confidence": ONE_SIDED_CONFIDENCE, "seed": seed,
                     "comparisons": comparisons}}


def _describe(c: Mapping[str, Any]) -> str:
    """One comparison refused, in words: every figure is a share, so the differences are percentage points; the
    coverage is judged by its distance from NOMINAL_COVERAGE, which the text then gives."""
    distance = (f"{100 * abs(c['candidate'] - NOMINAL_COVERAGE):.1f} vs "
                f"{_points(abs(c['baseline'] - NOMINAL_COVERAGE))} from {NOMINAL_COVERAGE:.0%}: "
                if c["figure"].endswith("coverage") else "")
    return (f"{c['scope']} {c['technique']} {c['figure']} {c['candidate']:.1%} vs {c['baseline']:.1%} ({distance}"
            f"worse by {_points(c['worse_by'])}, {INTERVAL_LEVEL:.0%} interval from {100 * c['interval'][0]:.1f} to "
            f"{_points(c['interval'][1])}, margin {_points(c['margin'])})")


def _points(share: float) -> str:
    return f"{100 * share:.1f} points"
