"""Train the learned migration-cost models and write a versioned artifact with its model card.

    .venv/bin/python -m training.train_cost --activate      # evaluate (leave one workload out), train, activate
    .venv/bin/python -m training.train_cost --help

Steps: read the shared SNU data; leave-one-workload-out cross-validation of the learned models and of the two
baselines (analytic model, log-linear least squares) in the same run; fit the final models on all runs; derive the
conformal interval offsets from the out-of-fold residuals; write models/cost/<version>/ (LightGBM text models,
card.json, card.md) through the model registry, pointing models/cost/ACTIVE at it only with --activate; write
docs/cost-model.md with the same tables.
Deterministic for a given seed, data and library versions (LightGBM runs with deterministic=True).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from advisor.ml.cost import MODEL_NAME, registry
from advisor.ml.cost_features import (
    FEATURE_NAMES,
    TARGET_FEATURES,
    TARGETS,
    TECHNIQUES,
    build_features,
    monotone_constraints,
    schema_document,
)
from advisor.ml.registry import promotion_on_request
from training.cost_model import (
    TrainConfig,
    calibrate_tails,
    conformal_offsets,
    cross_validate,
    fit_target,
    lgb_params,
    log_targets,
    metric_table,
    per_workload_table,
)
from training.data import DEFAULT_DATA, file_sha256, load_migrations

ROOT = Path(__file__).resolve().parents[1]
INTERVAL_KIND = "p10-p90 conformal (leave-one-workload-out residuals, level calibrated to 80% held-out coverage)"
PRECOPY = [str(t) for t in TECHNIQUES if t.is_precopy]
# The aims of issue 3, checked and reported in every card.
AIM_PRECOPY_TIME_MAPE = 0.08
AIM_PRECOPY_DOWNTIME_MEDIAN_APE = 0.12
AIM_VS_LOGLINEAR = 2.0
METHODS = ("learned", "loglinear", "analytic")
POLICY_BEGIN = "<!-- policy evaluation: begin -->"  # as in training.evaluate_policy


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in ("lightgbm", "numpy", "pandas", "scikit-learn"):
        out[lib] = metadata.version(lib)
    return out


def aims(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each aim of the issue, per pre-copy technique, with the figure and whether it is met."""
    rows: list[dict[str, Any]] = []
    learned, loglin = metrics["learned"], metrics["loglinear"]
    for t in PRECOPY:
        time_mape = learned[t]["total_time_ms"]["mape"]
        rows.append({"aim": "total time MAPE <= 8%", "technique": t, "value": time_mape,
                     "met": time_mape <= AIM_PRECOPY_TIME_MAPE})
        dt = learned[t]["downtime_ms"]["median_ape"]
        rows.append({"aim": "downtime median APE <= 12%", "technique": t, "value": dt,
                     "met": dt <= AIM_PRECOPY_DOWNTIME_MEDIAN_APE})
        for target in ("total_time_ms", "transferred_mib"):
            ratio = loglin[t][target]["mape"] / learned[t][target]["mape"]
            rows.append({"aim": f"{target} MAPE >= 2x better than log-linear", "technique": t, "value": ratio,
                         "met": ratio >= AIM_VS_LOGLINEAR})
    return rows


