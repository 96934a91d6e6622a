"""The `advisor` policy against MFPED on every shared PlanetLab day and every day of the Bitbrains month.

    .venv/bin/python benchmarks/simulate_advisor.py [--planetlab DIR] [--bitbrains FILE] \
        [--planetlab-days D1,D2 | none] [--bitbrains-days 0,1,5 | none] [--hours H] \
        [--output docs/simulation-advisor.md] [--results r.jsonl [--render]] [--grid "hot=1,1.1 underload=0.65"]

One process, one simulation after the other (the machine is shared; the Bitbrains month is read once). Prints a line
per run with the time left, then writes the document (advisor/evaluation/report.py): per trace and day the advisor's
energy, migrations, SLATAH, PDM and ESV as ratios to MFPED's, the aims' verdict, the worst day and the wall time of
a simulated day. Each run's result keeps its CPU seconds (`cpu_s`), those of the policy's decisions alone
(`policy_cpu_s`: the rest is the simulator's bookkeeping) and a digest of every migration asked for
(`migrations_sha256`), to compare two versions run for run. With --results, each run is saved as it ends and an
interrupted evaluation resumes where it stopped. With --grid, the advisor also runs with every combination of the
settings listed, and the document adds the settings chosen by leave-one-day-out cross-validation with the held-out
days' figures (advisor/evaluation/crossval.py). Asserts nothing: the document says what is met.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from advisor.evaluation import AdvisorParams, AdvisorPolicy, register  # noqa: E402
from advisor.evaluation.crossval import section  # noqa: E402
from advisor.evaluation.report import RunInfo, document  # noqa: E402
from advisor.simulation import (  # noqa: E402
    Migration,
    Policy,
    SimulationConfig,
    Snapshot,
    Trace,
    bitbrains_datacenter,
    bitbrains_day,
    bitbrains_day_count,
    load_planetlab,
    make_policy,
    planetlab_datacenter,
    read_bitbrains,
    simulate,
)
from advisor.simulation.arrays import IntArray  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
POLICIES = ("advisor", "mfped")
COMMAND = ".venv/bin/python benchmarks/simulate_advisor.py"
PLANETLAB_HOSTS, BITBRAINS_HOSTS = 800, 200


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def planetlab_days(args: argparse.Namespace) -> Iterator[Trace]:
    if args.planetlab_days == "none":
        return
    files = sorted(args.planetlab.glob("*.csv.gz"))
    if args.planetlab_days:
        wanted = set(args.planetlab_days.split(","))
        files = [f for f in files if f.name.split(".")[0] in wanted]
        if len(files) != len(wanted):
            sys.exit(f"not every PlanetLab day of {args.planetlab_days} is in {args.planetlab}")
    if not files:
        sys.exit(f"no PlanetLab day found in {args.planetlab}")
    for f in files:
        yield load_planetlab(f)


def bitbrains_days(args: argparse.Namespace) -> Iterator[Trace]:
    if args.bitbrains_days == "none":
        return
    frame = read_bitbrains(args.bitbrains)
    count = bitbrains_day_count(frame)
    days = [int(d) for d in args.bitbrains_days.split(",")] if args.bitbrains_days else list(range(count))
    if any(not 0 <= d < count for d in days):
        sys.exit(f"Bitbrains days are 0..{count - 1} in {args.bitbrains}")
    for d in days:
        yield bitbrains_day(frame, d)


Params = dict[str, float]


def grid(text: str) -> list[Params]:
    """'hot=1,1.1 underload=0.65,0.7' -> every combination, each as its overrides of the defaults ({}: none)."""
    defaults = dataclasses.asdict(AdvisorParams())
    axes = []
    for item in text.split():
        name, _, values = item.partition("=")
        if not isinstance(defaults.get(name), float) or not values:
            sys.exit(f"--grid: {item!r} is not NAME=V1,V2 with NAME a number of AdvisorParams")
        axes.append([(name, float(v)) for v in values.split(",")])
    combos = [{k: v for k, v in combo if v != defaults[k]} for combo in itertools.product(*axes)]
    return [dict(c) for c in dict.fromkeys(tuple(sorted(c.items())) for c in combos)]


class Recorded:
    """A policy as the simulator sees it, plus the CPU seconds its decisions take and a digest of every migration it
    asks for (time, VM, host): two runs with equal digests made the same moves, not merely the same totals."""

    def __init__(self, policy: Policy) -> None:
        self.policy, self.decide_cpu_s, self.digest = policy, 0.0, hashlib.sha256()

    @property
    def name(self) -> str:
        return self.policy.name

    def initial_placement(self, snapshot: Snapshot) -> IntArray:
        return self.policy.initial_placement(snapshot)

    def decide(self, snapshot: Snapshot) -> Sequence[Migration]:
        cpu = time.process_time()
        migrations = self.policy.decide(snapshot)
        self.decide_cpu_s += time.process_time() - cpu
        self.digest.update("".join(f"{snapshot.time_s!r} {m.vm} {m.target}\n" for m in migrations).encode())
        return migrations


def run(trace: Trace, policy_name: str, params: Params | None = None) -> dict[str, object]:
    """One policy on one day, with the trace's setup (module doc of advisor/evaluation/report.py)."""
    planetlab = trace.source == "planetlab"
    datacenter = planetlab_datacenter(PLANETLAB_HOSTS) if planetlab else bitbrains_datacenter(BITBRAINS_HOSTS)
    options: dict[str, object] = {**(params or {}), **({} if planetlab else {"check_ram": True})}
    policy = make_policy(policy_name, **options)
    recorded = Recorded(policy)
    cpu = time.process_time()
    result = simulate(trace, datacenter, recorded, SimulationConfig(remove_idle_vms=planetlab))
    cpu = time.process_time() - cpu  # this process's CPU seconds: what the run costs whatever else loads the machine
    moves = dict(policy.moves) if isinstance(policy, AdvisorPolicy) else {}
    predicted = policy.ledger.as_dict() if isinstance(policy, AdvisorPolicy) else {}
    return {**result.as_dict(), "trace": "PlanetLab" if planetlab else "Bitbrains", "moves": moves,
            "predicted": predicted, "params": params or {},
            "hours": trace.duration_s / 3600, "cpu_s": cpu, "policy_cpu_s": recorded.decide_cpu_s,
            "migrations_sha256": recorded.digest.hexdigest(), "load_1min": os.getloadavg()[0]}


