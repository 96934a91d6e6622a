"""The retraining job, short: on a sample of the SNU runs and the lab's migrations it evaluates, runs the gate
against the active model on the locked test part, writes a version with its card, and promotes it only when the
gate passes it, saying why either way; a refused candidate is written, marked refused, and never made active."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from advisor.domain.migration import MigrationRecord, MigrationResult, Phase
from advisor.domain.model import Interval, MigrationCost, MigrationInputs, MigrationParameters, ModelRef, Technique
from advisor.features.dataset import outcome_row
from advisor.ml.cost import LearnedCostPredictor, load_cost_predictor, registry
from advisor.ml.registry import next_version
from tests.support import REPO
from tests.support.training import TREES, lab_configurations
from training import gate, train_cost
from training.cost_data import DEFAULT_LAB_DATA, load_outcomes
from training.score_predictions import score
from training.splits import is_locked


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def _short_run(models: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Train on 3% of the SNU runs and half the lab's configurations, with a fifth of the trees (these tests check
    what the job writes and how the gate decides, not the model's quality); the groups of every row training
    prepared."""
    seen: set[str] = set()
    prepare = train_cost.prepare

    def spy(frame: pd.DataFrame, cfg: train_cost.TrainConfig) -> train_cost.Prepared:
        assert cfg.num_trees == 60  # a fifth of 300
        seen.update(frame["lock_group"])
        return prepare(frame, cfg)

    monkeypatch.setattr(train_cost, "prepare", spy)
    lab = lab_configurations(models.parent / "lab_migrations.csv")
    code = train_cost.main(["--snu-sample", "0.03", *TREES, "--models-dir", str(models), "--docs", "",
                            "--lab-data", str(lab), "--promote"])
    assert code == 0
    return seen


@pytest.mark.timeout(900)  # a real retrain, short: under a minute quiet, minutes on a loaded machine
def test_a_short_retraining_writes_a_new_servable_version_and_says_why_it_was_promoted_or_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The shipped versions and pointer: without --version the job writes the next free version, never the active
    # one in place, whether the gate promotes the candidate or not.
    models = tmp_path / "cost"
    shutil.copytree(REPO / "models" / "cost", models)
    active = (models / "ACTIVE").read_text().strip()
    shipped = {v: _files(models / v) for v in registry(models).versions()}
    seen = _short_run(models, monkeypatch)
    assert seen and not any(is_locked(g) for g in seen)  # training never saw the locked test part
    written = next_version(list(shipped))
    assert {v: _files(models / v) for v in shipped} == shipped
    card = json.loads((models / written / "card.json").read_text())
    assert card["version"] == written
    targets = {"total_time_ms", "downtime_ms", "transferred_mib"}
    assert set(card["files"]) == {*targets, "converges", *(f"{t}@lab" for t in targets)}
    assert card["promotion"]["reason"].startswith(("promoted", "not promoted"))
    comparisons = card["promotion"]["gate"]["comparisons"]
    assert {c["scope"] for c in comparisons} == {"snu", "lab", "lab left out"}
    assert {"time MAPE", "downtime median APE", "data MAPE", "time p10-p90 coverage", "non-convergence recall",
            "false alarms"} <= {c["figure"] for c in comparisons}
    assert card["promotion"]["refused"] == any(c["verdict"] == "worse" for c in comparisons)
    assert "Promotion gate: candidate vs the active version " + active in (models / written / "card.md").read_text()
    assert "lab" in card["data"]["sources"] and card["data"]["rows"]
    assert {"full", "no windows"} <= set(card["metrics"]["lab"])
    assert card["metrics"]["convergence"]["full"]["learned"]["all"]["non_converging"] > 0
    assert (models / "ACTIVE").read_text().strip() == (written if card["promotion"]["promoted"] else active)
    assert isinstance(load_cost_predictor(models), LearnedCostPredictor)


