"""Evaluation: the coverage of the served p10-p90 with and without online adaptation (advisor.ml.adaptive_intervals),
replaying real migrations in the order they ran as the service would see them end.

    .venv/bin/python -m benchmarks.adaptive_intervals [--models-dir models] [--snu-rows 5000] [--step 0.1]

Each case serves the migrations of one data set as one host profile: the lab's as "lab" (the profile the learned
model was calibrated on: a reference), as "snu" (the SNU base on the lab's hosts: a profile left out) and as a
name never calibrated (physics with the intervals of a profile left out); the SNU runs as "lab" (the lab's
correction on SNU's hosts) and as a name never calibrated. For each, the share of measured values inside the
model's own interval and inside the adapted one served at that moment (overall, and over the second half, once
the cells have had outcomes to learn from), and the median widening (e^margin) at the end.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path
from statistics import median

import numpy as np
import pandas as pd

from advisor.config import REPO_MODELS_DIR
from advisor.domain.migration import MigrationResult
from advisor.domain.model import MigrationCost, MigrationInputs, Technique
from advisor.features.inputs import InputTable
from advisor.ml.adaptive_intervals import QUANTITIES, AdaptationRule, AdaptiveIntervals
from advisor.model_serving import load_predictor
from training.cost_data import load_lab, load_snu

UNSEEN = "rig"  # a profile name never calibrated


def replay(rows: list[tuple[MigrationInputs, Technique]], raw: list[MigrationCost], results: list[MigrationResult],
           rule: AdaptationRule) -> dict[str, tuple[int, float, float, float, float, float]]:
    """Per quantity: n, coverage of the model's own interval, of the adapted one served, the same two over the
    second half, and the median widening of the cells at the end."""
    intervals = AdaptiveIntervals(rule)
    hits: dict[str, list[tuple[bool, bool]]] = {q: [] for q in QUANTITIES}
    for (inputs, _), own, result in zip(rows, raw, results, strict=True):
        served = intervals.adapt(inputs, own)
        measured = {"total_time_ms": result.total_time_ms, "downtime_ms": result.downtime_ms,
                    "transferred_mib": result.transferred_mib}
        for q in QUANTITIES:
            value = measured[q]
            if value is not None and value > 0:
                a, b = getattr(own, q), getattr(served, q)
                hits[q].append((a.low <= value <= a.high, b.low <= value <= b.high))
        intervals.observe(inputs, served, result)
    out = {}
    for q, seen in hits.items():
        half = seen[len(seen) // 2:]
        widening = [s.widening for s in intervals.states() if s.cell.quantity == q]
        out[q] = (len(seen), float(np.mean([a for a, _ in seen])), float(np.mean([b for _, b in seen])),
                  float(np.mean([a for a, _ in half])), float(np.mean([b for _, b in half])),
                  median(widening) if widening else math.nan)
    return out


def migrations(frame: pd.DataFrame, order: str) -> tuple[list[tuple[MigrationInputs, Technique]],
                                                         list[MigrationResult]]:
    """The completed migrations of a table, in the order they ran (aborts are censored: never counted)."""
    frame = frame[frame["outcome"] == "completed"].sort_values(order, kind="stable").reset_index(drop=True)
    rows = InputTable.from_frame(frame).rows()
    downtime = pd.to_numeric(frame["downtime_ms"], errors="coerce").to_numpy(dtype=np.float64)
    results = [MigrationResult(True, total_time_ms=float(t), downtime_ms=None if math.isnan(d) else float(d),
                               transferred_mib=float(k) / 1024)
               for t, d, k in zip(frame["total_time_ms"], downtime, frame["transferred_kib"], strict=True)]
    return rows, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", type=Path, default=REPO_MODELS_DIR)
    parser.add_argument("--snu-rows", type=int, default=5000, help="the first this many SNU runs in time order")
    parser.add_argument("--step", type=float, default=AdaptationRule.step, help="the rule's step (log units)")
    args = parser.parse_args()
    rule = AdaptationRule(step=args.step)
    predictor = load_predictor(args.models_dir)
    print(f"model: {predictor.model.name} {predictor.model.version} {predictor.model.fallback_reason}; {rule}")
    lab = migrations(load_lab(), "started_at")
    snu_rows, snu_results = migrations(load_snu(), "migration_id")
    snu = (snu_rows[: args.snu_rows], snu_results[: args.snu_rows])
    cases = [("lab as lab (calibrated: reference)", lab, "lab"), ("lab as snu (left out)", lab, "snu"),
             (f"lab as {UNSEEN} (never calibrated)", lab, UNSEEN), ("snu as lab (left out)", snu, "lab"),
             (f"snu as {UNSEEN} (never calibrated)", snu, UNSEEN)]
    print("| case | quantity | n | own | adapted | own, 2nd half | adapted, 2nd half | median widening at end |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (rows, results), profile in cases:
        served_rows = [(replace(i, host_profile=profile), t) for i, t in rows]
        raw = predictor.predict_many(served_rows)
        for q, (n, own, adapted, own2, adapted2, widening) in replay(served_rows, raw, results, rule).items():
            print(f"| {name} | {q} | {n} | {own:.0%} | {adapted:.0%} | {own2:.0%} | {adapted2:.0%} | x{widening:.2f} |")


if __name__ == "__main__":
    main()