def key(r: dict[str, object]) -> tuple[str, str, str, float, str]:
    return (str(r["trace"]), str(r["day"]), str(r["policy"]), round(float(r["hours"]), 6),  # type: ignore[arg-type]
            json.dumps(r.get("params") or {}, sort_keys=True))


def saved(path: Path | None) -> list[dict[str, object]]:
    """The results already in a --results file (one JSON object per line), to resume an interrupted run."""
    if path is None or not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def evaluate(args: argparse.Namespace) -> tuple[list[dict[str, object]], int]:
    """Every (day, policy) asked for: those in --results reused, the others run (and appended there at once).
    Returns (the results, how many were reused)."""
    traces = [*planetlab_days(args), *bitbrains_days(args)]
    if args.hours is not None:
        traces = [t.head(max(1, min(t.n_samples, round(args.hours * 3600 / t.interval_s)))) for t in traces]
    done = {key(r): r for r in saved(args.results)}
    jobs = [("advisor", {}), *[("advisor", g) for g in grid(args.grid) if g], ("mfped", {})] if args.grid else [
        (name, {}) for name in POLICIES]
    total = len(traces) * len(jobs)
    results: list[dict[str, object]] = []
    reused = ran = 0
    started = time.perf_counter()
    for trace in traces:
        trace_name = "PlanetLab" if trace.source == "planetlab" else "Bitbrains"
        for name, params in jobs:
            previous = done.get((trace_name, trace.day, name, round(trace.duration_s / 3600, 6),
                                 json.dumps(params, sort_keys=True)))
            if previous is not None:
                results.append(previous)
                reused += 1
                continue
            r = run(trace, name, params)
            results.append(r)
            ran += 1
            if args.results is not None:
                with args.results.open("a") as out:
                    out.write(json.dumps(r) + "\n")
            elapsed = time.perf_counter() - started
            left = elapsed / ran * (total - len(results))
            label = name + "".join(f" {k} {v:g}" for k, v in sorted(params.items()))
            print(f"[{len(results):3}/{total}] {r['trace']:9} {r['day']:17} {label:8} {r['energy_kwh']:8.2f} kWh "
                  f"{r['migrations']:6,} migrations SLATAH {r['slatah']:.4f} ESV {r['esv']:.3e} "
                  f"({r['wall_time_s']:.1f} s, CPU {r['cpu_s']:.1f} s of which the policy {r['policy_cpu_s']:.1f} s; "
                  f"{elapsed / 60:.1f} min so far, "
                  f"~{left / 60:.1f} min left; load {load_average()})", flush=True)
    return results, reused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--planetlab", type=Path, default=SHARED / "planetlab", help="folder of PlanetLab days")
    parser.add_argument("--bitbrains", type=Path, default=SHARED / "bitbrains" / "rnd-2013-7.csv.gz")
    parser.add_argument("--planetlab-days", default="", help="comma-separated days, or none (default: all)")
    parser.add_argument("--bitbrains-days", default="", help="comma-separated days from 0, or none (default: all)")
    parser.add_argument("--hours", type=float, help="simulate only the first HOURS of each day (a short version)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "simulation-advisor.md")
    parser.add_argument("--results", type=Path,
                        help="JSON lines: each run is appended as it ends, and runs already there are not rerun")
    parser.add_argument("--render", action="store_true", help="only write the document, from --results")
    parser.add_argument("--note", default="", help="a paragraph the document quotes under its header")
    parser.add_argument("--grid", default="", help="settings of the advisor to cross-validate over days, e.g. "
                        "'hot=1,1.1 underload=0.65,0.7' (every combination is run on every day)")
    args = parser.parse_args()
    register()
    started = time.perf_counter()
    if args.render:
        if args.results is None:
            sys.exit("--render needs --results")
        results, reused = saved(args.results), 0
    else:
        results, reused = evaluate(args)
    info = RunInfo(command=COMMAND, when=datetime.date.today().isoformat(),
                   machine=f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}",
                   hours=min((float(r["hours"]) for r in results), default=24.0),  # type: ignore[arg-type]
                   note=args.note)
    args.output.write_text(document(results, info, section(results)))
    print(f"\nwrote {args.output}: {len(results) - reused} runs in {(time.perf_counter() - started) / 60:.1f} min, "
          f"{reused} reused from {args.results}")


if __name__ == "__main__":
    main()
