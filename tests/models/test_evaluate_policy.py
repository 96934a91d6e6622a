"""The technique-policy evaluation predicts the very SNU runs it was given (--data, less the locked test part),
not the default file's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from training.cost_data import load_snu, without_locked
from training.data import DEFAULT_DATA
from training.evaluate_cost import QUICK_CONFIG
from training.evaluate_policy import add_groups, with_predictions


def test_the_predictions_are_of_the_runs_read(tmp_path: Path) -> None:
    every = pd.read_csv(DEFAULT_DATA)
    small = every.groupby("workload").head(60)  # every workload, few runs
    path = tmp_path / "snu-small.csv"
    small.to_csv(path, index=False)
    frame = add_groups(without_locked(load_snu(path)))  # as main reads them
    out = with_predictions(frame, QUICK_CONFIG, path, None)
    assert len(out) == len(frame) > 0
    assert out["learned_total_time_ms_mid"].notna().all()
