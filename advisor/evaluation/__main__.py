"""`python -m advisor.evaluation simulate ...`: the simulator's command with the `advisor` policy registered and a
choice of migration-time model.

    python -m advisor.evaluation simulate --trace planetlab --input DAY.csv.gz --policy advisor \
        [--migration-time cloudsim|learned] [--hours H] [--output r.json] [--json]

`--migration-time learned` replaces CloudSim's RAM / (BW / 2) by the project's learned cost model (costs.py) for
every policy. Without it, this is exactly `advisor simulate` (the simulator's own command runs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from advisor.evaluation import register

if TYPE_CHECKING:
    from advisor.simulation.migration import MigrationTimeModel


def _learned() -> MigrationTimeModel:
    from advisor.evaluation.costs import LearnedMigrationTime, learned_predictor

    return LearnedMigrationTime(learned_predictor())


def main(argv: Sequence[str] | None = None) -> int:
    register()
    from advisor.simulation import cli

    # the simulator's own command and checks, one option more: both models go through the same arguments
    parser = argparse.ArgumentParser(prog="python -m advisor.evaluation",
                                     description="Trace-driven simulation with the `advisor` policy registered")
    simulate = cli.add_simulate_command(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    simulate.add_argument("--migration-time", choices=("cloudsim", "learned"), default="cloudsim",
                          help="cloudsim: RAM / (BW / 2), as CloudSim; learned: the project's learned cost model, "
                               "for every policy (PlanetLab only) (default cloudsim)")
    args = parser.parse_args(argv)
    if args.migration_time == "cloudsim":
        return cli.cmd_simulate(args)
    if args.trace != "planetlab":
        simulate.error("--migration-time learned is for PlanetLab traces")
    return cli.cmd_simulate(args, migration_time=_learned)


if __name__ == "__main__":
    sys.exit(main())
