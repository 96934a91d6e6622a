"""`python -m advisor.simulation.cli simulate`: JSON result, and one line with exit code 2 on bad input."""

from __future__ import annotations

import json

import pytest

from advisor.simulation.cli import main


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
    assert result["migrations"] > 0 and result["energy_kwh"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace", "planetlab", "--input", "/nonexistent.csv.gz"], "no such file"),
        (["--trace", "bitbrains", "--input", "{day}"], "not a Bitbrains trace"),
        (["--trace", "planetlab", "--input", "{day}", "--policy", "nope"], "unknown policy 'nope'"),
        (["--trace", "planetlab", "--input", "{day}", "--hours", "99"], "--hours must be between"),
        (["--trace", "planetlab", "--input", "{day}", "--hosts", "0"], "--hosts must be at least 1"),
        (
            ["--trace", "planetlab", "--input", "{day}", "--hours", "1", "--output", "/nonexistent/r.json"],
            "cannot write",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(planetlab_day, capsys, args, message):
    code = main(["simulate", *[a.replace("{day}", str(planetlab_day)) for a in args]])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and err.startswith("advisor simulate: error:")
