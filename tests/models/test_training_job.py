"""The retraining job, short: on a sample of the SNU runs and the lab's migrations it evaluates, writes a
version with its card, and promotes it only when it is better, saying why either way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from advisor.ml.cost import LearnedCostPredictor, load_cost_predictor
from training import train_cost
from training.cost_data import DEFAULT_LAB_DATA
from training.promotion import decide
from training.score_predictions import score


def test_a_short_retraining_writes_a_servable_version_and_says_why_it_was_promoted_or_not(tmp_path: Path) -> None:
    models = tmp_path / "cost"
    code = train_cost.main(["--snu-sample", "0.03", "--models-dir", str(models), "--version", "t1", "--docs", "",
                            "--lab-data", str(DEFAULT_LAB_DATA), "--promote"])
    assert code == 0
    card = json.loads((models / "t1" / "card.json").read_text())
    targets = {"total_time_ms", "downtime_ms", "transferred_mib"}
    assert set(card["files"]) == {*targets, "converges", *(f"{t}@lab" for t in targets)}
    assert card["promotion"]["reason"].startswith(("promoted", "not promoted"))
    assert "lab" in card["data"]["sources"] and card["data"]["rows"]
    assert {"full", "no windows"} <= set(card["metrics"]["lab"])
    assert card["metrics"]["convergence"]["full"]["learned"]["all"]["non_converging"] > 0
    if card["promotion"]["promoted"]:
        assert (models / "ACTIVE").read_text().strip() == "t1"
        assert isinstance(load_cost_predictor(models), LearnedCostPredictor)
    else:
        assert not (models / "ACTIVE").exists()


def _metrics(snu_mape: float, lab_mape: float, recall: float) -> dict[str, Any]:
    techniques = ("precopy", "precopy_autoconverge", "precopy_xbzrle", "precopy_compress", "postcopy")
    table = {t: {"total_time_ms": {"n": 10, "mape": snu_mape}, "downtime_ms": {"n": 10, "median_ape": 0.1}}
             for t in techniques}
    lab = {t: {"total_time_ms": {"n": 10, "mape": lab_mape}} for t in techniques}
    snu_only = {t: {"total_time_ms": {"n": 10, "mape": 0.7}} for t in techniques}
    conv = {"learned": {"all": {"recall": recall}}, "snu_only": {"all": {"recall": 0.05}}}
    return {"snu": {"learned": table}, "lab": {"full": {"learned": lab, "snu_only": snu_only}},
            "convergence": {"full": conv}}


def test_promotion_needs_the_snu_figures_kept_and_the_lab_figures_bettered(tmp_path: Path) -> None:
    (tmp_path / "1.0").mkdir()
    (tmp_path / "1.0" / "card.json").write_text(json.dumps({"version": "1.0", "metrics": _metrics(0.13, 0.5, 0.5)}))
    (tmp_path / "ACTIVE").write_text("1.0\n")
    better = decide(_metrics(0.131, 0.2, 0.95), tmp_path, promote=True)
    assert better["promoted"] and "better" in better["reason"]
    worse_snu = decide(_metrics(0.20, 0.2, 0.95), tmp_path, promote=True)
    assert not worse_snu["promoted"] and "SNU precopy time error 20.0% is worse" in worse_snu["reason"]
    worse_lab = decide(_metrics(0.13, 0.6, 0.95), tmp_path, promote=True)
    assert not worse_lab["promoted"] and "not better" in worse_lab["reason"]
    other_data = decide(_metrics(0.13, 0.6, 0.95), tmp_path, promote=True, lab_sha256="f" * 64)
    assert other_data["promoted"] and "lab figures are from other lab data" in other_data["reason"]
    assert "of the SNU-only model" in other_data["reason"]  # then compared with the SNU-only recipe's 0.7
    not_asked = decide(_metrics(0.13, 0.2, 0.95), tmp_path, promote=False)
    assert not not_asked["promoted"] and not_asked["better"] and "--promote not given" in not_asked["reason"]


def test_predictions_are_scored_against_the_lab_rows_they_were_made_for() -> None:
    lab = pd.read_csv(DEFAULT_LAB_DATA)
    kept = lab[lab["outcome"] != "failed"].reset_index(drop=True)
    perfect = pd.DataFrame({"predicted_total_time_ms": kept["total_time_ms"],
                            "predicted_downtime_ms": kept["downtime_ms"],
                            "predicted_transferred_kib": kept["transferred_kib"],
                            "predicted_converges": kept["outcome"] == "completed"})
    table, conv = score(lab, perfect)
    assert (table["time MAPE"] == 0).all() and (table["data MAPE"] == 0).all()
    assert conv["non_converging"] > 0 and conv["recall"] == 1.0 and conv["false_alarms"] == 0.0
    _, blind = score(lab, perfect.assign(predicted_converges=True))
    assert blind["recall"] == 0.0
    with pytest.raises(ValueError, match="not the same rows"):
        score(lab, perfect.iloc[:-1])
