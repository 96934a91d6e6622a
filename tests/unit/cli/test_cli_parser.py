"""The command line's parser: fast to start, each command's own usage on a mistake, moves numbered from 1."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from advisor.cli.main import HELP, main, parser

HEAVY = ("grpc", "google.protobuf", "numpy", "pandas", "lightgbm", "numba", "scipy", "advisor.app",
         "advisor.api.client", "advisor.config")


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_nothing_heavy(flag: str) -> None:
    probe = (f"import sys\nfrom advisor.cli import main\ntry:\n    main([{flag!r}])\nexcept SystemExit:\n    pass\n"
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_the_top_level_help_is_the_same_whether_commands_are_built_or_not() -> None:
    lazy, complete = parser().format_help(), parser(complete=True).format_help()
    assert lazy == complete  # HELP says of each command what its own parser says
    assert all(f"    {name}" in lazy for name in HELP)


@pytest.mark.parametrize(("argv", "usage"), [
    (["recs", "list", "--bogus"], "usage: advisor recs list"),
    (["hosts", "--nope"], "usage: advisor hosts"),
    (["plan", "drain", "hv-a", "--max-moves", "2", "--wat"], "usage: advisor plan drain"),
    (["tokens", "list", "--data-dir", "x", "--extra"], "usage: advisor tokens list"),
])
def test_a_bad_flag_shows_the_usage_of_its_subcommand(argv: list[str], usage: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(usage) and "unrecognized arguments" in err


@pytest.mark.parametrize("command", [["recs", "execute", "r1"], ["migrate", "execute", "r1"]])
def test_moves_are_given_from_1_and_sent_as_the_api_index_from_0(command: list[str],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*command, "--move", "2"]
    assert parser(argv).parse_args(argv).move == 1
    assert parser(command).parse_args(command).move == 0  # the default: the first move
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit):
            main([*command, "--move", bad])
        assert "numbered from 1" in capsys.readouterr().err or bad == "two"


@pytest.mark.parametrize(("argv", "said"), [
    # beyond what the API's fields hold: protobuf's "Value out of range" traceback before the advisor was asked
    (["plan", "rebalance", "--max-moves", "-1", "--dry-run", "--json"], "--max-moves: must be from 0 to 4294967295"),
    (["plan", "drain", "h", "--max-moves", "99999999999"], "--max-moves: must be from 0 to 4294967295"),
    (["recs", "execute", "r1", "--move", "99999999999"], "--move: moves are numbered from 1 to 4294967296"),
    (["migrate", "execute", "r1", "--move", "4294967297"], "--move: moves are numbered from 1 to 4294967296"),
    (["recs", "list", "--limit", "99999999999"], "--limit: must be from 1 to 4294967295"),
    (["recs", "history", "--limit", "0"], "--limit: must be from 1 to 4294967295"),
    (["recommend", "v", "--deadline-ms", "nan"], "--deadline-ms: must be a finite number, at least 0"),
    (["predict", "vm", "v", "--dirty-rate-mib-s", "-1"], "--dirty-rate-mib-s: must be a finite number, at least 0"),
    (["plan", "consolidate", "--max-downtime-ms", "inf"], "--max-downtime-ms: must be a finite number, at least 0"),
    (["automation", "set", "c", "--level", "full", "--min-benefit-over-cost", "1e999"],
     "--min-benefit-over-cost: must be a finite number"),
])
def test_a_number_out_of_range_is_bad_usage(argv: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(f"usage: advisor {argv[0]}") and said in err


@pytest.mark.parametrize(("argv", "attr", "value"), [
    (["plan", "rebalance", "--max-moves", "4294967295"], "max_moves", 4294967295),
    (["plan", "rebalance", "--max-moves", "0"], "max_moves", 0),
    (["recs", "execute", "r1", "--move", "4294967296"], "move", 4294967295),
    (["recommend", "v", "--deadline-ms", "0"], "deadline_ms", 0.0),
])
def test_a_number_in_range_is_taken(argv: list[str], attr: str, value: float) -> None:
    assert getattr(parser(argv).parse_args(argv), attr) == value


@pytest.mark.parametrize("command", [["tokens", "list"], ["tokens", "revoke", "x"], ["outcomes", "export"],
                                     ["ui"]])
def test_a_command_on_the_database_needs_a_data_dir_or_a_database_url(
        command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADVISOR_DATABASE_URL", raising=False)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "--data-dir" in err and ("--database-url" in err or "--base-url" in err)


def _commands(command: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, set[str]]]:
    """Every command to run ("recs list"), with its options."""
    subcommands = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield " ".join(path), {o for a in command._actions for o in a.option_strings}
    for action in subcommands:
        for name, sub in action.choices.items():
            yield from _commands(sub, (*path, name))


def test_every_command_that_talks_to_the_advisor_prints_json_and_docs_name_the_others() -> None:
    commands = dict(_commands(parser(complete=True)))
    assert all("--json" in options for options in commands.values() if "--server" in options)
    without = {name for name, options in commands.items() if "--json" not in options}
    assert without == {"serve", "demo", "predict cost", "lab up", "lab status", "lab down", "tokens create",
                       "tokens revoke", "ui", "outcomes export", "backup", "restore"}
    docs = " ".join((Path(__file__).parents[3] / "docs" / "cli.md").read_text().split())  # one line
    said = docs.split("and have none: ", 1)[1].split(");", 1)[0]
    assert said == ("`serve`, `demo`, `predict cost`, `lab up|status|down`, `tokens create|revoke`, "
                                       "`ui`, `outcomes export`, `backup`, `restore`")
