"""The generated evaluation: its figures are computed from the predictions (a perfect predictor scores 0% error,
a predictor off by a known factor scores that factor), and a quick run rewrites only the page's generated section,
with one table per section, a row per technique, and the aims judged."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advisor.ml.cost_features import TARGETS
from training import evaluate_cost
from training.cost_data import DEFAULT_LAB_DATA, load_all
from training.evaluate_cost import BEGIN, END, Method, Section, figures, render_section, replace_between_markers


@pytest.fixture(scope="module")
def lab() -> pd.DataFrame:
    frame = load_all(lab=DEFAULT_LAB_DATA)
    return frame[frame["source"] == "lab"].reset_index(drop=True)


def _predicting(frame: pd.DataFrame, factor: float) -> Method:
    """Every target predicted as `factor` x the actual; non-convergence foreseen exactly where it happened."""
    completed = (frame["outcome"] == "completed").to_numpy()
    return Method({t: factor * frame[t].to_numpy(dtype=np.float64) for t in TARGETS}, completed, ~completed)


def test_a_perfect_predictor_scores_no_error_and_one_off_by_a_factor_scores_that_factor(lab: pd.DataFrame) -> None:
    rows = np.ones(len(lab), dtype=bool)
    perfect = figures(lab, _predicting(lab, 1.0), rows)
    assert perfect["completed"] == (lab["outcome"] == "completed").sum()
    assert perfect["non-converging"] > 0
    assert perfect["time MAPE"] == perfect["downtime medAPE"] == perfect["data MAPE"] == 0.0
    assert perfect["time coverage"] == perfect["recall"] == 1.0
    assert perfect["false alarms"] == 0.0
    doubled = figures(lab, _predicting(lab, 2.0), rows)
    assert doubled["time MAPE"] == pytest.approx(1.0)
    assert doubled["downtime medAPE"] == pytest.approx(1.0)
    assert doubled["data MAPE"] == pytest.approx(1.0)


def test_a_section_renders_each_technique_with_every_method_side_by_side(lab: pd.DataFrame) -> None:
    section = Section("t", "text", lab, {"physics": _predicting(lab, 2.0), "learned": _predicting(lab, 1.0)})
    lines = render_section(section)
    rows = [line for line in lines if line.startswith("| precopy") or line.startswith("| postcopy")
            or line.startswith("| all")]
    assert len(rows) == 6
    assert all("| 100% / 0% | 100% / 0% | 100% / 0% |" in line for line in rows)
    assert any(line.startswith("Worst group") and "(" in line for line in lines)


def test_the_page_must_hold_the_markers() -> None:
    with pytest.raises(SystemExit):
        replace_between_markers("no markers here", "x")
    assert replace_between_markers(f"a\n{BEGIN}\nold\n{END}\nb", "new") == "a\nnew\nb"


@pytest.mark.timeout(900)  # about a minute of CPU; on a machine shared with other jobs, several of wall time
def test_a_quick_run_rewrites_only_the_generated_section(tmp_path: Path) -> None:
    # A lab file with two collections: each is also evaluated as a rig never seen.
    lab = pd.read_csv(DEFAULT_LAB_DATA)
    lab["collection"] = np.where(np.arange(len(lab)) % 2 == 0, "rig-a", "rig-b")
    lab_path = tmp_path / "lab.csv"
    lab.to_csv(lab_path, index=False)
    page = tmp_path / "learning.md"
    page.write_text(f"# Title\n\nprose before\n\n{BEGIN}\nstale figures\n{END}\n\nprose after\n")
    assert evaluate_cost.main(["--quick", "--docs", str(page), "--lab-data", str(lab_path), "--ks", "0,10"]) == 0
    text = page.read_text()
    assert text.startswith("# Title\n\nprose before\n\n" + BEGIN) and text.endswith(END + "\n\nprose after\n")
    assert "stale figures" not in text
    titles = re.findall(r"^### (.+)$", text, flags=re.M)
    assert titles == ["SNU, leave-one-workload-out", "Lab, leave-one-configuration-out",
                      "Leave-one-profile-out: SNU -> lab, no lab data",
                      "Leave-one-profile-out: lab -> SNU, no SNU data",
                      "A rig never seen: lab collection rig-a", "A rig never seen: lab collection rig-b",
                      "Few-shot on a held-out rig",
                      "Few-shot on a held-out lab collection, calibrated like the others", "Aims"]
    for technique in ("precopy", "precopy_compress", "postcopy", "all"):
        # one row per section table (6) and one per k in the few-shot table (2)
        assert len(re.findall(rf"^\| (\d+ \| )?{technique} \|", text, flags=re.M)) == 8
    assert len(re.findall(r"^\| rig-[ab] \| (0|10) \| all \|", text, flags=re.M)) == 4
    aims = re.findall(r"^\| .+ \| (\d+\.\d%|-) \| .+ \| (met|not met|not measured) \|$", text, flags=re.M)
    assert len(aims) == 13
