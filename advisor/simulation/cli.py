"""`advisor simulate`: replay a trace day through a consolidation policy and report CloudSim's metrics.

The main CLI adds it with `add_simulate_command`; `python -m advisor.simulation.cli` runs it alone:

    advisor simulate --trace planetlab --input DAY.csv.gz --policy lr-mmt --output r.json

Exit codes: 0 success, 1 the simulation failed (a policy broke the contract), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from advisor.simulation.datacenter import HostType, bitbrains_datacenter, planetlab_datacenter
from advisor.simulation.engine import NoHostError, SimulationConfig, SimulationError, simulate
from advisor.simulation.metrics import SimulationResult
from advisor.simulation.migration import MigrationTimeModel
from advisor.simulation.policies import make_policy, policy_info, policy_names
from advisor.simulation.traces import (
    Trace,
    TraceError,
    bitbrains_day,
    bitbrains_day_count,
    load_planetlab,
    read_bitbrains,
)

PROG = "advisor simulate"
# Both traces are read as days of 288 x 5 minutes.
DAY_HOURS = 24.0
# Far beyond any trace here (1,052 PlanetLab VMs, 500 Bitbrains VMs) and still a few MB of per-host arrays: a
# larger count is a typo, and would fail allocating them.
MAX_HOSTS = 100_000


class UsageError(Exception):
    """Bad input: reported in one line with exit code 2."""


def _hours(text: str) -> float:
    """An argparse type: a finite number of hours in (0, 24] (the trace's own length is checked once read)."""
    try:
        hours = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of hours (got {text!r})") from None
    if not (math.isfinite(hours) and 0 < hours <= DAY_HOURS):
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {DAY_HOURS:g} (got {text!r})")
    return hours


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a whole number (got {text!r})") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high} (got {number})")
        return number

    return parse


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
    p.add_argument("--output", type=Path, help="write the result as JSON to this file (-: standard output, "
                   "instead of the summary)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout instead of a summary")
    p.add_argument("--progress", action="store_true", help="report progress on stderr")
    p.add_argument("--hosts", type=_whole(1, MAX_HOSTS),
                   help=f"number of hosts, at most {MAX_HOSTS:,} (default 800 for PlanetLab, 200 for Bitbrains)")
    p.add_argument("--day", type=_whole(0, 10_000), help="Bitbrains: which day of the file, from 0 (default 0); a "
                   "PlanetLab file is one day")
    p.add_argument("--hours", type=_hours, help=f"simulate only the first HOURS of the day (at most {DAY_HOURS:g})")
    p.add_argument(
        "--ram",
        choices=("auto", "cloudsim", "enforce"),
        default="auto",
        help="RAM as a placement constraint: cloudsim ignores it after t=0 as CloudSim does, enforce checks it "
        "(auto: cloudsim for PlanetLab, enforce for Bitbrains)",
    )
    p.set_defaults(func=cmd_simulate)
    return p


