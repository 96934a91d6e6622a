"""docs/simulation-advisor.md from the results of `benchmarks/simulate_advisor.py`: the `advisor` policy against
MFPED per trace and day, each figure as a ratio to MFPED's, the aims' verdict per day and the worst day.

A result is the simulator's `SimulationResult.as_dict()` plus `moves` (the advisor's migrations by strategy).
Pure: no simulation runs here, so the rendering is tested on made-up results and the document on a real short run.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from advisor.evaluation.policy_notes import NOTES

Result = Mapping[str, object]

ADVISOR, BASELINE = "advisor", "mfped"
# (metric, what the aim allows as a ratio to MFPED's, strictly below?) on every day
AIMS = (("esv", 1.0, True), ("slatah", 1.0, False), ("energy_kwh", 1.0, False), ("migrations", 0.5, False))
MEDIAN_ESV = 0.6  # and ESV at most this ratio on the median day
LABEL = {"esv": "ESV", "slatah": "SLATAH", "energy_kwh": "energy", "migrations": "migrations", "pdm": "PDM"}
RATIOS = ("energy_kwh", "migrations", "slatah", "pdm", "esv")


def ratio(ours: float, theirs: float) -> float:
    """ours / theirs, with 0 / 0 = 1 (equal) and x / 0 = inf."""
    if theirs == 0:
        return 1.0 if ours == 0 else math.inf
    return ours / theirs


@dataclass(frozen=True)
class Day:
    """One trace day: the advisor's and MFPED's results and the ratios between them."""

    trace: str
    day: str
    advisor: Result
    mfped: Result

    def ratio(self, metric: str) -> float:
        return ratio(float(self.advisor[metric]), float(self.mfped[metric]))  # type: ignore[arg-type]

    def misses(self) -> list[tuple[str, float]]:
        """(metric, ratio / allowed) for every aim missed, the worst first."""
        out = []
        for metric, allowed, strict in AIMS:
            r = self.ratio(metric)
            if r > allowed or (strict and r >= allowed):
                out.append((metric, r / allowed))
        return sorted(out, key=lambda m: -m[1])

    def excess(self) -> float:
        """How far the day is from meeting every aim: the largest ratio / allowed (below 1: all met)."""
        return max(self.ratio(metric) / allowed for metric, allowed, _ in AIMS)

    def verdict(self) -> str:
        missed = self.misses()
        if not missed:
            return "yes"
        return "no: " + ", ".join(f"{LABEL[m]} {self.ratio(m):.3f}x" for m, _ in missed)


def pair(results: Sequence[Result]) -> dict[str, list[Day]]:
    """Per trace (in the order first seen), its days that have both policies' results, in day order."""
    by: dict[tuple[str, str], dict[str, Result]] = {}
    for r in results:
        by.setdefault((str(r["trace"]), str(r["day"])), {})[str(r["policy"])] = r
    days: dict[str, list[Day]] = {}
    for (trace, day), policies in by.items():
        if ADVISOR in policies and BASELINE in policies:
            days.setdefault(trace, []).append(Day(trace, day, policies[ADVISOR], policies[BASELINE]))
    for listed in days.values():
        listed.sort(key=lambda d: _day_key(d.day))
    return days


def _day_key(day: str) -> tuple[str, int]:
    """'rnd-2013-7 day 10' after 'rnd-2013-7 day 9'."""
    head, _, number = day.rpartition(" ")
    return (head, int(number)) if number.isdigit() else (day, 0)


def fmt(r: float) -> str:
    return "inf" if math.isinf(r) else f"{r:.2f}"


