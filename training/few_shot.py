"""Few-shot calibration of a new host profile: how well the physics serves a rig the learned model never saw,
with k = 0, 5, 10, 20, 40 of its migrations given to `advisor profiles calibrate`.

The lab's migrations (training/data/lab_migrations.csv, as training reads them, without the locked test part of
training/splits.py: these figures choose settings) stand for the new rig, its profile withheld from the learned
model: each draw calibrates a profile of a new name from k lab migrations drawn at random and predicts
every other lab migration with it (k = 0: the uncalibrated profile). Per technique and overall, the median over
the draws of: time MAPE, downtime median APE and data MAPE (completed migrations), the share of completed
migrations whose time falls in the p10-p90 interval, and non-convergence recall (aborted migrations foreseen as
not converging) and false alarms (completed ones foreseen so).

    python -m training.few_shot [--draws 20] [--ks 0,5,10,20,40]
    python -m training.few_shot --leave-out     # the figures behind advisor.ml.profiles.UNCALIBRATED_OFFSETS
    python -m training.few_shot --floor         # what the physics' form allows, calibrated on every migration
    python -m training.few_shot --like-others   # each lab collection as the new rig, calibrated like the others
    python -m training.few_shot --repeats training/data/lab_repeats.csv   # how far the same migration varies

With `--like-others` each lab collection of at least MIN_COLLECTION migrations stands for the new rig in turn and
its profile is calibrated like one fitted on the lab's other collections (`advisor profiles calibrate --like`):
k = 0 is that known profile served as it is.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.features.inputs import InputTable
from advisor.ml.batch import NUMERIC_COLUMNS
from advisor.ml.profile_serving import profile_costs
from advisor.ml.profiles import TARGETS, HostProfile, Observed, calibrate, like_profile, physics, uncalibrated
from advisor.physics import TECHNIQUES
from training.cost_data import DEFAULT_LAB_DATA, load_lab, load_snu, without_locked
from training.data import DEFAULT_DATA

KS = (0, 5, 10, 20, 40)
MIN_COLLECTION = 100  # a lab collection smaller than this is too small to stand for a rig
METRICS = ("time MAPE", "downtime medAPE", "data MAPE", "time coverage", "recall", "false alarms")
ALL = "all"


def observed(frame: pd.DataFrame) -> Observed:
    completed = (frame["outcome"] == "completed").to_numpy() if "outcome" in frame else np.ones(len(frame), bool)
    return Observed(frame["total_time_ms"].to_numpy(np.float64), frame["downtime_ms"].to_numpy(np.float64),
                    frame["transferred_kib"].to_numpy(np.float64) / 1024.0, completed)


def table(frame: pd.DataFrame, name: str) -> InputTable:
    frame = frame.copy()
    frame["source"] = name
    for column in NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column])
    return InputTable.from_frame(frame)


def scores(frame: pd.DataFrame, profile_frame: pd.DataFrame | None, name: str = "newrig",
           like: HostProfile | None = None) -> dict[str, list[float]]:
    """Per technique (and all): the metrics of predicting `frame` with a profile calibrated on `profile_frame`
    (None: never calibrated), like the known profile `like` where given."""
    if profile_frame is not None:
        profile: HostProfile | None = calibrate(name, table(profile_frame, name), observed(profile_frame), like=like)
    else:
        profile = None if like is None else like_profile(name, like)
    if profile is not None:
        profile = replace(profile, version="few-shot")
    costs = profile_costs(table(frame, name).rows(), name, profile)
    time = np.array([c.total_time_ms.median for c in costs])
    low = np.array([c.total_time_ms.low for c in costs])
    high = np.array([c.total_time_ms.high for c in costs])
    down = np.array([c.downtime_ms.median for c in costs])
    data = np.array([c.transferred_mib.median for c in costs])
    alarm = np.array([not c.converges for c in costs])
    actual = observed(frame)
    out = {}
    techniques = frame["technique"].to_numpy()
    for technique in (*(str(t) for t in TECHNIQUES), ALL):
        rows = np.ones(len(frame), bool) if technique == ALL else techniques == technique
        ok = rows & actual.completed
        aborted = rows & ~actual.completed
        out[technique] = [
            float(np.mean(np.abs(time[ok] - actual.total_time_ms[ok]) / actual.total_time_ms[ok])) if ok.any()
            else np.nan,
            float(np.median(np.abs(down[ok] - actual.downtime_ms[ok]) / actual.downtime_ms[ok])) if ok.any()
            else np.nan,
            float(np.mean(np.abs(data[ok] - actual.transferred_mib[ok]) / actual.transferred_mib[ok])) if ok.any()
            else np.nan,
            float(np.mean((actual.total_time_ms[ok] >= low[ok]) & (actual.total_time_ms[ok] <= high[ok])))
            if ok.any() else np.nan,
            float(np.mean(alarm[aborted])) if aborted.any() else np.nan,
            float(np.mean(alarm[ok])) if ok.any() else np.nan,
        ]
    return out


def few_shot(lab: pd.DataFrame, ks: Sequence[int], draws: int, seed: int = 16, like: HostProfile | None = None
             ) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    records = []
    for k in ks:
        runs = []
        for d in range(1 if k == 0 else draws):
            chosen = rng.choice(len(lab), size=k, replace=False) if k else np.array([], dtype=int)
            rest = lab.drop(lab.index[chosen])
            runs.append(scores(rest, lab.iloc[chosen] if k else None, like=like))
            print(f"k={k:>2} draw {d + 1}/{1 if k == 0 else draws}", file=sys.stderr, flush=True)
        for technique in runs[0]:
            with warnings.catch_warnings():  # post-copy has no recall to take the median of: NaN, not a warning
                warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
                values = np.nanmedian(np.array([r[technique] for r in runs], dtype=np.float64), axis=0)
            records.append({"k": k, "technique": technique, **dict(zip(METRICS, values, strict=True))})
    return pd.DataFrame(records)


def collection_of(lab: pd.DataFrame) -> pd.Series:
    """Each lab row's collection (the rig it was collected on); the rows from before the column existed all came
    from the first grid, `full` (the card's runs of 2026-12-01)."""
    if "collection" not in lab.columns:
        return pd.Series("full", index=lab.index)
    return lab["collection"].fillna("full").replace("", "full").astype(str)


def like_others(lab: pd.DataFrame, ks: Sequence[int], draws: int) -> pd.DataFrame:
    """`few_shot` with each lab collection of at least MIN_COLLECTION migrations as the new rig, calibrated like a
    profile fitted on the lab's other collections; a `collection` column says which. Empty with fewer than two
    collections."""
    collection = collection_of(lab)
    results = []
    for name in sorted(n for n, size in collection.value_counts().items() if size >= MIN_COLLECTION):
        others = lab[collection != name]
        if others.empty:
            continue
        base = calibrate("others", table(others, "others"), observed(others))
        print(f"collection {name}: calibrated like the other {len(others)} migrations", file=sys.stderr, flush=True)
        result = few_shot(lab[collection == name], ks, draws, like=base)
        results.append(result.assign(collection=name))
    return pd.concat(results, ignore_index=True) if results else pd.DataFrame()


# What makes two lab migrations the same: every setting of the grid's point but its replicate number.
SETTINGS = ("technique", "workload", "vm_memory_mib", "max_bandwidth_mib_s", "max_downtime_ms", "deadline_ms",
            "postcopy_switch", "compression_threads", "autoconverge_initial_pct", "autoconverge_increment_pct")


def repeat_spread(runs: pd.DataFrame) -> str:
    """How far the same migration varies from run to run: each completed run predicted by the geometric mean of
    its configuration's other completed runs (the best a prediction from the same inputs can do, give or take the
    few runs), per technique: time MAPE, downtime median APE, data MAPE; and the configurations whose runs did not
    all end the same way (completed or aborted)."""
    runs = runs.copy()
    keys = [c for c in SETTINGS if c in runs.columns]
    runs["setting"] = runs.groupby(keys, sort=False, dropna=False).ngroup()  # an empty setting is one too
    done = runs[runs["outcome"] == "completed"].copy()
    done["transferred_mib"] = done["transferred_kib"] / 1024.0
    targets = (("time MAPE", "total_time_ms", np.mean), ("downtime medAPE", "downtime_ms", np.median),
               ("data MAPE", "transferred_mib", np.mean))
    for _, column, _ in targets:
        values = done[column].astype(float)
        logs = np.log(values.where(values > 0))  # a figure not measured (or 0) is left out, not averaged in
        total, count = (logs.groupby(done["setting"]).transform(how) for how in ("sum", "count"))
        with np.errstate(divide="ignore", invalid="ignore"):
            others = np.exp((total - logs) / (count - 1))
        done[f"ape {column}"] = np.where((count > 1) & logs.notna(), np.abs(others - values) / values, np.nan)
    lines = ["| technique | configurations | completed runs scored | " + " | ".join(n for n, _, _ in targets)
             + " | configurations ending both ways |", "|---|---:|---:|" + "---:|" * (len(targets) + 1)]
    mixed = runs.groupby("setting")["outcome"].nunique() > 1
    for technique in (*sorted(runs["technique"].unique()), ALL):
        mine = done if technique == ALL else done[done["technique"] == technique]
        settings = runs if technique == ALL else runs[runs["technique"] == technique]
        scored = mine[mine["ape total_time_ms"].notna()]
        cells = [f"{100 * float(f(scored[f'ape {c}'].dropna())):.0f}%" if scored[f"ape {c}"].notna().any() else "-"
                 for _, c, f in targets]
        both = int(mixed[settings["setting"].unique()].sum())
        lines.append(f"| {technique} | {settings['setting'].nunique()} | {len(scored)} | " + " | ".join(cells)
                     + f" | {both} |")
    return "\n".join(lines)


def render(result: pd.DataFrame) -> str:
    lines = ["| k | technique | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for row in result.itertuples(index=False):
        cells = ["" if np.isnan(v) else f"{100 * v:.0f}%" for v in row[2:]]
        lines.append(f"| {row[0]} | {row[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def leave_out(lab: pd.DataFrame, snu: pd.DataFrame) -> str:
    """The p10/p90 of actual over physics when a whole profile is left out: default physics on the lab, and a
    profile calibrated on one of SNU and lab predicting the other."""
    lines = ["| case | target | p10 | p50 | p90 |", "|---|---|---|---|---|"]
    cases = (("default physics on lab", None, lab), ("SNU profile on lab", snu, lab), ("lab profile on SNU", lab, snu))
    for case, fit, test in cases:
        params = uncalibrated("x").parameters if fit is None else calibrate("x", table(fit, "x"),
                                                                            observed(fit)).parameters
        a = physics(table(test, "x"), params)
        actual = observed(test)
        for target in TARGETS:
            ratio = np.where(actual.completed, getattr(actual, target), np.nan) / getattr(a, target)
            q = np.nanquantile(ratio[np.isfinite(ratio) & (ratio > 0)], [0.1, 0.5, 0.9])
            lines.append(f"| {case} | {target} | {q[0]:.2f} | {q[1]:.2f} | {q[2]:.2f} |")
        print(f"{case} done", file=sys.stderr, flush=True)
    return "\n".join(lines)


def floor(lab: pd.DataFrame) -> str:
    """Time MAPE of a profile calibrated on every lab migration and scored on them (in sample: the least the
    physics' form leaves, not a forecast), with memory in use, with what QEMU held resident where the lab recorded
    it (as serving reads them), and with the non-zero pages QEMU found given as measured: what the first pass's
    estimate costs beside what the rest of the physics leaves. Then, for the last, what is left by the host's load
    when the migration started and by the guest's writer."""
    lines = ["| first pass from | " + " | ".join(str(t) for t in TECHNIQUES) + " | all |",
             "|---|" + "---:|" * (len(TECHNIQUES) + 1)]
    measured = lab.copy()
    measured["nonzero_memory_mib"] = measured["nonzero_mib"]
    actual = observed(lab)
    techniques = lab["technique"].to_numpy()
    predicted = {}
    in_use = lab.assign(resident_memory_mib=np.nan)
    for case, frame in (("memory in use", in_use), ("resident memory where recorded, else memory in use", lab),
                        ("non-zero pages, measured", measured)):
        predicted[case] = physics(table(frame, "x"), calibrate("x", table(frame, "x"), actual).parameters).total_time_ms
        ape = np.abs(predicted[case] - actual.total_time_ms) / actual.total_time_ms
        cells = [float(np.mean(ape[actual.completed & (techniques == str(t))])) for t in TECHNIQUES]
        cells.append(float(np.mean(ape[actual.completed])))
        lines.append(f"| {case} | " + " | ".join(f"{100 * v:.0f}%" for v in cells) + " |")
    ratio = actual.total_time_ms / predicted["non-zero pages, measured"]
    nan = pd.Series(np.nan, index=lab.index)
    left = pd.DataFrame({"ratio": ratio, "ape": np.abs(1 / ratio - 1),
                         "load": lab.get("host_load_1m", nan).to_numpy(dtype=np.float64),
                         "writer": lab.get("writer", nan).fillna("lab (first collection)").to_numpy()}
                        )[actual.completed & lab["nonzero_mib"].notna().to_numpy()]
    bands = pd.cut(left["load"], [0, 1, 2, 4, 6, np.inf], labels=["0-1", "1-2", "2-4", "4-6", "6+"],
                   include_lowest=True)
    for title, groups in (("host load (1 min) at the start", bands), ("guest's writer", left["writer"])):
        lines += ["", f"| {title} | completed migrations | actual / fitted time (geometric mean) | time MAPE |",
                  "|---|---:|---:|---:|"]
        for name, part in left.groupby(groups, observed=True):
            lines.append(f"| {name} | {len(part)} | {np.exp(np.log(part['ratio']).mean()):.2f} | "
                         f"{100 * part['ape'].mean():.0f}% |")
    return "\n".join(lines)


def k_list(text: str) -> list[int]:
    """An argparse type for --ks: a comma list of how many migrations calibrate, each 0 or more."""
    try:
        ks = [int(k) for k in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a comma list of whole numbers, e.g. 0,5,10, not {text!r}") from None
    if min(ks) < 0:
        raise argparse.ArgumentTypeError(f"k counts migrations: 0 or more, not {min(ks)}")
    return ks


def draw_count(text: str) -> int:
    """An argparse type for --draws: 1 or more (each k > 0 is the median over its draws)."""
    try:
        draws = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if draws < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {draws}")
    return draws


def main(argv: Sequence[str] | None = None) -> int:
    # the docstring's first paragraph: its first line alone stops mid-sentence
    parser = argparse.ArgumentParser(prog="python -m training.few_shot",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--lab", type=Path, default=DEFAULT_LAB_DATA,
                        help="the lab's migrations CSV, the new rig (default: %(default)s)")
    parser.add_argument("--snu", type=Path, default=DEFAULT_DATA,
                        help="the SNU migrations CSV, read by --leave-out (default: %(default)s)")
    parser.add_argument("--draws", type=draw_count, default=20,
                        help="random draws of k migrations per k (default: %(default)s)")
    parser.add_argument("--ks", type=k_list, default=",".join(map(str, KS)),
                        help="how many lab migrations calibrate the profile, a comma list (default: %(default)s)")
    parser.add_argument("--leave-out", action="store_true", help="the figures of a profile left out instead")
    parser.add_argument("--like-others", action="store_true",
                        help="each lab collection as the new rig, calibrated like a profile of the others")
    parser.add_argument("--repeats", type=Path, metavar="CSV",
                        help="how far the same migration varies: a lab file of repeated runs (--grid repeats)")
    parser.add_argument("--floor", action="store_true",
                        help="the in-sample time error of a profile calibrated on every migration instead")
    args = parser.parse_args(argv)
    needed = ("repeats",) if args.repeats else ("lab", "snu") if args.leave_out else ("lab",)
    for flag in needed:
        if not getattr(args, flag).is_file():
            parser.error(f"--{flag}: {getattr(args, flag)} is not a file")
    if args.repeats:
        print(repeat_spread(pd.read_csv(args.repeats)))
        return 0
    # the lab's migrations as training reads them (memory in use as serving reads it, post-copy as the advisor
    # plans it), never the locked test part: these figures choose settings
    lab = without_locked(load_lab(args.lab))
    if args.floor:
        print(floor(lab))
        return 0
    if args.leave_out:
        snu = without_locked(load_snu(args.snu)).sample(n=3000, random_state=16)  # the fit is over every row
        print(leave_out(lab, snu))
        return 0
    ks = args.ks
    if args.like_others:
        result = like_others(lab, ks, args.draws)
        if result.empty:
            print(f"--like-others needs at least two lab collections, one of {MIN_COLLECTION} migrations or more",
                  file=sys.stderr)
            return 2
        for name, part in result.groupby("collection", sort=True):
            print(f"collection {name}, calibrated like the others:\n{render(part.drop(columns='collection'))}\n")
        return 0
    print(render(few_shot(lab, ks, args.draws)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