def render_tables(metrics: Mapping[str, Any], per_workload: Mapping[str, Any], aim_rows: Sequence[Any]) -> str:
    lines: list[str] = []
    for target in TARGETS:
        lines += [
            f"#### {target}",
            "",
            "| technique | n | learned MAPE | med APE | p90 APE | p10-p90 coverage "
            "| log-linear MAPE | med APE | p90 APE | coverage | analytic MAPE | med APE | p90 APE | band coverage |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for t in TECHNIQUES:
            cells = [str(t), str(metrics["learned"][str(t)][target]["n"])]
            for method in METHODS:
                s = metrics[method][str(t)][target]
                cells += [_pct(s["mape"]), _pct(s["median_ape"]), _pct(s["p90_ape"]), _pct(s["coverage"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "#### Aims (pre-copy techniques, learned model, unseen workloads)",
        "",
        "| aim | technique | figure | met |",
        "| --- | --- | ---: | --- |",
    ]
    for row in aim_rows:
        value = f"{row['value']:.2f}x" if "better" in row["aim"] else _pct(row["value"])
        lines.append(f"| {row['aim']} | {row['technique']} | {value} | {'yes' if row['met'] else '**no**'} |")
    lines += [
        "",
        "#### Pre-copy total time by held-out workload (learned model)",
        "",
        "| held-out workload | pre-copy runs | MAPE | median APE | coverage |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for w, s in per_workload.items():
        lines.append(f"| {w} | {s['n']} | {_pct(s['mape'])} | {_pct(s['median_ape'])} | {_pct(s['coverage'])} |")
    lines.append("")
    return "\n".join(lines)


def render_card(card: Mapping[str, Any], command: str) -> str:
    m = card["metrics"]
    offsets = card["intervals"]["offsets"]
    tails = card["intervals"]["tail_levels"]
    off_lines = ["| technique | " + " | ".join(f"{t} low / high factor (residual quantiles)" for t in TARGETS) + " |",
                 "| --- |" + " ---: |" * len(TARGETS)]
    for t in TECHNIQUES:
        cells = [
            f"{np.exp(offsets[tg][str(t)][0]):.2f} / {np.exp(offsets[tg][str(t)][1]):.2f} "
            f"(q{100 * tails[tg][str(t)]:g} / q{100 - 100 * tails[tg][str(t)]:g})"
            for tg in TARGETS
        ]
        off_lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return f"""# Model card: {card['model']} {card['version']}

Predicts a live migration's total time (ms), downtime (ms) and data transferred (MiB) for each technique
({', '.join(str(t) for t in TECHNIQUES)}), with a p10-p90 interval.

- Produced by: `{command}`
- Data: `{card['data']['file']}` ({card['data']['rows']} runs, sha256 `{card['data']['sha256'][:16]}...`),
  workloads {', '.join(card['data']['workloads'])}. The workload is never a feature.
- Feature schema hash: `{card['schema_hash']}` (advisor/ml/cost_features.py; a mismatching artifact is refused).
- Seed {card['seed']}; libraries: {', '.join(f'{k} {v}' for k, v in card['libraries'].items())}.

## Models

One LightGBM model per target, technique as a categorical feature. Features: {', '.join(FEATURE_NAMES)}.

| target | learns log(actual / offset) with offset | objective | row weights | monotone-constrained | trees |
| --- | --- | --- | --- | --- | ---: |
""" + "\n".join(
        f"| {t} | {card['feature_schema']['target_offsets'][t]} | {_objective(card['targets'][t]['params'])} "
        f"| {card['targets'][t]['weights']} "
        f"| {'yes' if any(card['targets'][t]['monotone_constraints']) else 'no'} | {card['targets'][t]['num_trees']} |"
        for t in TARGETS
    ) + f"""

precopy_compress offsets: a = {card['feature_schema']['compress_offset']['a']}, ref =
{card['feature_schema']['compress_offset']['ref_mib_s']} MiB/s. The time and data point estimates are MAPE-oriented:
a row weighted by 1/ratio makes the fitted (near-L1) median the weighted median that minimises the mean APE; the
downtime estimate is a plain median (the aim there is the median APE).

Time and data are monotone by construction: more dirty rate never predicts a shorter or smaller pre-copy, more
bandwidth never a longer one (precopy_compress's data may grow with bandwidth, as it does in the data).
Inputs are assumed measured as in the data (dirty rate before the migration,
QEMU's default 300 ms allowed downtime, 1 GbE, guests up to 4 GiB); outside that range the time and data models
scale with memory over bandwidth, the downtime model with the analytic downtime.

## Intervals

{INTERVAL_KIND}: the median times the factors below (per technique and target), quantiles of actual/predicted on
workloads the model had not seen. Nominal coverage 80%. A new workload's errors spread wider than the pooled
residuals of the others (the plain 10th/90th percentiles covered 73% of held-out time and data), so per technique
and target the quantile level is widened in steps until leave-one-workload-out coverage of all runs reaches 80%
(levels in brackets). In the evaluation, the level and the factors for each held-out workload come from the other
workloads' residuals only (the level by a nested leave-one-workload-out).

{chr(10).join(off_lines)}

## Evaluation: leave one workload out ({len(card['data']['workloads'])} folds)

Every figure is on workloads the models never saw. APE = |predicted - actual| / actual of the median prediction;
coverage = share of runs inside the interval (learned and log-linear: p10-p90 conformal; analytic: its
sensitivity band, not a calibrated interval). Baselines computed in the same run: the analytic model
(advisor/ml/analytic.py) and log-linear least squares per technique (log memory, log1p dirty rate, log bandwidth,
log cap -> log target).

{render_tables(m, card['per_workload_precopy_time'], card['aims'])}
"""


def fit_final(
    frame: pd.DataFrame, oof_learned: Mapping[str, np.ndarray], cfg: TrainConfig, out_dir: Path
) -> tuple[dict[str, Any], dict[str, dict[str, tuple[float, float]]], dict[str, dict[str, float]]]:
    """Fit each target on all runs, save it, and derive its interval offsets from the out-of-fold residuals."""
    fs = build_features(frame)
    y = log_targets(frame)
    technique = frame["technique"].to_numpy()
    targets: dict[str, Any] = {}
    offsets: dict[str, dict[str, tuple[float, float]]] = {}
    groups = frame["workload"].to_numpy()
    tails: dict[str, dict[str, float]] = {}
    for target in TARGETS:
        booster = fit_target(fs, y[target], target, cfg)
        file_name = f"{target}.txt"
        booster.save_model(str(out_dir / file_name))
        targets[target] = {
            "file": file_name,
            "features": list(TARGET_FEATURES[target]),
            "monotone_constraints": monotone_constraints(target),
            "num_trees": booster.num_trees(),
            "params": lgb_params(target, cfg),
            "weights": "1/ratio (MAPE)" if cfg.mape_weights and target != "downtime_ms" else "none",
        }
        residual = y[target] - oof_learned[target]
        tails[target] = calibrate_tails(residual, technique, groups)
        offsets[target] = conformal_offsets(residual, technique, tails[target])
        print(f"  {target}: {booster.num_trees()} trees", flush=True)
    return targets, offsets, tails


def _objective(params: Mapping[str, Any]) -> str:
    if params["objective"] == "huber":
        return f"huber (delta {params['alpha']:g})"
    if params["objective"] == "quantile":
        return f"quantile {params['alpha']:g}"
    return str(params["objective"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.train_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the SNU migrations CSV (default: %(default)s)")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models" / "cost",
                        help="where versions live (default: %(default)s)")
    parser.add_argument("--version", default="1.1.0", help="artifact version (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--num-trees", type=int, default=TrainConfig.num_trees)
    parser.add_argument("--num-leaves", type=int, default=TrainConfig.num_leaves)
    parser.add_argument("--activate", action="store_true",
                        help="point ACTIVE at the new version (default: write it, leave the active one in place)")
    parser.add_argument("--docs", default=str(ROOT / "docs" / "cost-model.md"),
                        help="also write this page with the evaluation tables ('' to skip; default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = " ".join(["python -m training.train_cost", *(sys.argv[1:] if argv is None else argv)])
    started = time.monotonic()
    cfg = TrainConfig(seed=args.seed, num_trees=args.num_trees, num_leaves=args.num_leaves)

    data_path: Path = args.data.resolve()
    print(f"reading {data_path}", flush=True)
    frame = load_migrations(data_path)
    data_hash = file_sha256(data_path)
    print(f"  {len(frame)} runs, {frame['workload'].nunique()} workloads, sha256 {data_hash[:16]}...", flush=True)

    print("leave-one-workload-out cross-validation (learned, log-linear, analytic)", flush=True)
    oof = cross_validate(frame, cfg, log=lambda s: print(s, flush=True))
    metrics = metric_table(frame, oof)
    per_workload = per_workload_table(frame, oof)
    aim_rows = aims(metrics)

    print("fitting the final models on all runs", flush=True)
    card: dict[str, Any] = {
        "model": MODEL_NAME,
        "version": args.version,
        "created_by": command,
        "seed": cfg.seed,
        "train_config": asdict(cfg),
        "data": {
            "file": str(data_path.name),
            "sha256": data_hash,
            "rows": len(frame),
            "workloads": sorted(str(w) for w in frame["workload"].unique()),
            "runs_per_technique": {str(k): int(v) for k, v in frame["technique"].value_counts().sort_index().items()},
        },
        "files": {target: f"{target}.txt" for target in TARGETS},
        "feature_schema": schema_document(),
        "evaluation": "leave one workload out; metrics over all out-of-fold runs per technique and target",
        "metrics": metrics,
        "per_workload_precopy_time": per_workload,
        "aims": aim_rows,
        "libraries": library_versions(),
        "promotion": promotion_on_request(args.activate),
    }
    reg = registry(args.models_dir)

    def write_all(directory: Path) -> None:
        targets, offsets, tails = fit_final(frame, oof.median["learned"], cfg, directory)
        card["targets"] = targets
        card["intervals"] = {"kind": INTERVAL_KIND, "nominal_coverage": 0.8, "offsets": offsets,
                             "tail_levels": tails}
        card["schema_hash"] = reg.schema_hash
        (directory / "card.md").write_text(render_card(card, command))

    out_dir = reg.write(card, write_all, activate=args.activate)
    size_kib = sum(p.stat().st_size for p in out_dir.iterdir()) / 1024
    print(f"wrote {out_dir} ({size_kib:.0f} KiB)" + (f"; {args.models_dir / 'ACTIVE'} -> {args.version}"
                                                     if args.activate else "; ACTIVE unchanged"), flush=True)
    if args.docs:
        docs = Path(args.docs)
        docs.parent.mkdir(parents=True, exist_ok=True)
        page = docs_page(card, command)
        old = docs.read_text() if docs.exists() else ""
        if POLICY_BEGIN in old:  # keep the section written by training.evaluate_policy
            page = page.rstrip("\n") + "\n\n" + POLICY_BEGIN + old.split(POLICY_BEGIN, 1)[1]
        docs.write_text(page)
        print(f"wrote {args.docs}", flush=True)

    print()
    print(render_tables(metrics, per_workload, aim_rows))
    print(f"done in {time.monotonic() - started:.0f} s", flush=True)
    return 0


def docs_page(card: Mapping[str, Any], command: str) -> str:
    return f"""# The learned cost model

Generated by `{command}` (do not edit by hand; rerun the command). The model card of the active version is
`models/cost/{card['version']}/card.md`; its JSON twin holds every figure below.

{render_card(card, command).split(chr(10), 1)[1]}
## Where the aims are missed, and why

- The four production inputs do not identify a workload's hot working set. The analytic model is right to ~5%
  at the median (it is exact while the guest dirties little) and far off in the tail, where real guests re-dirty
  the same pages and the geometric model over-counts; how far off depends on the workload. On a workload the
  model never saw, the learned correction cuts the analytic model's tail, but no pre-copy technique reaches 8%
  total-time MAPE or 2x the log-linear baseline. The mem workload carries most of the error and is the one whose
  intervals under-cover (table above): its runs sit where other workloads converge quickly.
- What helped (version 1.1.0, leave-one-workload-out, plain pre-copy time MAPE / median APE; 1.0.0 was 18.1% /
  6.8%): a Huber delta of 0.05 instead of 0.5 in log space (0.5 is nearly least squares, pulled by the tail:
  13.9% / 4.7%); rows weighted by 1/ratio, the MAPE-optimal weighted median (13.4% / 5.0%, the kept estimate:
  it serves the MAPE aim and the median APE stays below the analytic model's 4.8% only by a little, so neither
  estimate is best at both); for precopy_compress the bandwidth exponent 0.5 in its offsets (its data share rises
  with bandwidth, which the monotone constraint could not learn against a 1/bandwidth offset: 41% -> 33.5% MAPE;
  an exponent of 0.3 gave 31.8%, 0.5 was kept as the less tuned value). Time and data are one target on this
  data: every pre-copy run's wire rate equals the usable bandwidth within 0.2%, compression included (it is not
  CPU-bound here, contrary to what 1.0.0 assumed).
- What did not help: extra physics features (log rho, analytic time and data ratios to one pass, MiB dirtied per
  pass: within +-0.5 point), fewer leaves / larger leaves / feature bagging (7 leaves, 100 runs per leaf, 0.7
  feature fraction: +0.1 to +0.4 point), more trees (600: 14.7%), a separate compress model with the one-pass
  offset (38-41%); for downtime: extra features, 7 or 31 leaves, 400 trees, L1, lower quantiles (0.4 / 0.45:
  lower MAPE but median APE 12.1-12.8%), Huber and 1/ratio weights (much worse: the analytic downtime offset is
  off by orders of magnitude for non-converging runs). Downtime is unchanged from 1.0.0.
- Monotone constraints cost little for the three uncompressed pre-copy variants (unconstrained: 13.9% vs 13.4%);
  for compress an unconstrained model reached 30.6% vs 33.5%.
- Post-copy time is within 0.6% (log-linear 0.3%).
- Intervals: the calibrated quantile levels give 80-87% held-out coverage per technique and target; by workload
  it ranges from 55% (mem) to 100%, so an interval for a guest unlike any in the data is still optimistic.
"""


if __name__ == "__main__":
    raise SystemExit(main())
