"""Retrain the learned cost models on every source, compare the candidate with the active model on the locked
test part, and promote it only when it is not worse.

    .venv/bin/python -m training.train_cost --promote     # evaluate, train, gate, write, promote if not worse
    .venv/bin/python -m training.train_cost --help

Steps: read the shared SNU data and the lab's own migrations (training/cost_data.py) but the locked test
part, each lab row also without its optional measurements; hold out whole configurations (each SNU workload, the
lab's configurations in five folds fixed by a hash of each) and predict them with models that never saw them:
the candidate (every source), the same recipe trained on the SNU data only, the analytic model and a log-linear
baseline; fit the final models on everything; derive the conformal intervals per host profile, technique and rho
band and the convergence calibration from the held-out predictions. The gate (training/gate.py) then runs the
candidate and the active model (or, when the active one cannot be loaded, the physics fallback serving would
use) on the locked test part and compares them figure by figure; the version is
written to models/cost/<version>/ through the model registry with its card (card.json, card.md: every
comparison), and docs/cost-model.md. The candidate is promoted (models/cost/ACTIVE) only with --promote and only
when no comparison is worse beyond its margin; a refused candidate stays written as its own version, marked
refused in its card. Deterministic for a given seed, data and library versions.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from advisor.ml.cost import CONVERGES, MODEL_NAME, correction_role, load_artifact, registry
from advisor.ml.cost_features import TARGET_FEATURES, TARGETS, schema_document
from advisor.ml.predictor import AnalyticPredictor
from advisor.ml.profile_serving import ProfileServingPredictor
from advisor.ml.profile_store import ProfileStore
from advisor.ml.registry import CARD_FILE, Artifact, ArtifactError, check_asked_version, read_active
from advisor.physics import apply_guards
from training import gate
from training.cost_data import (
    DEFAULT_LAB_DATA,
    fingerprints,
    input_file,
    lab_postcopy_rows,
    load_all,
    load_locked,
    load_outcomes,
    optional_input_file,
    output_problem,
    with_variants,
)
from training.cost_eval import (
    analytic_probability,
    band_coverage,
    convergence_table,
    error_table,
    guard_probability,
    guard_verdicts,
    loglinear_oof,
    worst_group,
)
from training.cost_model import (
    Prepared,
    TrainConfig,
    cells,
    convergence_rows,
    convergence_teachable,
    correction_params,
    cross_validate,
    fit_convergence,
    fit_target,
    interval_table,
    isotonic,
    lgb_params,
    prepare,
)
from training.cost_report import docs_page, render_card, render_tables
from training.data import DEFAULT_DATA, file_sha256

ROOT = Path(__file__).resolve().parents[1]
POLICY_BEGIN = "<!-- policy evaluation: begin -->"  # as in training.evaluate_policy
NO_CONVERGENCE = ("no migrations with a deadline, converged and not, to learn convergence from (the SNU data has "
                  "none: give the lab's, --lab-data, or collect them: python -m training.collect_lab)")
INTERVAL_KIND = ("p10-p90 conformal per host profile, technique and rho band (held-out configurations, level "
                 "calibrated to 80% held-out coverage)")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in ("lightgbm", "numpy", "pandas", "scikit-learn"):
        out[lib] = metadata.version(lib)
    return out


def calibrated_oof(data: Prepared, raw: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Held-out probabilities, each fold calibrated by the isotonic map fitted on the other folds only."""
    rows = convergence_rows(data)
    out = raw.copy()
    for k in np.unique(fold):
        other = rows & (fold != k)
        cal = isotonic(raw[other], data.completed[other], data.weight[other])
        out[fold == k] = cal.apply(raw[fold == k])
    return apply_guards(out, guard_verdicts(data))


