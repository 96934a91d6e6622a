"""The promotion gate on synthetic predictions: a candidate worse on one figure only is refused naming it; one
equal to the active model, or differing by noise, is not; the verdict is the same for the same seed. On the real
locked part: an active model the code cannot load (another feature schema) is replaced by the physics fallback
serving would use, never a free pass."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advisor.ml.cost_features import SCHEMA_VERSION
from advisor.model_serving import load_predictor
from tests.support import REPO
from training import gate, train_cost
from training.cost_data import load_locked
from training.cost_report import gate_table
from training.gate import Baseline, Predictions

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
    return gate.run(frame, lambda _: candidate, _active(active), promote=True)


def _active(p: Predictions) -> Baseline:
    return Baseline("the active version 1.0.0", lambda _: p)


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
    assert data["candidate"] > data["baseline"] and data["verdict"] == "worse"
    completed_precopy = (frame["technique"] == "precopy") & (frame["outcome"] == "completed")
    assert data["interval"][0] > data["margin"] and data["migrations"] == completed_precopy.sum()


def test_the_verdict_is_the_same_for_the_same_seed_and_moves_with_another() -> None:
    frame, active = _locked()
    candidate = _scaled(active, "total_time_ms", 1.02)
    first = gate.run(frame, lambda _: candidate, _active(active), promote=False, seed=3)
    again = gate.run(frame, lambda _: candidate, _active(active), promote=False, seed=3)
    other = gate.run(frame, lambda _: candidate, _active(active), promote=False, seed=4)
    assert first == again
    assert first["gate"]["comparisons"] != other["gate"]["comparisons"]  # type: ignore[index]
    assert not first["promoted"] and "--promote not given" in str(first["reason"])


def test_only_with_no_model_and_no_fallback_is_nothing_compared_and_the_card_says_so() -> None:
    frame, active = _locked(groups=5)
    result = gate.run(frame, lambda _: active, Baseline("no model at all and no fallback", None), promote=True)
    assert result["promoted"] and result["gate"]["comparisons"] == []  # type: ignore[index]
    assert "passed without any comparison: no model at all and no fallback" in str(result["reason"])
    assert "No comparison: no model at all and no fallback." in gate_table(result)


def test_the_gate_scores_each_migration_once_never_its_input_variants() -> None:
    frame, active = _locked(groups=5)
    variants = pd.concat([frame.assign(row=frame.index)] * 2, ignore_index=True)  # as with_variants repeats a run
    with pytest.raises(ValueError, match="each migration once: 40 rows of 20 migrations"):
        gate.run(variants, lambda _: active, _active(active), promote=True)
    assert _verdict(frame, active, active)["gate"]["locked_migrations"] == len(frame)  # type: ignore[index]


def _of_another_schema(tmp_path: Path) -> Path:
    """A models directory whose active cost version was trained on the previous feature schema."""
    cost = tmp_path / "models" / "cost"
    shipped = REPO / "models" / "cost" / (REPO / "models" / "cost" / "ACTIVE").read_text().strip()
    shutil.copytree(shipped, cost / "0.9.0")
    card = json.loads((cost / "0.9.0" / "card.json").read_text())
    card.update(version="0.9.0", schema_hash="0" * 64,
                feature_schema={**card["feature_schema"], "schema_version": SCHEMA_VERSION - 1})
    (cost / "0.9.0" / "card.json").write_text(json.dumps(card))
    (cost / "ACTIVE").write_text("0.9.0\n")
    return cost


def test_an_active_model_of_another_schema_gives_way_to_the_physics_fallback_serving_would_use(
        tmp_path: Path) -> None:
    cost = _of_another_schema(tmp_path)
    baseline = train_cost.baseline(cost)
    physics = baseline.predict
    assert baseline.name == "the physics fallback serving would use" and physics is not None
    assert baseline.why.startswith(f"active 0.9.0 unreadable: feature schema v{SCHEMA_VERSION - 1} vs "
                                   f"v{SCHEMA_VERSION} (feature schema mismatch")
    locked = load_locked()
    served = load_predictor(cost.parent)  # what the advisor serves from this directory
    assert served.model.fallback_reason
    fallback, as_served = physics(locked), gate.served_predictions(served)(locked)
    for target, band in fallback.intervals.items():
        assert np.array_equal(band, as_served.intervals[target]), target
    assert np.array_equal(fallback.converge_probability, as_served.converge_probability)

    same = gate.run(locked, physics, baseline, promote=True)
    assert same["promoted"] and same["gate"]["comparisons"]  # type: ignore[index]
    assert all(c["worse_by"] == 0 or c["verdict"] == "not measured"
               for c in same["gate"]["comparisons"])  # type: ignore[index]

    def worse(rows: pd.DataFrame) -> Predictions:  # three times the physics' time, interval and all
        return _scaled(physics(rows), "total_time_ms", 3.0)

    refused = gate.run(locked, worse, baseline, promote=True)
    assert refused["refused"] and not refused["promoted"]
    reason = str(refused["reason"])
    assert reason.startswith(f"not promoted; active 0.9.0 unreadable: feature schema v{SCHEMA_VERSION - 1} vs ")
    assert "; compared with the physics fallback serving would use; refused: worse than the physics fallback " \
           "serving would use on " in reason and "time MAPE" in reason
    gate_card = refused["gate"]
    assert gate_card["baseline"] == baseline.name and gate_card["baseline_why"] == baseline.why  # type: ignore[index]
    assert {c["figure"] for c in gate_card["comparisons"] if c["verdict"] == "worse"} >= {  # type: ignore[index]
        "time MAPE"}
    page = gate_table(refused)
    assert "## Promotion gate: candidate vs the physics fallback serving would use" in page
    assert baseline.why in page


def test_a_figure_without_rows_is_not_measured_and_refuses_nothing() -> None:
    frame, active = _locked(groups=8)
    frame["outcome"] = "completed"  # nothing failed to converge: no recall to compare
    result = _verdict(frame, active, replace(active, converge_probability=np.full(len(frame), 0.9)))
    recall = [c for c in result["gate"]["comparisons"] if c["figure"] == "non-convergence recall"]  # type: ignore[index]
    assert recall and all(c["verdict"] == "not measured" and c["migrations"] == 0 for c in recall)
    assert result["promoted"]



@pytest.mark.parametrize(("figure", "candidate", "baseline", "worse_by", "says"), [
    # every figure is a share: its differences are percentage points, not percents
    ("time MAPE", 0.239, 0.14, 0.099, "time MAPE 23.9% vs 14.0% (worse by 9.9 points, 90% interval from 5.7 to "
                                      "12.0 points, margin 2.0 points)"),
    # coverage is judged by its distance from 80%, which the text gives
    ("time p10-p90 coverage", 1.0, 0.75, 0.15, "time p10-p90 coverage 100.0% vs 75.0% (20.0 vs 5.0 points from "
                                               "80%: worse by 15.0 points, 90% interval from 5.7 to 12.0 points"),
])
def test_a_refusal_says_points_and_the_interval_the_quantiles_make(figure: str, candidate: float, baseline: float,
                                                                   worse_by: float, says: str) -> None:
    comparison = {"scope": "lab", "technique": "precopy", "figure": figure, "candidate": candidate,
                  "baseline": baseline, "worse_by": worse_by, "interval": [0.057, 0.12], "margin": 0.02}
    assert says in gate._describe(comparison)
    # the interval runs from the 5th to the 95th percentile of the resamples: 90%, as the card's table says
    assert round(gate.INTERVAL_LEVEL, 9) == 0.9
    table = gate_table({"gate": {"baseline": "the active version 2.0.0", "baseline_why": "", "compared": True,
                                 "locked_migrations": 1, "locked_groups": 1, "resamples": gate.RESAMPLES,
                                 "seed": gate.SEED, "confidence": gate.ONE_SIDED_CONFIDENCE,
                                 "comparisons": [{**comparison, "migrations": 1, "verdict": "worse"}]}})
    assert "in percentage points" in table and "its 90% interval (the 5% to 95% quantiles" in table
