"""`advisor simulate`: replay a trace day through a consolidation policy and report CloudSim's metrics.

The main CLI adds it with `add_simulate_command`; `python -m advisor.simulation.cli` runs it alone:

    advisor simulate --trace planetlab --input DAY.csv.gz --policy lr-mmt --output r.json

Exit codes: 0 success, 1 the simulation failed (a policy broke the contract), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from advisor.simulation.datacenter import bitbrains_datacenter, planetlab_datacenter
from advisor.simulation.engine import SimulationConfig, SimulationError, simulate
from advisor.simulation.metrics import SimulationResult
from advisor.simulation.policies import make_policy, policy_info, policy_names
from advisor.simulation.traces import Trace, TraceError, load_bitbrains, load_planetlab

PROG = "advisor simulate"


class UsageError(Exception):
    """Bad input: reported in one line with exit code 2."""


def add_simulate_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add `simulate` to an argparse subparsers object; it sets `func(args) -> int`."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="replay a PlanetLab or Bitbrains day through a consolidation policy (CloudSim's metrics)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--trace", required=True, choices=("planetlab", "bitbrains"), help="trace format")
    p.add_argument("--input", required=True, type=Path, help="trace file (a PlanetLab day, or the Bitbrains month)")
    p.add_argument("--policy", default="lr-mmt", help=f"one of {', '.join(policy_names())} (default lr-mmt)")
    p.add_argument("--output", type=Path, help="write the result as JSON to this file")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout instead of a summary")
    p.add_argument("--progress", action="store_true", help="report progress on stderr")
    p.add_argument("--hosts", type=int, help="number of hosts (default 800 for PlanetLab, 200 for Bitbrains)")
    p.add_argument("--day", type=int, default=0, help="Bitbrains: which day of the file, from 0 (default 0)")
    p.add_argument("--hours", type=float, help="simulate only the first HOURS of the day")
    p.add_argument(
        "--ram",
        choices=("auto", "cloudsim", "enforce"),
        default="auto",
        help="RAM as a placement constraint: cloudsim ignores it after t=0 as CloudSim does, enforce checks it "
        "(auto: cloudsim for PlanetLab, enforce for Bitbrains)",
    )
    p.set_defaults(func=cmd_simulate)
    return p


def _load(args: argparse.Namespace) -> Trace:
    trace = load_planetlab(args.input) if args.trace == "planetlab" else load_bitbrains(args.input, day=args.day)
    if args.hours is not None:
        samples = round(args.hours * 3600 / trace.interval_s)
        if not 1 <= samples <= trace.n_samples:
            raise UsageError(f"--hours must be between {trace.interval_s / 3600:g} and {trace.duration_s / 3600:g}")
        trace = trace.head(samples)
    return trace


def _progress(done: int, total: int) -> None:
    if done == total or done % max(1, total // 20) == 0:
        print(f"{PROG}: {done}/{total} updates", file=sys.stderr, flush=True)


def cmd_simulate(args: argparse.Namespace) -> int:
    planetlab = args.trace == "planetlab"
    check_ram = args.ram == "enforce" or (args.ram == "auto" and not planetlab)

    def run() -> tuple[SimulationResult, dict[str, str]]:
        try:
            policy_info(args.policy)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        if args.hosts is not None and args.hosts < 1:
            raise UsageError("--hosts must be at least 1")
        trace = _load(args)
        n_hosts = args.hosts or (800 if planetlab else 200)
        datacenter = planetlab_datacenter(n_hosts) if planetlab else bitbrains_datacenter(n_hosts)
        policy = make_policy(args.policy, check_ram=check_ram) if check_ram else make_policy(args.policy)
        config = SimulationConfig(remove_idle_vms=planetlab)
        result = simulate(trace, datacenter, policy, config, _progress if args.progress else None)
        return result, {"ram": "enforce" if check_ram else "cloudsim"}

    return report(args, run, lambda result: (
        f"{result.policy} on {result.trace} {result.day}: {result.energy_kwh:.2f} kWh, "
        f"{result.migrations} migrations, SLATAH {result.slatah:.4%}, PDM {result.pdm:.4%}, "
        f"ESV {result.esv:.3e} ({result.hosts} hosts, {result.vms} VMs, {result.wall_time_s:.1f} s)"
    ))


def report(
    args: argparse.Namespace,
    run: Callable[[], tuple[SimulationResult, dict[str, str]]],
    summary: Callable[[SimulationResult], str],
) -> int:
    """Run one simulation and say how it went: the result as JSON (with `input` and what `run` adds) to --output
    and, with --json, on stdout, else its `summary`. Exit code 2 for bad input, 1 for a simulation that failed."""
    try:
        result, extra = run()
    except (TraceError, UsageError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"{PROG}: failed: {exc}", file=sys.stderr)
        return 1
    text = json.dumps({**result.as_dict(), "input": str(args.input), **extra}, indent=2)
    if args.output is not None:
        try:
            args.output.write_text(text + "\n")
        except OSError as exc:
            print(f"{PROG}: error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    print(text if args.json else summary(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="advisor", description="Live-migration advisor: trace-driven simulation")
    add_simulate_command(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