@pytest.mark.timeout(900)  # as above
def test_a_refused_candidate_is_written_marked_refused_and_never_made_active(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "cost"
    shutil.copytree(REPO / "models" / "cost", models)
    active = (models / "ACTIVE").read_text().strip()
    # a margin no candidate can keep: any time error at all counts as worse
    monkeypatch.setattr(gate, "TARGETS", (("total_time_ms", "time", -10.0), *gate.TARGETS[1:]))
    written = registry(models).next_version()
    _short_run(models, monkeypatch)
    card = json.loads((models / written / "card.json").read_text())
    assert card["promotion"]["refused"] and not card["promotion"]["promoted"]
    assert "refused: worse than the active version" in card["promotion"]["reason"]
    assert "time MAPE" in card["promotion"]["reason"]
    assert (models / "ACTIVE").read_text().strip() == active
    assert registry(models).artifact(written).version == written  # kept, as its own immutable version


def test_asking_for_a_version_that_exists_is_refused_before_training(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "cost"
    shutil.copytree(REPO / "models" / "cost", models)
    active = (models / "ACTIVE").read_text().strip()
    before = _files(models / active)
    assert train_cost.main(["--models-dir", str(models), "--version", active, "--docs", ""]) == 2
    assert f"version {active} exists" in capsys.readouterr().err
    assert _files(models / active) == before and sorted(p.name for p in models.iterdir()) == sorted(
        p.name for p in (REPO / "models" / "cost").iterdir())
    with pytest.raises(SystemExit, match="2"):
        train_cost.main(["--models-dir", str(models), "--trees", "0", "--docs", ""])
    assert "argument --trees: must be in (0, 1], not 0" in capsys.readouterr().err


def test_migrations_the_advisor_aborted_are_censored_and_unmeasured_figures_unknown(tmp_path: Path) -> None:
    exported = tmp_path / "outcomes.csv"
    # ... and one reconciled after a restart, its downtime never measured (written empty: unknown, not 0)
    pd.DataFrame({"migration_id": ["done", "stopped", "broke", "reconciled"], "technique": "precopy",
                  "vm_memory_mib": 1024.0, "dirty_rate_pages_per_s": 2560.0, "available_bandwidth_mbps": 800.0,
                  "max_bandwidth_mib_s": 100.0, "total_time_ms": [12_000.0, 30_000.0, 100.0, 14_000.0],
                  "downtime_ms": [40.0, None, None, None], "transferred_kib": [1e6, 3e6, 0.0, 1e6], "source": "lab",
                  "outcome": ["completed", "aborted", "failed", "completed"]}).to_csv(exported, index=False)
    frame = load_outcomes(exported)
    assert list(frame["migration_id"]) == ["done"] and list(frame["outcome"]) == ["completed"]


def test_outcomes_on_a_profile_the_learned_model_does_not_know_are_left_to_that_profile(tmp_path: Path) -> None:
    exported = tmp_path / "outcomes.csv"
    pd.DataFrame({"migration_id": ["on-lab", "on-rig2"], "technique": "precopy", "vm_memory_mib": 1024.0,
                  "dirty_rate_pages_per_s": 2560.0, "available_bandwidth_mbps": 800.0, "max_bandwidth_mib_s": 100.0,
                  "total_time_ms": 12_000.0, "downtime_ms": 40.0, "transferred_kib": 1e6, "source": ["lab", "rig2"],
                  "outcome": "completed"}).to_csv(exported, index=False)
    assert list(load_outcomes(exported)["migration_id"]) == ["on-lab"]


def test_a_downtime_never_measured_is_exported_unknown_and_never_taught(tmp_path: Path) -> None:
    cost = MigrationCost(Technique.PRECOPY, Interval(1, 2, 3), Interval(1, 2, 3), Interval(1, 2, 3), True,
                         ModelRef("test", "0"))
    base = MigrationRecord("op", "rec", "vm1", "a", "b", MigrationParameters(Technique.PRECOPY, 100, 300, None, 0),
                           cost, 0.0, phase=Phase.SUCCEEDED, inputs=MigrationInputs(1024, 10, 100, 100))
    measured = replace(base, operation_id="measured",
                       outcome=MigrationResult(True, total_time_ms=12_000, downtime_ms=40, transferred_mib=900))
    # as the executor records a migration it reconciled after a restart: final figures from the last poll only
    reconciled = replace(base, operation_id="reconciled",
                         outcome=MigrationResult(True, total_time_ms=14_000, transferred_mib=950))
    rows = [outcome_row(r) for r in (measured, reconciled)]
    assert [row["downtime_ms"] for row in rows if row] == [40, None]
    exported = tmp_path / "outcomes.csv"
    pd.DataFrame(rows).to_csv(exported, index=False)
    assert list(load_outcomes(exported)["migration_id"]) == ["measured"]


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
