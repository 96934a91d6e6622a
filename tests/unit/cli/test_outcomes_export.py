"""`advisor outcomes export`: a header even without rows (the retraining job reads the columns), and a data
directory without a database refused rather than given an empty one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from advisor.app import local_stores
from advisor.cli.main import main
from advisor.domain.migration import MigrationResult, Phase
from advisor.features.dataset import OUTCOME_ROW_COLUMNS, outcome_row
from tests.unit.features.test_outcome_rows import BASE


@pytest.fixture(autouse=True)
def _sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADVISOR_DATABASE_URL", raising=False)


def test_the_columns_are_those_of_a_row() -> None:
    row = outcome_row(replace(BASE, phase=Phase.SUCCEEDED, outcome=MigrationResult(True, total_time_ms=1)))
    assert row is not None and tuple(row) == OUTCOME_ROW_COLUMNS


@pytest.mark.parametrize("to_stdout", [False, True])
def test_no_migrations_is_a_header_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         to_stdout: bool) -> None:
    with local_stores(tmp_path):
        pass  # an advisor's database that executed nothing yet
    out = tmp_path / "out.csv"
    assert main(["outcomes", "export", "--data-dir", str(tmp_path), "--output", "-" if to_stdout else str(out)]) == 0
    text = capsys.readouterr().out if to_stdout else out.read_text()
    assert text == ",".join(OUTCOME_ROW_COLUMNS) + "\n"
    if not to_stdout:
        assert pd.read_csv(out).empty


@pytest.mark.parametrize("since", ["nan", "inf", "-1", "soon"])
def test_since_must_be_a_time(tmp_path: Path, capsys: pytest.CaptureFixture[str], since: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["outcomes", "export", "--data-dir", str(tmp_path), "--since", since])
    assert exit_.value.code == 2 and "--since" in capsys.readouterr().err


def test_a_data_dir_without_a_database_is_refused_and_nothing_made_or_replaced(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.csv"
    out.write_text("kept\n")
    typo = tmp_path / "nonexist" / "typo"
    assert main(["outcomes", "export", "--data-dir", str(typo), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no advisor database in" in err and str(typo) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "nonexist").exists() and out.read_text() == "kept\n"
