"""Score the output of `advisor predict cost` against the lab's measured migrations.

    .venv/bin/python -m training.score_predictions --predictions OUT.csv [--lab-data training/data/lab_migrations.csv]

OUT.csv is `advisor predict cost --input IN.csv --output OUT.csv` for IN.csv made of the lab dataset's rows in
their order (failed ones left out), in whatever columns the model at hand takes: that is how a model the current
code cannot load (an older feature schema, run by the code of its own version) is measured on the same
migrations. Prints per technique the total-time MAPE, downtime median APE and data MAPE of the completed
migrations, and how many of the pre-copy migrations that never converged were foreseen (`predicted_converges`
false). Post-copy rows planned to switch later than the advisor does are left out (training.cost_data).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from training.cost_data import DEFAULT_LAB_DATA, as_the_advisor_plans_postcopy


def score(lab: pd.DataFrame, predictions: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    lab = lab[lab["outcome"] != "failed"].reset_index(drop=True)
    if len(lab) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(lab)} lab migrations: not the same rows")
    frame = lab.assign(
        p_time=predictions["predicted_total_time_ms"].to_numpy(),
        p_down=predictions["predicted_downtime_ms"].to_numpy(),
        p_kib=predictions["predicted_transferred_kib"].to_numpy(),
        p_conv=predictions["predicted_converges"].astype(str).str.lower().eq("true").to_numpy())
    frame = as_the_advisor_plans_postcopy(frame)
    done = frame[frame["outcome"] == "completed"]
    rows = []
    for technique, g in done.groupby("technique"):
        rows.append({"technique": technique, "completed": len(g),
                     "time MAPE": float(np.mean(np.abs(g["p_time"] / g["total_time_ms"] - 1))),
                     "downtime median APE": float(np.nanmedian(np.abs(g["p_down"] / g["downtime_ms"] - 1))),
                     "data MAPE": float(np.mean(np.abs(g["p_kib"] / g["transferred_kib"] - 1)))})
    pre = frame[frame["technique"] != "postcopy"]
    never = (pre["outcome"] == "aborted").to_numpy()
    says = pre["p_conv"].to_numpy(dtype=bool)
    conv = {"non_converging": int(never.sum()), "foreseen": int((~says & never).sum()),
            "recall": float((~says[never]).mean()) if never.any() else float("nan"),
            "false_alarms": float((~says[~never]).mean()) if (~never).any() else float("nan")}
    return pd.DataFrame(rows), conv


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.score_predictions", description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", type=Path, required=True, help="the output of advisor predict cost")
    parser.add_argument("--lab-data", type=Path, default=DEFAULT_LAB_DATA)
    args = parser.parse_args(argv)
    try:
        table, conv = score(pd.read_csv(args.lab_data), pd.read_csv(args.predictions))
    except (OSError, ValueError, KeyError) as error:
        print(f"score_predictions: {error}", file=sys.stderr)
        return 2
    shown = table.copy()
    for column in ("time MAPE", "downtime median APE", "data MAPE"):
        shown[column] = shown[column].map(lambda v: f"{v:.1%}")
    print(shown.to_string(index=False))
    print(f"pre-copy migrations that never converged: {conv['non_converging']}, foreseen {conv['foreseen']} "
          f"(recall {conv['recall']:.0%}); false alarms {conv['false_alarms']:.1%} of those that converged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