def evaluate(data: Prepared, cfg: TrainConfig) -> dict[str, Any]:
    def log(line: str) -> None:
        print(line, flush=True)

    candidate = cross_validate(data, cfg, log)
    snu_only = cross_validate(data, cfg, log, train_on=lambda d: d.frame["source"].to_numpy() == "snu",
                              method="snu_only")
    fold = candidate.fold
    median = {"learned": candidate.median["learned"], "snu_only": snu_only.median["snu_only"],
              "loglinear": loglinear_oof(data, fold),
              "analytic": {t: np.log(getattr(data.features.analytic, t)) for t in TARGETS}}
    fine = cells(data)[0]
    src = data.frame["source"].to_numpy()
    variant = data.frame["variant"].to_numpy()
    p_learned = calibrated_oof(data, candidate.raw_converge, fold)
    old_rule = data.features.analytic.converges | (np.exp(median["snu_only"]["downtime_ms"])
                                                   <= np.exp(data.features.column("log_max_downtime_ms")))
    probability = {"learned": p_learned, "snu_only": np.where(old_rule, 1.0, 0.0),
                   "analytic": analytic_probability(data), "guard": guard_probability(data)}
    out: dict[str, Any] = {"snu": {}, "lab": {}, "coverage": {}, "convergence": {}, "worst": {}}
    snu = (src == "snu") & (variant == "full")
    for method in ("learned", "snu_only", "loglinear", "analytic"):
        out["snu"][method] = error_table(data, median[method], snu, fine if method == "learned" else None)
    for v in ("full", "no windows", "neither"):
        lab = (src == "lab") & (variant == v)
        if not lab.any():
            continue
        out["lab"][v] = {m: error_table(data, median[m], lab, fine if m == "learned" else None)
                         for m in ("learned", "snu_only", "analytic")}
        out["convergence"][v] = convergence_table(data, probability, lab)
        out["worst"][v] = {m: worst_group(data, median[m], lab) for m in ("learned", "snu_only")}
    out["worst"]["snu"] = {m: worst_group(data, median[m], snu) for m in ("learned", "snu_only")}
    for source in ("snu", "lab"):
        if (src == source).any():
            out["coverage"][source] = band_coverage(data, median["learned"], fine, source)
    out["_oof"] = {"median": median["learned"], "p": p_learned, "raw": candidate.raw_converge, "fold": fold}
    return out


def fit_final(data: Prepared, oof: dict[str, Any], cfg: TrainConfig, out_dir: Path) -> dict[str, Any]:
    """Fit every model on all rows and save it; intervals and calibration from the held-out predictions."""
    targets: dict[str, Any] = {}
    files: dict[str, str] = {}
    for target in TARGETS:
        model = fit_target(data, target, cfg)
        model.base.save_model(str(out_dir / f"{target}.txt"))
        files[target] = f"{target}.txt"
        for profile, correction in model.corrections.items():
            correction.save_model(str(out_dir / f"{target}.{profile}.txt"))
            files[correction_role(target, profile)] = f"{target}.{profile}.txt"
        targets[target] = {"file": f"{target}.txt", "features": list(TARGET_FEATURES[target]),
                           "num_trees": model.base.num_trees(), "params": lgb_params(target, cfg),
                           "corrections": {p: {"file": f"{target}.{p}.txt", "num_trees": c.num_trees(),
                                               "params": correction_params(target, cfg)}
                                           for p, c in model.corrections.items()}}
        print(f"  {target}: {model.base.num_trees()} trees"
              + "".join(f", {p} correction {c.num_trees()} trees" for p, c in model.corrections.items()), flush=True)
    classifier = fit_convergence(data, cfg)
    if classifier is None:
        raise SystemExit(NO_CONVERGENCE)
    classifier.save_model(str(out_dir / f"{CONVERGES}.txt"))
    rows = convergence_rows(data)
    calibration = isotonic(oof["raw"][rows], data.completed[rows], data.weight[rows])
    residual = {t: data.y[t] - oof["median"][t] for t in TARGETS}
    offsets, how = interval_table(data, residual, data.completed)
    print(f"  {CONVERGES}: {classifier.num_trees()} trees, calibration of {len(calibration.raw)} points", flush=True)
    return {"files": {**files, CONVERGES: f"{CONVERGES}.txt"}, "base_blind": cfg.corrections,
            "correction_techniques": list(cfg.correction_techniques) if cfg.corrections else [],
            "targets": targets, "intervals": {"kind": INTERVAL_KIND, "nominal_coverage": 0.8, "offsets": offsets,
                                              "cells": how},
            "convergence": {"file": f"{CONVERGES}.txt", "num_trees": classifier.num_trees(),
                            "calibration": {"raw": list(calibration.raw), "calibrated": list(calibration.calibrated)}}}


def baseline(models_dir: Path) -> gate.Baseline:
    """What the gate compares the candidate with: what serving would use were it not promoted. The active model;
    or, when the current code cannot load it, the fallback serving then uses: the physics, per host profile as
    advisor.model_serving.load_predictor composes it (profiles calibrated under `models_dir/../profiles`)."""
    try:
        model = registry(models_dir).load(load_artifact)
    except ArtifactError as e:
        fallback = ProfileServingPredictor(AnalyticPredictor(fallback_reason=str(e)),
                                           ProfileStore(models_dir.parent / "profiles").get)
        return gate.Baseline("the physics fallback serving would use", gate.served_predictions(fallback),
                             _unusable(models_dir, e))
    return gate.Baseline(f"the active version {model.model.version}", gate.predictions_of(model))


