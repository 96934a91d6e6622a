"""Evaluate the technique policy (advisor.planning.technique.choose_technique) on the shared SNU migrations.

    .venv/bin/python -m training.evaluate_policy [--slo-ms 300 100] [--json out.json] [--docs docs/cost-model.md]

Runs of similar configurations are grouped: same workload, and the same bin of memory, dirty rate, available
bandwidth and speed cap. A group counts when it holds runs of pre-copy and at least two other techniques. For each
group the policy sees, per technique present, the candidate cost model's held-out predictions (models trained
without the group's workload, on every other source including the lab's migrations, as training.train_cost
evaluates them) and picks one; that technique's actual runs in the group are its outcome. Variants: the risk
weight of the ranking (median + risk x (p90 - median)) and the fallback when no technique meets every limit
(`TechniqueRules.fallback`), each with post-copy allowed and forbidden. Compared with always pre-copy, always
post-copy (where allowed) and the best allowed technique in hindsight (fewest SLO violations, then shortest mean
total time). An SLO violation is a run whose downtime exceeded the SLO; the policy is given the SLO as its
downtime limit. Figures: sum over groups of the mean total time of the chosen technique (one migration per group)
and the expected number of violating migrations.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from advisor.domain.model import Interval, MigrationCost, ModelRef, Objective, Technique
from advisor.ml.cost_features import TARGETS
from advisor.planning.technique import TechniqueRules, choose_technique
from training.cost_data import (
    DEFAULT_LAB_DATA,
    input_file,
    load_all,
    load_snu,
    optional_input_file,
    output_problem,
    with_variants,
    without_locked,
)
from training.cost_eval import heldout_bounds
from training.cost_model import TrainConfig, cross_validate, prepare
from training.data import DEFAULT_DATA
from training.train_cost import calibrated_oof

MEMORY_BINS_MIB = (0, 512, 1024, 2048, np.inf)
DIRTY_BINS_PAGES = (0, 1000, 4000, 8000, 16000, np.inf)
BANDWIDTH_BINS_MBPS = (0, 400, 700, 850, np.inf)
CAP_BINS_MIB_S = (0, 75, 100, 125, np.inf)
MIN_TECHNIQUES = 3


@dataclass(frozen=True)
class Outcome:
    total_time_ms: float
    violations: float  # expected violating migrations (sum of per-group violation rates)
    groups: int
    chosen: Mapping[str, int]
    fallbacks: int = 0  # groups where no technique met every limit (the fallback decided)


def add_groups(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["policy_group"] = (
        out["workload"].astype(str)
        + "|" + pd.cut(out["vm_memory_mib"], MEMORY_BINS_MIB, right=False).astype(str)
        + "|" + pd.cut(out["dirty_rate_pages_per_s"], DIRTY_BINS_PAGES, right=False).astype(str)
        + "|" + pd.cut(out["available_bandwidth_mbps"], BANDWIDTH_BINS_MBPS, right=False).astype(str)
        + "|" + pd.cut(out["max_bandwidth_mib_s"], CAP_BINS_MIB_S, right=False).astype(str)
    )
    return out


def _cost(technique: Technique, rows: pd.DataFrame, model: ModelRef) -> MigrationCost:
    """One MigrationCost per (group, technique): the median of the runs' predictions, bounds likewise."""

    def interval(target: str, scale: float = 1.0) -> Interval:
        lo, mid, hi = (float(np.exp(rows[f"learned_{target}_{k}"].median())) * scale for k in ("lo", "mid", "hi"))
        lo, mid, hi = sorted((lo, mid, hi))
        return Interval(lo, mid, hi)

    return MigrationCost(
        technique=technique,
        total_time_ms=interval("total_time_ms"),
        downtime_ms=interval("downtime_ms"),
        transferred_mib=interval("transferred_mib"),
        converges=bool(rows["learned_p_converge"].mean() >= 0.5),
        model=model,
        converge_probability=float(rows["learned_p_converge"].mean()),
    )


