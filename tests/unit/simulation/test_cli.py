"""`python -m advisor.simulation.cli simulate`: JSON result, and one line with exit code 2 on bad input, checked
before the day is simulated."""

from __future__ import annotations

import json

import pytest

from advisor.simulation import cli
from advisor.simulation.cli import main
from tests.unit.simulation.conftest import DATA

BITBRAINS = DATA / "bitbrains" / "rnd-2013-7.csv.gz"


def test_simulate_writes_the_result(planetlab_day, tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(
        [
            "simulate",
            "--trace",
            "planetlab",
            "--input",
            str(planetlab_day),
            "--policy",
            "thr-mmt",
            "--hours",
            "1",
            "--output",
            str(out),
            "--json",
            "--progress",
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    for key in (
        "energy_kwh",
        "slatah",
        "pdm",
        "slav",
        "esv",
        "migrations",
        "policy",
        "trace",
        "day",
        "hosts",
        "vms",
        "wall_time_s",
    ):
        assert key in result
    assert (result["policy"], result["trace"], result["day"], result["hosts"], result["vms"]) == (
        "thr-mmt",
        "planetlab",
        "20110303",
        800,
        1052,
    )
    assert (result["hours"], result["day_hours"]) == (1, 24)  # a part of the day is not reported as the day
    assert result["migrations"] > 0 and result["energy_kwh"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace", "planetlab", "--input", "/nonexistent.csv.gz"], "no such file"),
        (["--trace", "planetlab", "--input", "{dir}"], "is a directory, not a trace file"),
        (["--trace", "bitbrains", "--input", "{day}"], "not a Bitbrains trace"),
        (["--trace", "planetlab", "--input", "{day}", "--policy", "nope"], "unknown policy 'nope'"),
        (["--trace", "planetlab", "--input", "{day}", "--hours", "0.01"], "--hours must be between 0.0833333 and 24"),
        (["--trace", "planetlab", "--input", "{day}", "--day", "5"], "--day is for Bitbrains"),
        (["--trace", "bitbrains", "--input", str(BITBRAINS), "--day", "30"], "has days 0 to 29"),
        # too few hosts is bad input, not a broken policy: said before the run, with the least a bound allows ...
        (["--trace", "planetlab", "--input", "{day}", "--hosts", "50", "--policy", "none"],
         "--hosts 50 is too few for the 1052 VMs of 20110303: they need at least 446"),
        (["--trace", "planetlab", "--input", "{day}", "--output", "/nonexistent/r.json"], "cannot write"),
        (["--trace", "planetlab", "--input", "{day}", "--output", "{dir}"], "it is a directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_simulating(planetlab_day, capsys, monkeypatch, args, message):
    def never(*_args, **_kwargs):
        raise AssertionError("simulated with bad input")

    monkeypatch.setattr(cli, "simulate", never)
    args = [a.replace("{day}", str(planetlab_day)).replace("{dir}", str(planetlab_day.parent)) for a in args]
    code = main(["simulate", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and err.startswith("advisor simulate: error:")


def test_too_few_hosts_found_by_the_placement_is_exit_2(planetlab_day, capsys):
    # more than the bound, and still VMs left out at t = 0 (before the first update)
    args = ["--trace", "planetlab", "--input", str(planetlab_day), "--hosts", "500", "--policy", "none"]
    assert main(["simulate", *args, "--hours", "1"]) == 2
    assert "--hosts 500 is too few for this trace: none: no host for 26 VMs at t=0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--hours", "nan"),
        ("--hours", "inf"),
        ("--hours", "0"),
        ("--hours", "-1"),
        ("--hours", "25"),
        ("--hosts", "1000000000"),
        ("--hosts", "0"),
        ("--hosts", "-3"),
        ("--day", "-1"),
    ],
)
def test_a_bad_number_is_refused_by_the_parser(planetlab_day, capsys, option, value):
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--trace", "planetlab", "--input", str(planetlab_day), f"{option}={value}"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {option}:" in err.splitlines()[-1] and "Traceback" not in err


def test_the_summary_says_the_hours_and_wall_clock_and_dash_is_stdout(planetlab_day, tmp_path, capsys, monkeypatch):
    args = ["simulate", "--trace", "planetlab", "--input", str(planetlab_day), "--policy", "none", "--hours", "2"]
    assert main(args) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("none on planetlab 20110303, first 2 h of 24: ") and " s wall-clock)" in line
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--output", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["hours"] == 2  # the JSON on stdout, no file named '-'
    assert not (tmp_path / "-").exists()
