"""`advisor outcomes export`'s rows (advisor.features.dataset.outcome_row): a migration's host profile as its
inputs store it, and a value not measured written empty, never 0 or an assumption."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pandas as pd

from advisor.domain.migration import MigrationRecord, MigrationResult, Phase
from advisor.domain.model import MigrationInputs, MigrationParameters, Technique
from advisor.features.dataset import outcome_row
from tests.support.values import COST
from training.cost_data import load_outcomes

BASE = MigrationRecord("op", "rec", "vm1", "a", "b", MigrationParameters(Technique.PRECOPY, 100, 300, None, 0), COST,
                       0.0, inputs=MigrationInputs(1024, 10, 100, 100, host_profile="lab"))


def exported(*records: MigrationRecord) -> pd.DataFrame:
    """The rows as the export writes them and a reader reads them back."""
    text = io.StringIO()
    pd.DataFrame([row for r in records if (row := outcome_row(r)) is not None]).to_csv(text, index=False)
    return pd.read_csv(io.StringIO(text.getvalue()), keep_default_na=False, dtype=str).set_index("migration_id")


def test_unmeasured_figures_are_empty_and_measured_ones_kept() -> None:
    done = replace(BASE, operation_id="done", phase=Phase.SUCCEEDED,
                   outcome=MigrationResult(True, total_time_ms=12_000, downtime_ms=40, transferred_mib=900))
    never_started = replace(BASE, operation_id="never-started", phase=Phase.FAILED,
                            outcome=MigrationResult(False, error="cannot reach the target"))
    # reconciled after a restart without a poll: no figure was read
    reconciled = replace(BASE, operation_id="reconciled", phase=Phase.SUCCEEDED,
                         outcome=MigrationResult(True, total_time_ms=0.0))
    table = exported(done, never_started, reconciled)
    figures = ["total_time_ms", "downtime_ms", "transferred_kib"]
    assert table.loc["done", figures].tolist() == ["12000.0", "40.0", "921600.0"]
    assert table.loc["never-started", figures].tolist() == ["", "", ""]
    assert table.loc["reconciled", figures].tolist() == ["", "", ""]


def test_a_row_carries_the_host_profile_its_inputs_store() -> None:
    ended = replace(BASE, phase=Phase.SUCCEEDED, outcome=MigrationResult(True, total_time_ms=1, transferred_mib=1))
    unlabelled = replace(ended, operation_id="unlabelled", inputs=MigrationInputs(1024, 10, 100, 100))
    table = exported(ended, unlabelled)
    assert table.loc["op", ["host_profile", "source"]].tolist() == ["lab", "lab"]
    # hosts without an advisor.profile label: none stored; the model was asked for its default
    assert table.loc["unlabelled", ["host_profile", "source"]].tolist() == ["", "snu"]


def test_an_assumed_dirty_rate_is_exported_empty_and_not_taught(tmp_path: Path) -> None:
    ended = replace(BASE, phase=Phase.SUCCEEDED, outcome=MigrationResult(True, total_time_ms=9000, downtime_ms=30,
                                                                          transferred_mib=800))
    assumed = replace(ended, operation_id="assumed",
                      inputs=MigrationInputs(1024, 100, 100, 100, dirty_rate_known=False, host_profile="lab"))
    table = exported(ended, assumed)
    assert table.loc["op", "dirty_rate_pages_per_s"] == "2560.0"
    assert table.loc["assumed", "dirty_rate_pages_per_s"] == ""
    path = tmp_path / "outcomes.csv"
    table.reset_index().to_csv(path, index=False)
    assert load_outcomes(path)["migration_id"].tolist() == ["op"]  # the measured one only