def ratio_table(days: Sequence[Day]) -> str:
    out = ["| day | energy | migrations | SLATAH | PDM | ESV | all aims met |",
           "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for d in days:
        cells = " | ".join(fmt(d.ratio(m)) for m in RATIOS)
        out.append(f"| {d.day} | {cells} | {d.verdict()} |")
    return "\n".join(out)


def summary_table(days_by_trace: Mapping[str, Sequence[Day]]) -> str:
    out = ["| trace | days | ESV below | median ESV ratio (aim <= 0.6) | SLATAH no higher | energy no higher | "
           "at most half the migrations | all four |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for trace, days in days_by_trace.items():
        n = len(days)
        met = {m: sum(1 for d in days if m not in dict(d.misses())) for m, _, _ in AIMS}
        median = statistics.median(d.ratio("esv") for d in days)
        both = sum(1 for d in days if not d.misses())
        out.append(f"| {trace} | {n} | {met['esv']} | {fmt(median)} | {met['slatah']} | {met['energy_kwh']} | "
                   f"{met['migrations']} | {both} |")
    return "\n".join(out)


def worst(days: Sequence[Day]) -> str:
    """The day furthest from the aims, named with the reason: the aim it misses most, in figures."""
    d = max(days, key=Day.excess)
    missed = d.misses()
    if not missed:
        return f"{d.trace} {d.day}, closest to missing an aim ({d.excess():.2f} of the allowed ratio), meets them all."
    a, m = d.advisor, d.mfped
    detail = {
        "slatah": f"active hosts overloaded {float(a['slatah']):.2%} of the time against MFPED's "  # type: ignore[arg-type]
                  f"{float(m['slatah']):.2%}",  # type: ignore[arg-type]
        "esv": f"ESV {float(a['esv']):.3e} against {float(m['esv']):.3e} (SLATAH "  # type: ignore[arg-type]
               f"{d.ratio('slatah'):.2f}x, PDM {d.ratio('pdm'):.2f}x, energy {d.ratio('energy_kwh'):.2f}x)",
        "energy_kwh": f"{float(a['energy_kwh']):.1f} kWh against {float(m['energy_kwh']):.1f}",  # type: ignore[arg-type]
        "migrations": f"{int(a['migrations']):,} migrations against {int(m['migrations']):,}",  # type: ignore[call-overload]
    }
    moves = a.get("moves")
    split = ""
    if isinstance(moves, Mapping) and moves:
        split = f"; the advisor's moves: {moves.get('balance', 0):,} relief, {moves.get('consolidate', 0):,} " \
                "consolidation"
    reasons = "; ".join(f"{LABEL[k]} {d.ratio(k):.2f}x MFPED's: {detail[k]}" for k, _ in missed)
    return f"**{d.trace} {d.day}** ({d.verdict()}): {reasons}{split}."


def figures_table(results: Sequence[Result]) -> str:
    out = ["| trace | day | policy | energy kWh | migrations | SLATAH | PDM | ESV | mean active hosts | wall s |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(results, key=lambda r: (str(r["trace"]), _day_key(str(r["day"])), _label(r))):
        moves = r.get("moves")
        split = ""
        if isinstance(moves, Mapping) and moves:
            split = f" ({moves.get('balance', 0):,} relief + {moves.get('consolidate', 0):,} consolidation)"
        out.append(f"| {r['trace']} | {r['day']} | {_label(r)} | {float(r['energy_kwh']):.2f} | "  # type: ignore[arg-type]
                   f"{int(r['migrations']):,}{split} | {float(r['slatah']):.4f} | "  # type: ignore[call-overload,arg-type]
                   f"{float(r['pdm']):.6f} | {float(r['esv']):.3e} | "  # type: ignore[arg-type]
                   f"{_optional(r, 'mean_active_hosts')} | {float(r['wall_time_s']):.1f} |")  # type: ignore[arg-type]
    return "\n".join(out)


PREDICTED = """## What the plans predicted, beside what the simulator measured

Per day, over the advisor's relief plans (advisor/evaluation/ledger.py): on each host a plan relieves, the SLA
time (SLATAH's numerator) expected over the next 5-minute interval without the plan's moves and with them, 300 s
times the probability that the host's CPU exceeds capacity (its load as normal around the forecast, with its VMs'
variance, as relief ranks its moves: advisor/planning/engine/overload.py). Beside it, the SLA seconds the
simulator measured on the same hosts in the interval before the plan and in the one after it: their change is
not the plan's saving (the load moves too; only a run without the moves could say what they saved), but a plan
whose hosts stay violating after it did not save what it predicted. Migration cost: the plans' predicted median
times (the learned model, each move at the share of the links the plan's schedule gives it) summed over every
move started, beside the simulator's (CloudSim's RAM / (BW / 2) on the whole link). Last, the share of PDM's
numerator (the CPU the moving guests were denied, as the simulator measured it) that relief's moves caused, the
rest being consolidation's.

{tables}"""


def prediction_table(days: Sequence[Day]) -> str:
    """The advisor's predictions beside the simulator's measurements, per day ('' when no result has them)."""
    out = ["| day | relieved host-intervals | SLA s forecast without -> with the moves | predicted saved | SLA s "
           "measured before -> after | migration s predicted | simulated | predicted / simulated | "
           "relief's share of PDM |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for d in days:
        p = d.advisor.get("predicted")
        if not isinstance(p, Mapping) or not p:
            continue
        simulated = float(d.advisor.get("migration_s", math.nan))  # type: ignore[arg-type]
        out.append(f"| {d.day} | {int(p['relieved_hosts']):,} | {p['predicted_over_before_s']:,.0f} -> "
                   f"{p['predicted_over_after_s']:,.0f} | {p['predicted_saved_s']:,.0f} | "
                   f"{p['measured_before_s']:,.0f} -> {p['measured_after_s']:,.0f} | "
                   f"{p['predicted_migration_s']:,.0f} | {simulated:,.0f} | "
                   f"{fmt(ratio(float(p['predicted_migration_s']), simulated))} | {_relief_share(p)} |")
    return "\n".join(out) if len(out) > 2 else ""


def _relief_share(p: Mapping[str, object]) -> str:
    """Relief's share of the guests' loss while migrating ('-' where the result does not split it)."""
    relief, packing = p.get("balance_loss_mips_s"), p.get("consolidate_loss_mips_s")
    if relief is None or packing is None:
        return "-"
    total = float(relief) + float(packing)  # type: ignore[arg-type]
    return f"{float(relief) / total:.0%}" if total > 0 else "-"  # type: ignore[arg-type]


def _optional(r: Result, field: str) -> str:
    return f"{float(r[field]):.1f}" if field in r else "-"  # type: ignore[arg-type]


def wall_table(results: Sequence[Result]) -> str:
    """Seconds per simulated day, per trace and policy: wall time (the aim: under 10 s) and the process's CPU time
    (what the run costs whatever else loads the machine)."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((str(r["trace"]), _label(r)), []).append(r)
    out = ["| trace | policy | hosts | runs | hours simulated per run | wall s per run: mean | max | "
           "CPU s per run: mean | max |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for (trace, policy), rs in groups.items():
        walls = [float(r["wall_time_s"]) for r in rs]  # type: ignore[arg-type]
        cpus = [float(r.get("cpu_s", math.nan)) for r in rs]  # type: ignore[arg-type]
        hours = max(float(r.get("hours", 24.0)) for r in rs)  # type: ignore[arg-type]
        out.append(f"| {trace} | {policy} | {rs[0]['hosts']} | {len(rs)} | {hours:g} | "
                   f"{statistics.mean(walls):.1f} | {max(walls):.1f} | {statistics.mean(cpus):.1f} | "
                   f"{max(cpus):.1f} |")
    return "\n".join(out)


@dataclass(frozen=True)
class RunInfo:
    """How the results were obtained, quoted at the top of the document."""

    command: str
    when: str
    machine: str
    hours: float  # simulated per day (24: whole days)
    note: str = ""  # anything else a reader must know about this edition


DOC = """# The `advisor` policy against MFPED, day by day, on PlanetLab and Bitbrains (`advisor.evaluation`)

Generated by `{command}` (do not edit by hand; rerun the command). {when}, {machine}, one process, runs one
after the other; the 1-minute load average at the end of each run: {load} (a shared 2-core machine: other jobs
ran beside it). The {runs} simulations took {wall_min:.1f} min of wall time in all, {cpu_min:.1f} min of CPU{cut}.{note}

Every day of both traces is simulated twice, once with the `advisor` policy (the project's decision engine,
`advisor.planning.engine`, at every 5-minute update) and once with MFPED, on the same CloudSim-exact simulator
(docs/simulation.md) with CloudSim's migration time (RAM / (BW / 2)):

- **PlanetLab**: each shared day, CloudSim's 800 hosts (HP ML110 G4/G5), RAM ignored after t = 0 as CloudSim does,
  VMs idle twice in a row leave.
- **Bitbrains**: the shared July 2013 month (GWA-T-12 Rnd, 500 VMs) cut into days of 288 five-minute samples from
  its first timestamp, one simulation per day on 200 identical 12-core X5675 hosts, RAM enforced (the VMs use up
  to tens of GB), every VM present all day (see advisor/simulation/traces.py).

Each figure below is the advisor's divided by MFPED's on the same day. **Aims, on every day**: ESV below MFPED's
(and at most {median:g}x on the median day), SLATAH no higher, energy no higher, at most half the migrations.

## Summary: days meeting each aim

{summary}

Worst day (furthest from an aim, as the ratio over what the aim allows): {worst}

## Wall time of a simulated day

{walls}

The aim is under 10 s per simulated day on this machine. Wall time depends on what else runs (see the load
average above); CPU time is this process's alone, and grows with the load too (two cores shared with other jobs
run slower: the busiest day took 10.4 s of CPU at a load of 9-14 and 5.2 s at 2-6).

{sections}

## Figures per run

{figures}

## Run it

    {command}                 # every day of both traces, this file (progress on stdout)
    .venv/bin/python benchmarks/simulate_advisor.py --planetlab-days 20110303 --bitbrains-days 0,1 --hours 3 \\
        --output /tmp/short.md                                   # a short version
    .venv/bin/python benchmarks/simulate_advisor.py --grid "hot=1.0,1.1 underload=0.65,0.75" \\
        --results /tmp/r.jsonl                                   # and the cross-validation, resumable
    .venv/bin/python -m advisor.evaluation simulate --trace bitbrains \\
        --input ../shared/data/bitbrains/rnd-2013-7.csv.gz --day 3 --policy advisor   # one day, one policy

## How the policy decides

{notes}
"""


def _total(results: Sequence[Result], field: str) -> float:
    return math.fsum(float(r.get(field, 0.0)) for r in results)  # type: ignore[arg-type]


def _load(results: Sequence[Result]) -> str:
    loads = [float(r["load_1min"]) for r in results if "load_1min" in r]  # type: ignore[arg-type]
    if not loads:
        return "not recorded"
    return f"{min(loads):.1f} to {max(loads):.1f}, median {statistics.median(loads):.1f}"


CROSSVALIDATED = """## Settings cross-validated over days (leave one day out)

Each day is held out in turn: among the settings run on every day of its trace, the one that does best on the
other days (the most days meeting all four aims, then the smallest worst excess over an aim, then the smallest
median ESV ratio) is chosen, and its figures on the held-out day, which took no part in choosing it, are reported
as ratios to MFPED's (advisor/evaluation/crossval.py).

{tables}"""


def _label(r: Result) -> str:
    params = r.get("params")
    if isinstance(params, Mapping) and params:
        return f"{r['policy']} ({', '.join(f'{k} {v:g}' for k, v in sorted(params.items()))})"
    return str(r["policy"])


def document(results: Sequence[Result], info: RunInfo, crossvalidated: str = "") -> str:
    """The whole markdown document; the main tables are of the default settings' runs (those without `params`),
    `crossvalidated` the tables of crossval.section, if any."""
    days = pair([r for r in results if not r.get("params")])
    if not days:
        raise ValueError("no day has both the advisor's and MFPED's results")
    everything = [d for ds in days.values() for d in ds]
    sections = []
    for trace, ds in days.items():
        sections.append(f"## {trace}: each figure as a ratio to MFPED's\n\n{ratio_table(ds)}\n\n"
                        f"All four aims met on {sum(1 for d in ds if not d.misses())} of {len(ds)} days; "
                        f"worst: {worst(ds)}")
    tables = [f"### {trace}\n\n{table}" for trace, ds in days.items() if (table := prediction_table(ds))]
    if tables:
        sections.append(PREDICTED.format(tables="\n\n".join(tables)))
    if crossvalidated:
        sections.append(CROSSVALIDATED.format(tables=crossvalidated))
    cut = "" if info.hours >= 24 else f" (each day cut to its first {info.hours:g} h: a short version)"
    return DOC.format(command=info.command, when=info.when, machine=info.machine, load=_load(results),
                      runs=len(results), cut=cut, median=MEDIAN_ESV, note=f"\n\n{info.note}" if info.note else "",
                      wall_min=_total(results, "wall_time_s") / 60, cpu_min=_total(results, "cpu_s") / 60,
                      summary=summary_table(days), worst=worst(everything), walls=wall_table(results),
                      sections="\n\n".join(sections), figures=figures_table(results), notes=NOTES)
