"""`python -m advisor.evaluation simulate ...`: the simulator's command with the `advisor` policy registered.

    python -m advisor.evaluation simulate --trace planetlab --input DAY.csv.gz --policy advisor \
        [--migration-time cloudsim|learned] [--output r.json]

`--migration-time learned` replaces CloudSim's RAM / (BW / 2) by the project's learned cost model (costs.py).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from advisor.evaluation import register


def main(argv: Sequence[str] | None = None) -> int:
    register()
    args = list(sys.argv[1:] if argv is None else argv)
    learned = False
    if "--migration-time" in args:
        k = args.index("--migration-time")
        choice = args[k + 1] if k + 1 < len(args) else ""
        if choice not in ("cloudsim", "learned"):
            print("advisor simulate: error: --migration-time must be cloudsim or learned", file=sys.stderr)
            return 2
        learned = choice == "learned"
        del args[k : k + 2]
    from advisor.simulation import cli

    if learned:
        from advisor.evaluation.costs import LearnedMigrationTime, learned_predictor
        from advisor.simulation import engine

        model = LearnedMigrationTime(learned_predictor())
        original = engine.SimulationConfig

        def config(**kwargs: object) -> engine.SimulationConfig:
            return original(**{"migration_time": model, **kwargs})  # type: ignore[arg-type]

        cli.SimulationConfig = config  # type: ignore[assignment,misc]
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