VARIANTS: tuple[tuple[str, float, str], ...] = (
    ("risk 0.5, fallback likeliest", 0.5, "likeliest"),
    ("risk 0.5, fallback lowest downtime", 0.5, "downtime"),
    ("risk 0.5, fallback auto-converge", 0.5, "autoconverge"),
    ("risk 0, fallback likeliest", 0.0, "likeliest"),
    ("risk 1, fallback likeliest", 1.0, "likeliest"),
)


def evaluate(frame: pd.DataFrame, slo_ms: float, postcopy_allowed: bool) -> dict[str, Outcome]:
    totals: dict[str, list[float]] = {k: [0.0, 0.0] for k in (*(v[0] for v in VARIANTS), "precopy", "postcopy",
                                                                "hindsight")}
    chosen: dict[str, dict[str, int]] = {k: {} for k in totals}
    fallbacks = 0
    n_groups = 0
    objective = Objective(max_downtime_ms=slo_ms)
    model = ModelRef("lightgbm-cost", "held-out")
    for _, g in frame.groupby("policy_group"):
        present = sorted(set(g["technique"]) - (set() if postcopy_allowed else {str(Technique.POSTCOPY)}))
        if str(Technique.PRECOPY) not in present or len(present) < MIN_TECHNIQUES - (0 if postcopy_allowed else 1):
            continue
        n_groups += 1
        actual = {t: (float(r["total_time_ms"].mean()), float((r["downtime_ms"] > slo_ms).mean()))
                  for t, r in g.groupby("technique")}
        usable = np.minimum(g["available_bandwidth_mbps"] * 1e6 / 8 / 2**20, g["max_bandwidth_mib_s"])
        costs = [_cost(Technique(t), g[g["technique"] == t], model) for t in present]
        picks: dict[str, str] = {}
        for name, risk, fallback in VARIANTS:
            choice = choose_technique(costs, objective, bandwidth_mib_s=float(usable.median()),
                                      postcopy_allowed=postcopy_allowed,
                                      rules=TechniqueRules(risk=risk, fallback=fallback))
            picks[name] = str(choice.parameters.technique)
            if name == VARIANTS[0][0] and choice.reasons[0].startswith("no technique meets"):
                fallbacks += 1
        picks["precopy"] = str(Technique.PRECOPY)
        picks["postcopy"] = (str(Technique.POSTCOPY) if postcopy_allowed and str(Technique.POSTCOPY) in present
                             else str(Technique.PRECOPY))
        picks["hindsight"] = min(present, key=lambda t: (actual[t][1], actual[t][0]))
        for key, t in picks.items():
            totals[key][0] += actual[t][0]
            totals[key][1] += actual[t][1]
            chosen[key][t] = chosen[key].get(t, 0) + 1
    return {k: Outcome(total_time_ms=v[0], violations=v[1], groups=n_groups, chosen=dict(sorted(chosen[k].items())),
                       fallbacks=fallbacks) for k, v in totals.items()}


def with_predictions(frame: pd.DataFrame, cfg: TrainConfig, snu: Path, lab: Path | None) -> pd.DataFrame:
    """Attach held-out predictions (log space) of the candidate recipe to every SNU run of `frame` (read from
    `snu`): medians, nested held-out interval bounds per technique, and the probability of converging."""
    everything = load_all(snu, lab)
    data = prepare(with_variants(everything), cfg)
    oof = cross_validate(data, cfg, log=lambda s: print(s, flush=True))
    full = (data.frame["source"].to_numpy() == "snu") & (data.frame["variant"].to_numpy() == "full")
    groups, technique = data.frame["group"].to_numpy(), data.frame["technique"].to_numpy()
    out = frame.copy()
    for t in TARGETS:
        median = oof.median["learned"][t]
        bounds = np.zeros((len(median), 2))
        for tech in np.unique(technique[full]):
            m = full & (technique == tech)
            bounds[m] = heldout_bounds(data.y[t][m] - median[m], groups[m]) + median[m][:, None]
        out[f"learned_{t}_mid"] = median[full]
        out[f"learned_{t}_lo"] = bounds[full, 0]
        out[f"learned_{t}_hi"] = bounds[full, 1]
    out["learned_p_converge"] = calibrated_oof(data, oof.raw_converge, oof.fold)[full]
    return out


