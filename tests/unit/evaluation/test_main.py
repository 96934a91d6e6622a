"""`python -m advisor.evaluation simulate`: the simulator's command, its checks and summary, for both migration-time
models; `--migration-time` is one of its options."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.evaluation.__main__ import main


def _simulate(day: Path, *more: str) -> list[str]:
    return ["simulate", "--trace", "planetlab", "--input", str(day), "--policy", "lr-mmt", *more]


@pytest.mark.parametrize("bad", [["--hosts", "0"], ["--hosts=-3"], ["--hours", "0"], ["--hours", "nan"],
                                 ["--migration-time=fast"], ["--trace", "bitbrains"], ["--day", "5"]])
def test_the_learned_model_takes_the_same_checks(planetlab_day: Path, capsys: pytest.CaptureFixture[str],
                                                 bad: list[str]) -> None:
    try:
        code = main([*_simulate(planetlab_day, "--migration-time", "learned"), *bad])
    except SystemExit as exit_:  # refused by the parser, with its usage
        code = int(str(exit_.code))
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err.splitlines()[-1] and "Traceback" not in err


def test_an_unknown_policy_is_named_once_quoted(planetlab_day: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*_simulate(planetlab_day, "--migration-time=learned"), "--policy", "nope"]) == 2
    assert "error: unknown policy 'nope'; known:" in capsys.readouterr().err


def test_help_names_the_option_and_the_module(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m advisor.evaluation simulate") and "--migration-time" in out


def test_learned_honours_progress_and_ram_and_summarises_as_the_simulator(
        planetlab_day: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_simulate(planetlab_day, "--migration-time=learned", "--hours", "1", "--progress", "--hosts", "700",
                          "--ram", "enforce")) == 0
    captured = capsys.readouterr()
    assert "11/11 updates" in captured.err
    line = captured.out.strip()
    assert line.startswith("lr-mmt on planetlab 20110303, first 1 h of 24: ")
    assert "(700 hosts, 1052 VMs, " in line and " s wall-clock; migration time: " in line
