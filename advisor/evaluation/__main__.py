"""`python -m advisor.evaluation simulate ...`: the simulator's command with the `advisor` policy registered and a
choice of migration-time model.

    python -m advisor.evaluation simulate --trace planetlab --input DAY.csv.gz --policy advisor \
        [--migration-time cloudsim|learned] [--hours H] [--output r.json] [--json]

`--migration-time learned` replaces CloudSim's RAM / (BW / 2) by the project's learned cost model (costs.py) for
every policy. Without it, this is exactly `advisor simulate` (the simulator's own command runs).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from advisor.evaluation import register


def _learned(args: argparse.Namespace) -> int:
    from advisor.evaluation.costs import LearnedMigrationTime, learned_predictor
    from advisor.simulation import (
        SimulationConfig,
        SimulationError,
        TraceError,
        load_planetlab,
        make_policy,
        planetlab_datacenter,
        policy_info,
        simulate,
    )

    if args.trace != "planetlab":
        print("advisor simulate: error: --migration-time learned is for PlanetLab traces", file=sys.stderr)
        return 2
    try:
        policy_info(args.policy)
        trace = load_planetlab(args.input)
        if args.hours is not None:
            trace = trace.head(max(1, round(args.hours * 3600 / trace.interval_s)))
        model = LearnedMigrationTime(learned_predictor())
        result = simulate(trace, planetlab_datacenter(args.hosts or 800), make_policy(args.policy),
                          SimulationConfig(migration_time=model))
    except (KeyError, TraceError) as exc:
        print(f"advisor simulate: error: {exc}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"advisor simulate: failed: {exc}", file=sys.stderr)
        return 1
    payload = {**result.as_dict(), "input": str(args.input), "migration_time": model.name}
    text = json.dumps(payload, indent=2)
    if args.output is not None:
        args.output.write_text(text + "\n")
    print(text if args.json else
          f"{result.policy} on {result.day} ({model.name}): {result.energy_kwh:.2f} kWh, {result.migrations} "
          f"migrations, SLATAH {result.slatah:.4%}, PDM {result.pdm:.4%}, ESV {result.esv:.3e}")
    return 0


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
