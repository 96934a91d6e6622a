"""The training jobs' command lines: a mistake in a flag or a file named is a usage error (exit 2, one line
naming it) before any work, never a traceback or an output refused after minutes of training; '' for the lab's
data means none."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from advisor.features.inputs import INPUT_COLUMNS
from training import cost_data, evaluate_cost, evaluate_policy, train_cost
from training.data import TARGET_COLUMNS


class Started(Exception):
    """Raised where the long work would begin: the command line got that far."""


def _stop(seen: dict[str, Any]) -> Callable[..., Any]:
    def stop(*args: Any) -> Any:
        seen["args"] = args
        raise Started

    return stop


def test_an_empty_lab_data_means_the_snu_data_alone_in_every_job(monkeypatch: pytest.MonkeyPatch) -> None:
    # Path('') is the current directory: read as the lab's file it was an IsADirectoryError
    assert train_cost.build_parser().parse_args(["--lab-data", ""]).lab_data is None
    for module, name, argv, lab in ((evaluate_cost, "load_all", ["--quick"], 1),
                                    (evaluate_policy, "with_predictions", [], 2)):
        seen: dict[str, Any] = {}
        monkeypatch.setattr(module, name, _stop(seen))
        with pytest.raises(Started):
            module.main([*argv, "--lab-data", ""])  # type: ignore[attr-defined]
        assert seen["args"][lab] is None, module


@pytest.mark.parametrize("main", [train_cost.main, evaluate_cost.main, evaluate_policy.main])
@pytest.mark.parametrize("flag", ["--lab-data", "--data"])
def test_a_named_file_that_is_not_there_is_a_usage_error_before_any_work(
        main: Callable[[list[str]], int], flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([flag, str(tmp_path / "nope.csv")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {flag}: {tmp_path / 'nope.csv'} is not a file" in err


def test_a_lab_file_named_to_the_loaders_must_be_there(tmp_path: Path) -> None:
    # it was left out silently: a typo trained on the SNU data alone
    with pytest.raises(FileNotFoundError):
        cost_data.load_all(lab=tmp_path / "nope.csv")


def _header_only(path: Path) -> Path:
    path.write_text(",".join(["migration_id", *INPUT_COLUMNS, "outcome", *TARGET_COLUMNS]) + "\n")
    return path


@pytest.mark.parametrize(("content", "why"), [
    ("", "empty, not even a header"),
    ("migration_id,technique\nm1,precopy\n", "missing columns ['vm_memory_mib'"),
    (",".join(["migration_id", *INPUT_COLUMNS, *TARGET_COLUMNS]) + "\n", "missing columns ['outcome']"),
    (None, "is not a file"),
])
def test_an_outcomes_file_that_cannot_be_read_is_refused_naming_it_before_training(
        content: str | None, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(train_cost, "load_all", _stop({}))
    outcomes = tmp_path / "outcomes.csv"
    if content is None:
        outcomes.mkdir()
    else:
        outcomes.write_text(content)
    try:
        code = train_cost.main(["--models-dir", str(tmp_path / "cost"), "--docs", "", "--outcomes", str(outcomes)])
    except SystemExit as e:  # a directory is refused by argparse
        code = int(str(e.code))
    err = capsys.readouterr().err
    assert code == 2 and str(outcomes) in err and why in err.replace(f"{outcomes} ", ""), err


def test_an_outcomes_export_of_only_its_header_is_accepted_and_said_to_teach_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(train_cost, "load_all", _stop({}))
    outcomes = _header_only(tmp_path / "outcomes.csv")
    with pytest.raises(Started):
        train_cost.main(["--models-dir", str(tmp_path / "cost"), "--docs", "", "--outcomes", str(outcomes)])
    assert "no executed migration to learn from" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "why"), [
    (["--models-dir", "{file}"], "{file} is not a directory"),
    (["--models-dir", "{file}/cost"], "{file} is not a directory"),
    (["--docs", "{tmp}/nodir/cost-model.md"], "no directory {tmp}/nodir"),
    (["--docs", "{tmp}"], "{tmp} is a directory"),
])
def test_train_cost_refuses_an_output_it_cannot_write_before_training(
        argv: list[str], why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(train_cost, "load_all", _stop({}))
    file = tmp_path / "file.csv"
    file.write_text("x\n")
    names = {"file": file, "tmp": tmp_path}
    code = train_cost.main(["--models-dir", str(tmp_path / "cost"), "--docs", "",
                            *(a.format(**names) for a in argv)])
    assert code == 2 and why.format(**names) in capsys.readouterr().err


@pytest.mark.parametrize(("page", "why"), [
    (None, "cannot read"),
    ("no markers\n", "the page must hold one"),
])
def test_evaluate_cost_refuses_a_page_it_cannot_rewrite_before_evaluating(
        page: str | None, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(evaluate_cost, "load_all", _stop({}))
    docs = tmp_path / "learning.md"
    if page is not None:
        docs.write_text(page)
    with pytest.raises(SystemExit) as exit_:
        evaluate_cost.main(["--quick", "--docs", str(docs)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "argument --docs: " in err and why in err