def _unusable(models_dir: Path, error: ArtifactError) -> str:
    """Why the active model cannot be served, with the feature schema versions when they differ."""
    try:
        version = read_active(models_dir)
        card = json.loads((models_dir / version / CARD_FILE).read_text(encoding="utf-8"))
        theirs = card["feature_schema"]["schema_version"]
    except (ArtifactError, OSError, ValueError, KeyError, TypeError):
        return str(error)  # no active version, or its card unreadable: the error says which
    ours = schema_document()["schema_version"]
    return f"active {version} unreadable: " + (f"feature schema v{theirs} vs v{ours} ({error})" if theirs != ours
                                                else str(error))


def with_trees(cfg: TrainConfig, share: float) -> TrainConfig:
    """`cfg` with `share` of each model's trees (at least one)."""
    counts = ("num_trees", "downtime_trees", "convergence_trees", "correction_trees")
    return replace(cfg, **{name: max(1, round(getattr(cfg, name) * share)) for name in counts})


def share(text: str) -> float:
    """An argparse type for a share of all (of the trees, of the SNU runs): in (0, 1]."""
    try:
        share = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], not {text!r}") from None
    if not 0 < share <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], not {text}")
    return share


def version(text: str) -> str:
    """An argparse type for --version: MAJOR.MINOR.PATCH, as `advisor profiles calibrate --version` (the registry
    alone would take any file name, e.g. 'banana', which no next version follows)."""
    try:
        return check_asked_version(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    # the docstring's first paragraph: its first line alone stops mid-sentence
    parser = argparse.ArgumentParser(prog="python -m training.train_cost",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--data", type=input_file, default=DEFAULT_DATA,
                        help="the SNU migrations CSV (default: %(default)s)")
    parser.add_argument("--lab-data", type=optional_input_file, default=DEFAULT_LAB_DATA,
                        help="the lab's migrations CSV; '' for none (convergence is then learned from --outcomes' "
                             "migrations with a deadline: the SNU data has none) (default: %(default)s)")
    parser.add_argument("--outcomes", type=input_file, nargs="*", default=[], metavar="CSV",
                        help="migrations the advisor executed, as `advisor outcomes export` writes them")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models" / "cost",
                        help="where versions live (default: %(default)s)")
    parser.add_argument("--version", type=version, default=None,
                        help="the version to write, MAJOR.MINOR.PATCH; refused if it exists, as versions are "
                             "immutable (default: the next free one, e.g. 2.0.0 -> 2.1.0)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed,
                        help="the training recipe's seed, and --snu-sample's (default: %(default)s)")
    parser.add_argument("--lab-weight", type=float, default=TrainConfig.lab_weight,
                        help="how many SNU runs a lab migration weighs in the convergence classifier, and with "
                             "--joint in the cost models (default: %(default)s)")
    parser.add_argument("--joint", action="store_true",
                        help="cost models trained on every source at once (lab rows weighted by --lab-weight) "
                             "instead of a base on the SNU profile and a correction per other profile")
    parser.add_argument("--snu-sample", type=share, default=1.0, metavar="FRACTION",
                        help="train on this share of the SNU runs (a quick check; default: all)")
    parser.add_argument("--trees", type=share, default=1.0, metavar="SHARE",
                        help="fit every model with this share of its trees (a quick check of the job; default: all)")
    parser.add_argument("--promote", action="store_true",
                        help="make it the active version if the gate finds it not worse than the active one on the "
                             "locked test part (the card says why, comparison by comparison)")
    parser.add_argument("--docs", default=str(ROOT / "docs" / "cost-model.md"),
                        help="also write this page with the evaluation tables ('' to skip; default: %(default)s)")
    return parser


