"""The promotion gate on synthetic predictions: a candidate worse on one figure only is refused naming it; one
equal to the active model, or differing by noise, is not; the verdict is the same for the same seed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from training import gate
from training.gate import Predictions

SIGMA = 0.2  # spread of the actual values around the predicted median, in log space
Z80 = 1.2816  # the p90 of a standard normal: +-Z80 sigma holds 80%


def _locked(groups: int = 60, per_group: int = 4, seed: int = 1) -> tuple[pd.DataFrame, Predictions]:
    """Lab pre-copy and post-copy migrations with deadlines, and an active model's predictions that fit them: right
    medians, 80% intervals, non-convergence foreseen where it happened."""
    rng = np.random.default_rng(seed)
    n = groups * per_group
    median = {"total_time_ms": rng.uniform(5e3, 6e4, n), "downtime_ms": rng.uniform(50, 900, n),
              "transferred_mib": rng.uniform(200, 2000, n)}
    technique = np.where(np.arange(n) % 2 == 0, "precopy", "postcopy")
    never = (technique == "precopy") & (rng.random(n) < 0.3)
    frame = pd.DataFrame({"group": [f"lab:g{k // per_group}" for k in range(n)], "technique": technique,
                          "source": "lab", "deadline_ms": 90_000.0,
                          "outcome": np.where(never, "aborted", "completed"),
                          **{t: m * np.exp(SIGMA * rng.standard_normal(n)) for t, m in median.items()}})
    frame.loc[never, "downtime_ms"] = np.nan
    intervals = {t: np.column_stack([m * np.exp(-Z80 * SIGMA), m, m * np.exp(Z80 * SIGMA)]) for t, m in median.items()}
    probability = np.where(never, 0.1, 0.9)
    return frame, Predictions(intervals, probability)


def _verdict(frame: pd.DataFrame, active: Predictions, candidate: Predictions) -> dict[str, object]:
    return gate.run(frame, lambda _: candidate, lambda _: active, "version 1.0.0", promote=True)


def _scaled(p: Predictions, target: str, factor: float) -> Predictions:
    return replace(p, intervals={**p.intervals, target: p.intervals[target] * factor})


def _refused_only_for(result: dict[str, object], figure: str) -> None:
    assert result["refused"] and not result["promoted"]
    worse = {(c["scope"], c["technique"], c["figure"]) for c in result["gate"]["comparisons"]  # type: ignore[index]
             if c["verdict"] == "worse"}
    assert worse and {f for _, _, f in worse} == {figure}, worse
    assert figure in str(result["reason"]) and str(result["reason"]).startswith("not promoted; refused")


def test_a_candidate_worse_on_downtime_alone_is_refused_naming_it() -> None:
    frame, active = _locked()
    # twice the downtime (only the median: the interval kept where it was, so its coverage does not change)
    worse = active.intervals["downtime_ms"].copy()
    worse[:, 1] *= 2.0
    _refused_only_for(_verdict(frame, active, replace(active, intervals={**active.intervals, "downtime_ms": worse})),
                      "downtime median APE")


def test_a_candidate_with_false_alarms_alone_is_refused_naming_them() -> None:
    frame, active = _locked()
    alarms = active.converge_probability.copy()
    converged = (frame["technique"] == "precopy").to_numpy() & (frame["outcome"] == "completed").to_numpy()
    alarms[converged & (np.arange(len(frame)) % 3 == 0)] = 0.2  # a third of those that converged called doomed
    _refused_only_for(_verdict(frame, active, replace(active, converge_probability=alarms)), "false alarms")


def test_a_candidate_with_intervals_that_do_not_hold_is_refused_naming_the_coverage() -> None:
    frame, active = _locked()
    band = active.intervals["total_time_ms"]
    narrow = np.column_stack([band[:, 1] * 0.97, band[:, 1], band[:, 1] * 1.03])
    _refused_only_for(_verdict(frame, active, replace(active, intervals={**active.intervals, "total_time_ms": narrow})),
                      "time p10-p90 coverage")


def test_a_candidate_missing_the_migrations_that_never_converge_is_refused_naming_recall() -> None:
    frame, active = _locked()
    _refused_only_for(_verdict(frame, active, replace(active, converge_probability=np.full(len(frame), 0.9))),
                      "non-convergence recall")


def test_a_candidate_equal_to_the_active_one_or_differing_by_noise_passes() -> None:
    frame, active = _locked()
    same = _verdict(frame, active, active)
    assert same["promoted"] and not same["refused"]
    comparisons = same["gate"]["comparisons"]  # type: ignore[index]
    assert all(c["worse_by"] == 0 and c["verdict"] == "not worse" for c in comparisons)
    rng = np.random.default_rng(7)
    jitter = {t: v * np.exp(0.03 * rng.standard_normal(len(frame)))[:, None] for t, v in active.intervals.items()}
    noisy = _verdict(frame, active, replace(active, intervals=jitter))
    assert noisy["promoted"], noisy["reason"]


def test_every_comparison_is_recorded_per_scope_technique_and_figure() -> None:
    frame, active = _locked()
    result = _verdict(frame, active, _scaled(active, "transferred_mib", 1.3))
    comparisons = result["gate"]["comparisons"]  # type: ignore[index]
    keys = {(c["scope"], c["technique"], c["figure"]) for c in comparisons}
    figures = {"time MAPE", "downtime median APE", "data MAPE", "time p10-p90 coverage",
               "downtime p10-p90 coverage", "data p10-p90 coverage"}
    for scope in ("lab", "lab left out"):  # the lab's rows, and again as a host of a profile never calibrated
        assert {f for s, t, f in keys if s == scope and t == "postcopy"} == figures
        assert {f for s, t, f in keys if s == scope and t == "precopy"} == figures | {"non-convergence recall",
                                                                                       "false alarms"}
    data = next(c for c in comparisons if c["figure"] == "data MAPE" and c["technique"] == "precopy")
    assert data["candidate"] > data["active"] and data["verdict"] == "worse"
    completed_precopy = (frame["technique"] == "precopy") & (frame["outcome"] == "completed")
    assert data["interval"][0] > data["margin"] and data["migrations"] == completed_precopy.sum()


def test_the_verdict_is_the_same_for_the_same_seed_and_moves_with_another() -> None:
    frame, active = _locked()
    candidate = _scaled(active, "total_time_ms", 1.02)
    first = gate.run(frame, lambda _: candidate, lambda _: active, "v", promote=False, seed=3)
    again = gate.run(frame, lambda _: candidate, lambda _: active, "v", promote=False, seed=3)
    other = gate.run(frame, lambda _: candidate, lambda _: active, "v", promote=False, seed=4)
    assert first == again
    assert first["gate"]["comparisons"] != other["gate"]["comparisons"]  # type: ignore[index]
    assert not first["promoted"] and "--promote not given" in str(first["reason"])


def test_without_a_usable_active_model_there_is_nothing_to_compare_with() -> None:
    frame, active = _locked(groups=5)
    result = gate.run(frame, lambda _: active, None, "none usable: no ACTIVE", promote=True)
    assert result["promoted"] and result["gate"]["comparisons"] == []  # type: ignore[index]
    assert "no active model to compare with (none usable: no ACTIVE)" in str(result["reason"])


def test_a_figure_without_rows_is_not_measured_and_refuses_nothing() -> None:
    frame, active = _locked(groups=8)
    frame["outcome"] = "completed"  # nothing failed to converge: no recall to compare
    result = _verdict(frame, active, replace(active, converge_probability=np.full(len(frame), 0.9)))
    recall = [c for c in result["gate"]["comparisons"] if c["figure"] == "non-convergence recall"]  # type: ignore[index]
    assert recall and all(c["verdict"] == "not measured" and c["migrations"] == 0 for c in recall)
    assert result["promoted"]
