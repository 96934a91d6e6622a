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

from advisor.evaluation import register


def _learned(args: argparse.Namespace) -> int:
    from advisor.evaluation.costs import LearnedMigrationTime, learned_predictor
    from advisor.simulation import (
        SimulationConfig,
        SimulationResult,
        load_planetlab,
        make_policy,
        planetlab_datacenter,
        policy_info,
        simulate,
    )
    from advisor.simulation.cli import UsageError, report

    if args.trace != "planetlab":
        print("advisor simulate: error: --migration-time learned is for PlanetLab traces", file=sys.stderr)
        return 2
    model = LearnedMigrationTime(learned_predictor())

    def run() -> tuple[SimulationResult, dict[str, str]]:
        try:
            policy_info(args.policy)
        except KeyError as exc:
            raise UsageError(str(exc)) from None
        trace = load_planetlab(args.input)
        if args.hours is not None:
            trace = trace.head(max(1, round(args.hours * 3600 / trace.interval_s)))
        result = simulate(trace, planetlab_datacenter(args.hosts or 800), make_policy(args.policy),
                          SimulationConfig(migration_time=model))
        return result, {"migration_time": model.name}

    return report(args, run, lambda result: (
        f"{result.policy} on {result.day} ({model.name}): {result.energy_kwh:.2f} kWh, {result.migrations} "
        f"migrations, SLATAH {result.slatah:.4%}, PDM {result.pdm:.4%}, ESV {result.esv:.3e}"
    ))


def main(argv: Sequence[str] | None = None) -> int:
    register()
    from advisor.simulation import cli

    args = list(sys.argv[1:] if argv is None else argv)
    model = "cloudsim"
    if "--migration-time" in args:
        k = args.index("--migration-time")
        model = args[k + 1] if k + 1 < len(args) else ""
        del args[k : k + 2]
    if model not in ("cloudsim", "learned"):
        print("advisor simulate: error: --migration-time must be cloudsim or learned", file=sys.stderr)
        return 2
    if model == "cloudsim":
        return cli.main(args)
    parser = argparse.ArgumentParser(prog="python -m advisor.evaluation")
    cli.add_simulate_command(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return _learned(parser.parse_args(args))


if __name__ == "__main__":
    sys.exit(main())