def render(results: Mapping[str, Mapping[str, Outcome]]) -> str:
    lines = []
    for title, res in results.items():
        base = res["precopy"]
        lines += [f"#### {title} ({base.groups} groups of similar runs; no technique met every limit in "
                  f"{res[VARIANTS[0][0]].fallbacks})", "",
                  "| strategy | total time (s) | vs always pre-copy | SLO violations | vs always pre-copy | chosen |",
                  "| --- | ---: | ---: | ---: | ---: | --- |"]
        names = {**{v[0]: f"policy, {v[0]}" for v in VARIANTS}, "precopy": "always pre-copy",
                 "postcopy": "always post-copy (pre-copy where none)", "hindsight": "best in hindsight"}
        for key, name in names.items():
            o = res[key]
            speed = base.total_time_ms / o.total_time_ms if o.total_time_ms else float("nan")
            fewer = base.violations / o.violations if o.violations > 0 else float("inf")
            picks = ", ".join(f"{t} {n}" for t, n in o.chosen.items())
            lines.append(f"| {name} | {o.total_time_ms / 1000:.0f} | {speed:.2f}x faster | {o.violations:.1f} "
                         f"| {fewer:.1f}x fewer | {picks} |")
        lines.append("")
    return "\n".join(lines)


DOCS_BEGIN = "<!-- policy evaluation: begin -->"
DOCS_END = "<!-- policy evaluation: end -->"


def write_docs_section(page: Path, tables: str, command: str) -> None:
    """Replace (or append) the marked policy section of a docs page."""
    section = (
        f"{DOCS_BEGIN}\n## Technique choice: policy vs always pre-copy vs hindsight\n\n"
        f"Generated by `{command}`.\n\n{(__doc__ or '').split(chr(10), 3)[3].strip()}\n\n{tables}\n{DOCS_END}\n"
    )
    text = page.read_text() if page.exists() else ""
    if DOCS_BEGIN in text and DOCS_END in text:
        head, rest = text.split(DOCS_BEGIN, 1)
        text = head + section + rest.split(DOCS_END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    page.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate_policy",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--data", type=input_file, default=DEFAULT_DATA, help="the SNU migrations CSV")
    parser.add_argument("--slo-ms", type=float, nargs="+", default=[300.0, 100.0], help="downtime SLOs to evaluate")
    parser.add_argument("--lab-data", type=optional_input_file, default=DEFAULT_LAB_DATA,
                        help="the lab's migrations ('' for none)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed,
                        help="the training recipe's seed (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    parser.add_argument("--docs", type=Path, default=None,
                        help="replace the policy section of this page (e.g. docs/cost-model.md) with the tables")
    args = parser.parse_args(argv)
    for flag, path in (("--json", args.json), ("--docs", args.docs)):  # written after minutes of training
        if path is not None and (problem := output_problem(path)):
            parser.error(f"argument {flag}: {problem}")
    # the runs training may read (not the locked test part), as with_predictions' cross-validation reads them
    frame = add_groups(without_locked(load_snu(args.data.resolve())))
    print("held-out predictions for every run (the candidate recipe, as training.train_cost evaluates it)",
          flush=True)
    frame = with_predictions(frame, TrainConfig(seed=args.seed), args.data.resolve(), args.lab_data)
    results = {f"Downtime SLO {slo:.0f} ms, post-copy {'allowed' if allowed else 'forbidden'}":
               evaluate(frame, slo, allowed) for slo in args.slo_ms for allowed in (True, False)}
    text = render(results)
    print(text)
    if args.docs:
        command = " ".join(["python -m training.evaluate_policy", *(sys.argv[1:] if argv is None else argv)])
        write_docs_section(args.docs, text, command)
    if args.json:
        doc: dict[str, Any] = {
            title: {k: {"total_time_ms": o.total_time_ms, "violations": o.violations, "groups": o.groups,
                        "chosen": dict(o.chosen), "fallbacks": o.fallbacks} for k, o in res.items()}
            for title, res in results.items()
        }
        args.json.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
