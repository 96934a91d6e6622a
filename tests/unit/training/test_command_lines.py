"""The training jobs' command lines: a mistake in a flag or a file named is a usage error (exit 2, one line
naming it) before any work, never a traceback or an output refused after minutes of training; '' for the lab's
data means none."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from advisor.features.inputs import INPUT_COLUMNS
from training import collect_lab, cost_data, evaluate_cost, evaluate_policy, few_shot, train_cost
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
                                    (evaluate_policy, "with_predictions", [], 3)):
        seen: dict[str, Any] = {}
        monkeypatch.setattr(module, name, _stop(seen))
        with pytest.raises(Started):
            module.main([*argv, "--lab-data", ""])  # type: ignore[attr-defined]
        assert seen["args"][lab] is None, module


def test_training_on_the_snu_data_alone_is_refused_before_cross_validation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # the SNU runs have no deadline: nothing to learn convergence from, found after the evaluation until now
    monkeypatch.setattr(train_cost, "evaluate", _stop({}))
    assert train_cost.main(["--models-dir", str(tmp_path / "cost"), "--docs", "", "--lab-data", "",
                            "--snu-sample", "0.01"]) == 2
    assert "no migrations with a deadline, converged and not, to learn convergence from" in capsys.readouterr().err


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


@pytest.mark.parametrize("flag", ["--json", "--docs"])
@pytest.mark.parametrize(("output", "why"), [("{tmp}/nodir/out", "{tmp}/nodir/out: no directory {tmp}/nodir"),
                                             ("{tmp}", "{tmp} is a directory")])
def test_evaluate_policy_refuses_an_output_it_cannot_write_before_training(
        flag: str, output: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(evaluate_policy, "with_predictions", _stop({}))
    with pytest.raises(SystemExit) as exit_:
        evaluate_policy.main([flag, output.format(tmp=tmp_path)])
    assert exit_.value.code == 2 and f"argument {flag}: {why.format(tmp=tmp_path)}" in capsys.readouterr().err


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


@pytest.mark.parametrize(("main", "argv", "why"), [
    (few_shot.main, ["--ks", "abc"], "argument --ks: must be a comma list of whole numbers"),
    (few_shot.main, ["--ks", "0,-3"], "argument --ks: k counts migrations: 0 or more, not -3"),
    (few_shot.main, ["--draws", "0"], "argument --draws: must be 1 or more, not 0"),
    (evaluate_cost.main, ["--ks", "abc"], "argument --ks: must be a comma list of whole numbers"),
    (evaluate_cost.main, ["--ks", "5,"], "argument --ks: must be a comma list of whole numbers"),
    (train_cost.main, ["--snu-sample", "0"], "argument --snu-sample: must be in (0, 1], not 0"),
    (train_cost.main, ["--snu-sample", "-1"], "argument --snu-sample: must be in (0, 1], not -1"),
    (train_cost.main, ["--snu-sample", "5"], "argument --snu-sample: must be in (0, 1], not 5"),
    (train_cost.main, ["--trees", "abc"], "argument --trees: must be a number in (0, 1]"),
    (train_cost.main, ["--version", "banana"], "argument --version: version 'banana' must be MAJOR.MINOR.PATCH"),
    (train_cost.main, ["--version", "2.01.0"], "argument --version: version '2.01.0' must be MAJOR.MINOR.PATCH"),
])
def test_a_bad_flag_value_is_a_usage_error_naming_it(main: Callable[[list[str]], int], argv: list[str], why: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and why in err and "Traceback" not in err, err


def test_the_k_and_draw_flags_read_what_they_are_given() -> None:
    assert few_shot.k_list("0,5,10") == [0, 5, 10] and few_shot.draw_count("3") == 3
    assert train_cost.build_parser().parse_args(["--snu-sample", "0.03", "--version", "2.10.0"]).snu_sample == 0.03


@pytest.mark.parametrize(("main", "prog"), [(train_cost.main, "train_cost"), (evaluate_cost.main, "evaluate_cost"),
                                            (evaluate_policy.main, "evaluate_policy"), (few_shot.main, "few_shot")])
def test_help_gives_a_whole_first_sentence_and_the_command_to_run(
        main: Callable[[list[str]], int], prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith(f"usage: python -m training.{prog} ")
    description = " ".join(out.split("\n\n")[1].split())
    assert description.endswith(".") and description == " ".join(main.__globals__["__doc__"].split("\n\n")[0].split())
    lines = out.splitlines()
    for i, line in enumerate(lines):  # every flag says what it is: help beside it, or indented on the next line
        if line.startswith("  --"):
            flag, _, text = line.strip().partition("  ")
            assert text.strip() or re.match(r" {10,}\S", lines[i + 1]), flag


def test_a_dry_run_of_the_lab_collection_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "nodir" / "cl.csv"
    assert collect_lab.main(["--dry-run", "--grid", "tiny", "--output", str(output),
                             "--lab-root", str(tmp_path / "lab")]) == 0
    assert "3 to run" in capsys.readouterr().out and not list(tmp_path.iterdir())  # no nodir/, no cache


def test_a_dry_run_lists_the_failed_points_to_retry_without_removing_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "cl.csv"
    point = collect_lab.GRIDS["tiny"](1)[0]
    collect_lab.append(output, {"config_id": point.config_id, "outcome": "failed"})
    recorded = output.read_bytes()
    assert collect_lab.main(["--dry-run", "--retry-failed", "--grid", "tiny", "--output", str(output),
                             "--lab-root", str(tmp_path / "lab")]) == 0
    assert "3 to run" in capsys.readouterr().out and output.read_bytes() == recorded


def test_a_memory_size_no_point_of_the_grid_has_is_refused_saying_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert collect_lab.main(["--dry-run", "--grid", "tiny", "--memory", "999", "--output", str(tmp_path / "cl.csv"),
                             "--lab-root", str(tmp_path / "lab")]) == 2
    assert "--memory 999: no point of grid tiny has that memory (it has 128 MiB)" in capsys.readouterr().err
