"""The training jobs' command lines: a mistake in a flag or a file named is a usage error (exit 2, one line
naming it) before any work, never a traceback or an output refused after minutes of training; '' for the lab's
data means none."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from training import cost_data, evaluate_cost, evaluate_policy, train_cost


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