def refused(args: argparse.Namespace) -> str | None:
    """What is wrong with the version, the outputs or the --outcomes files, found before the minutes of training,
    not after; sets `args.version` to the version to write."""
    try:
        args.version = registry(args.models_dir).new_version(args.version)
    except ArtifactError as e:
        return str(e)
    problem = output_problem(args.models_dir, directory=True) or (output_problem(Path(args.docs)) if args.docs
                                                                  else None)
    if problem:
        return problem
    for path in args.outcomes:
        try:
            taught = len(load_outcomes(path))
        except pd.errors.EmptyDataError:
            return f"--outcomes {path}: empty, not even a header"
        except (OSError, ValueError, TypeError) as e:  # e.g. missing columns, a CSV pandas cannot parse
            return f"--outcomes {path}: {str(e).removeprefix(f'{path}: ')}"
        if not taught:  # e.g. an export of no migration yet: only the header
            print(f"--outcomes {path}: no executed migration to learn from (none completed with every figure "
                  "measured)", flush=True)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if problem := refused(args):
        print(f"train_cost: {problem}", file=sys.stderr)
        return 2
    command = " ".join(["python -m training.train_cost", *(sys.argv[1:] if argv is None else argv)])
    started = time.monotonic()
    cfg = with_trees(TrainConfig(seed=args.seed, lab_weight=args.lab_weight, corrections=not args.joint), args.trees)
    lab_path: Path | None = args.lab_data
    sources = (args.data.resolve(), lab_path, tuple(p.resolve() for p in args.outcomes))
    frame = load_all(*sources)
    if args.snu_sample < 1.0:
        snu = frame["source"] == "snu"
        keep = ~snu | (np.random.default_rng(cfg.seed).random(len(frame)) < args.snu_sample)
        frame = frame[keep].reset_index(drop=True)
    counts = frame.groupby(["source", "outcome"]).size().to_dict()
    print(f"read {len(frame)} migrations: {counts}", flush=True)
    data = prepare(with_variants(frame), cfg)
    print(f"  {len(data.frame)} rows with the variants without optional measurements", flush=True)
    if not convergence_teachable(data):  # found now, not after the cross-validation
        print(f"train_cost: {NO_CONVERGENCE}", file=sys.stderr)
        return 2
    print("held-out configurations: candidate, SNU-only, analytic, log-linear", flush=True)
    metrics = evaluate(data, cfg)
    oof = metrics.pop("_oof")
    reg = registry(args.models_dir)
    card: dict[str, Any] = {
        "model": MODEL_NAME, "version": args.version, "created_by": command, "seed": cfg.seed,
        "train_config": asdict(cfg),
        "data": {"sources": {**fingerprints(args.data.resolve(), lab_path),
                             **{f"outcomes {k}": {"file": p.name, "sha256": file_sha256(p)}
                                for k, p in enumerate(args.outcomes)}},
                 "rows": {f"{s}/{o}": int(n) for (s, o), n in counts.items()},
                 "groups": int(frame["group"].nunique()),
                 "migrations": len(frame),
                 **({"lab_postcopy": lab_postcopy_rows(pd.read_csv(lab_path))}
                    if lab_path is not None else {})},
        "files": {**{t: f"{t}.txt" for t in TARGETS}, CONVERGES: f"{CONVERGES}.txt"},
        "feature_schema": schema_document(),
        "evaluation": "held-out configurations (each SNU workload; the lab's configurations in 5 folds); lab rows "
                      "also scored without their optional measurements",
        "metrics": metrics, "libraries": library_versions(),
    }
    against = baseline(args.models_dir)
    locked = load_locked(*sources)

    def write_all(directory: Path) -> None:
        card.update(fit_final(data, oof, cfg, directory))
        card["schema_hash"] = reg.schema_hash
        candidate = load_artifact(Artifact(directory, card))
        print(f"gate: {len(locked)} locked migrations, candidate vs {against.name}"
              + (f" ({against.why})" if against.why else ""), flush=True)
        card["promotion"] = gate.run(locked, gate.predictions_of(candidate), against, promote=args.promote)
        print(f"promotion: {card['promotion']['reason']}", flush=True)
        (directory / "card.md").write_text(render_card(card, command))

    out_dir = reg.write(card, write_all, activate=False)
    promoted = bool(card["promotion"]["promoted"])
    if promoted:
        reg.activate(args.version)
    print(f"wrote {out_dir}" + (f"; ACTIVE -> {args.version}" if promoted else "; ACTIVE unchanged"))
    if args.docs and promoted:  # the page describes the model served, never a candidate left unserved
        docs = Path(args.docs)
        page = docs_page(card, command)
        old = docs.read_text() if docs.exists() else ""
        if POLICY_BEGIN in old:  # keep the section training.evaluate_policy writes
            page = page.rstrip("\n") + "\n\n" + POLICY_BEGIN + old.split(POLICY_BEGIN, 1)[1]
        docs.write_text(page)
        print(f"wrote {args.docs}")
    print()
    print(render_tables(metrics))
    print(f"done in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