def _check_output(output: Path | None) -> None:
    """Refuse an --output that cannot be written before a day is simulated, not after."""
    if output is None or str(output) == "-":
        return
    if output.is_dir():
        raise UsageError(f"cannot write {output}: it is a directory")
    parent = output.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write {output}: no directory {parent}")
    if not os.access(parent, os.W_OK | os.X_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise UsageError(f"cannot write {output}: permission denied")


def _load(args: argparse.Namespace) -> tuple[Trace, float]:
    """The trace to simulate (its first --hours) and the hours of the whole day."""
    if args.trace == "planetlab":
        if args.day is not None:
            raise UsageError("--day is for Bitbrains: a PlanetLab file is one day")
        trace = load_planetlab(args.input)
    else:
        frame = read_bitbrains(args.input)
        day, days = args.day or 0, bitbrains_day_count(frame)
        if day >= days:
            raise UsageError(f"--day {day}: {args.input} has days 0 to {days - 1}")
        trace = bitbrains_day(frame, day)
    whole = trace.duration_s / 3600
    if args.hours is not None:
        samples = round(args.hours * 3600 / trace.interval_s)
        if not 1 <= samples <= trace.n_samples:
            raise UsageError(f"--hours must be between {trace.interval_s / 3600:g} and {whole:g}")
        trace = trace.head(samples)
    return trace, whole


def hosts_needed(trace: Trace, types: Sequence[HostType]) -> int | None:
    """A lower bound on the hosts (of `types`, alternating) that can hold the trace's VMs at t = 0, when each
    requests its full MIPS, RAM and bandwidth; None when a VM fits no host type. For each set of types, the VMs that
    fit only those must fit in their total capacity (a 2,000 MIPS PlanetLab VM only on the G5s)."""
    pe_mips = np.array([t.pe_mips for t in types])
    capacity = np.array([[t.total_mips, t.ram_mb, t.bw_mbit_s] for t in types])  # (types, resources)
    demand = np.column_stack([trace.vm_mips * trace.vm_pes, trace.vm_ram_mb, trace.vm_bw_mbit_s])  # (VMs, resources)
    fits = (trace.vm_mips[:, None] <= pe_mips) & (demand[:, None, :] <= capacity).all(axis=2)  # (VMs, types)
    if not fits.any(axis=1).all():
        return None
    k = len(types)

    def enough(n: int) -> bool:
        counts = np.array([(n - j + k - 1) // k for j in range(k)])  # host i has type i % k
        for subset in range(1, 1 << k):
            inside = np.array([(subset >> j) & 1 == 1 for j in range(k)])
            only = ~(fits & ~inside).any(axis=1)  # VMs that fit no type outside the subset
            if (demand[only].sum(axis=0) > (counts[inside, None] * capacity[inside]).sum(axis=0)).any():
                return False
        return True

    low, high = 1, trace.n_vms * k  # enough hosts for a host of a fitting type per VM
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle + 1, high)
    return low


def _progress(done: int, total: int) -> None:
    if done == total or done % max(1, total // 20) == 0:
        print(f"{PROG}: {done}/{total} updates", file=sys.stderr, flush=True)


def cmd_simulate(args: argparse.Namespace, migration_time: Callable[[], MigrationTimeModel] | None = None) -> int:
    """Run `simulate`; `migration_time` builds another migration-time model than CloudSim's (after the checks)."""
    planetlab = args.trace == "planetlab"
    check_ram = args.ram == "enforce" or (args.ram == "auto" and not planetlab)

    def run() -> tuple[SimulationResult, dict[str, object]]:
        try:
            policy_info(args.policy)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        _check_output(args.output)
        trace, whole = _load(args)
        n_hosts = args.hosts or (800 if planetlab else 200)
        datacenter = planetlab_datacenter(n_hosts) if planetlab else bitbrains_datacenter(n_hosts)
        needed = hosts_needed(trace, datacenter.types)
        if needed is None:
            raise UsageError(f"{args.input}: a VM is larger than any host "
                             f"({', '.join(t.name for t in datacenter.types)})")
        if n_hosts < needed:
            raise UsageError(f"--hosts {n_hosts} is too few for the {trace.n_vms} VMs of {trace.day}: they need at "
                             f"least {needed} at t=0 (their MIPS, RAM and bandwidth)")
        policy = make_policy(args.policy, check_ram=check_ram) if check_ram else make_policy(args.policy)
        extra: dict[str, object] = {"hours": trace.duration_s / 3600, "day_hours": whole}
        config = SimulationConfig(remove_idle_vms=planetlab)
        if migration_time is not None:
            model = migration_time()
            config = SimulationConfig(remove_idle_vms=planetlab, migration_time=model)
            extra["migration_time"] = str(getattr(model, "name", model))
        try:
            result = simulate(trace, datacenter, policy, config, _progress if args.progress else None)
        except NoHostError as exc:  # placement leaves gaps the bound above does not see: still too few hosts
            raise UsageError(f"--hosts {n_hosts} is too few for this trace: {exc}") from None
        return result, {**extra, "ram": "enforce" if check_ram else "cloudsim"}

    return report(args, run, _summary)


def _summary(result: SimulationResult, extra: dict[str, object]) -> str:
    """One line: what ran on what part of which day, the metrics, and what it took."""
    hours, whole = extra["hours"], extra["day_hours"]
    span = f"all {whole:g} h" if hours == whole else f"first {hours:g} h of {whole:g}"
    model = f"; migration time: {extra['migration_time']}" if "migration_time" in extra else ""
    return (
        f"{result.policy} on {result.trace} {result.day}, {span}: {result.energy_kwh:.2f} kWh, "
        f"{result.migrations} migrations, SLATAH {result.slatah:.4%}, PDM {result.pdm:.4%}, "
        f"ESV {result.esv:.3e} ({result.hosts} hosts, {result.vms} VMs, {result.wall_time_s:.1f} s wall-clock"
        f"{model})"
    )


def report(
    args: argparse.Namespace,
    run: Callable[[], tuple[SimulationResult, dict[str, object]]],
    summary: Callable[[SimulationResult, dict[str, object]], str],
) -> int:
    """Run one simulation and say how it went: the result as JSON (with `input` and what `run` adds) to --output
    (`-`: stdout) and, with --json, on stdout, else its `summary`. Exit code 2 for bad input, 1 for a simulation that
    failed."""
    try:
        result, extra = run()
    except (TraceError, UsageError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"{PROG}: failed: {exc}", file=sys.stderr)
        return 1
    text = json.dumps({**result.as_dict(), "input": str(args.input), **extra}, indent=2)
    to_stdout = args.output is not None and str(args.output) == "-"
    if args.output is not None and not to_stdout:
        try:
            args.output.write_text(text + "\n")
        except OSError as exc:
            print(f"{PROG}: error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    print(text if args.json or to_stdout else summary(result, extra))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="advisor", description="Live-migration advisor: trace-driven simulation")
    add_simulate_command(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
