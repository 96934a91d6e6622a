"""The generated evaluation of the cost predictions in docs/learning.md: per technique, total-time MAPE, downtime
median APE, data MAPE and p10-p90 time coverage over completed migrations, and non-convergence recall and false
alarms over pre-copy migrations with a deadline; the physics alone beside the learned model; every count in
migrations (each migration scored once, with all its measurements: a lab run's input variants are one).

- SNU leave-one-workload-out and lab leave-one-configuration-out: one cross-validation of the learned recipe
  (training.cost_model.cross_validate, retrained for every fold: each SNU workload, and the lab's configurations
  in the folds frozen by a hash of each). The physics alone is a profile calibrated (advisor.ml.profiles, what
  `advisor profiles calibrate` runs) on the same profile's training rows of the same fold.
- Leave-one-profile-out with no local data: SNU -> lab, lab -> SNU and, when the lab data have more than one
  `collection`, each collection from the others ("a rig never seen").
- Few-shot on a held-out rig with k calibration migrations (training.few_shot).
- The issue's aims, met or not, with the figure.

The page's text between BEGIN and END is replaced; the prose around it is left as it is.

    python -m training.evaluate_cost --docs docs/learning.md     # every SNU run, the recipe's trees
    python -m training.evaluate_cost --quick                      # a small SNU sample, few trees (the test's)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.domain.model import Technique
from advisor.ml.cost import CONVERGE_THRESHOLD, interval_key
from advisor.ml.cost_features import TARGETS
from advisor.ml.profile_serving import profile_costs
from advisor.ml.profiles import HostProfile, calibrate
from advisor.physics import TECHNIQUES
from training import few_shot
from training.cost_data import (
    DEFAULT_LAB_DATA,
    input_file,
    load_all,
    optional_input_file,
    output_problem,
    with_variants,
)
from training.cost_eval import MIN_GROUP_MIGRATIONS, coverage_inside, guard_probability
from training.cost_model import (
    Prepared,
    TrainConfig,
    cells,
    convergence_rows,
    cross_validate,
    fit_convergence,
    fit_target,
    folds,
    interval_table,
    isotonic,
    predict_target,
    prepare,
    raw_probability,
)
from training.data import DEFAULT_DATA
from training.train_cost import calibrated_oof

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- generated evaluation: begin (python -m training.evaluate_cost --docs docs/learning.md) -->"
END = "<!-- generated evaluation: end -->"
ALL = "all"
ROWS = (*(str(t) for t in TECHNIQUES), ALL)
CALIBRATION_SAMPLE = 3000  # migrations a physics profile is calibrated from, at most
CALIBRATION_SEED = 16
QUICK_SNU_SHARE = 0.02
QUICK_CONFIG = TrainConfig(num_trees=10, downtime_trees=10, convergence_trees=10, correction_trees=10)
# The aims of issue 16: the few-shot figure, the lowest and the highest value that meet it.
AIMS_NO_LOCAL = (("time MAPE", -math.inf, 0.25), ("time coverage", 0.70, 0.90))
AIMS_TEN = (("time MAPE", -math.inf, 0.15), ("downtime medAPE", -math.inf, 0.25), ("recall", 0.90, math.inf),
            ("false alarms", -math.inf, 0.10))
AIM_SNU_PRECOPY_TIME = 0.12


def progress(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Method:
    """How one method predicted a table of migrations (one row each): the median per target (ms, ms, MiB),
    whether each actual total time fell inside its p10-p90 interval, and whether it foresaw non-convergence."""

    median: Mapping[str, np.ndarray]
    time_inside: np.ndarray
    foreseen: np.ndarray


def figures(frame: pd.DataFrame, method: Method, rows: np.ndarray) -> dict[str, float]:
    """The figures of `method` over the migrations `rows` of `frame`."""
    completed = rows & (frame["outcome"].to_numpy() == "completed")
    out: dict[str, float] = {"completed": int(completed.sum())}
    for target, name, statistic in (("total_time_ms", "time MAPE", np.mean), ("downtime_ms", "downtime medAPE",
                                                                            np.median),
                                    ("transferred_mib", "data MAPE", np.mean)):
        actual = frame[target].to_numpy(dtype=np.float64)
        known = completed & np.isfinite(actual) & (actual > 0)
        ape = np.abs(method.median[target][known] - actual[known]) / actual[known]
        out[name] = float(statistic(ape)) if known.any() else math.nan
    out["time coverage"] = float(method.time_inside[completed].mean()) if completed.any() else math.nan
    judged = rows & precopy_with_deadline(frame)
    never, converged = judged & ~completed, judged & completed
    out["non-converging"] = int(never.sum())
    out["recall"] = float(method.foreseen[never].mean()) if never.any() else math.nan
    out["false alarms"] = float(method.foreseen[converged].mean()) if converged.any() else math.nan
    return out


def precopy_with_deadline(frame: pd.DataFrame) -> np.ndarray:
    deadline = pd.to_numeric(frame["deadline_ms"], errors="coerce").fillna(0).to_numpy()
    return np.asarray((frame["technique"].to_numpy() != str(Technique.POSTCOPY)) & (deadline > 0))


def worst_group(frame: pd.DataFrame, method: Method) -> tuple[str, int, float]:
    """The report group (an SNU workload; a lab pattern, memory and cap) with the largest time MAPE among those of
    at least MIN_GROUP_MIGRATIONS completed migrations: (group, completed migrations, MAPE)."""
    completed = frame["outcome"].to_numpy() == "completed"
    groups = frame["report_group"].to_numpy()
    worst = ("-", 0, math.nan)
    for g in np.unique(groups[completed]):
        m = completed & (groups == g)
        if m.sum() < MIN_GROUP_MIGRATIONS:
            continue
        mape = figures(frame, method, groups == g)["time MAPE"]
        if not mape <= worst[2]:
            worst = (str(g), int(m.sum()), mape)
    return worst


# ---- predictions -------------------------------------------------------------------------------------------------


def as_profile(frame: pd.DataFrame, profile: str) -> pd.DataFrame:
    """The rows as a host of `profile` reports them: an SNU run's `vm_memory_mib` is memory in use, so under another
    profile it is given as `memory_used_mib` (else it would be read as configured RAM of unknown use)."""
    out = frame.copy()
    snu = out["source"].to_numpy() == "snu"
    if profile != "snu":
        out.loc[snu, "memory_used_mib"] = out.loc[snu, "memory_used_mib"].fillna(out.loc[snu, "vm_memory_mib"])
    out["source"] = profile
    return out


def calibrated_on(frame: pd.DataFrame, name: str) -> HostProfile:
    """A profile calibrated from these migrations, as `advisor profiles calibrate` fits one (from at most
    CALIBRATION_SAMPLE of them: four parameters and per-technique quantiles need no more, and the SNU folds have
    15,000)."""
    if len(frame) > CALIBRATION_SAMPLE:
        frame = frame.sample(n=CALIBRATION_SAMPLE, random_state=CALIBRATION_SEED)
    frame = as_profile(frame, name)
    return calibrate(name, few_shot.table(frame, name), few_shot.observed(frame))


def physics(frame: pd.DataFrame, profile: HostProfile | None, name: str = "unseen") -> Method:
    """The physics as served for a profile (None: one never calibrated) on these migrations."""
    frame = as_profile(frame, name)
    costs = profile_costs(few_shot.table(frame, name).rows(), name, profile)
    time_ = np.array([[c.total_time_ms.low, c.total_time_ms.high] for c in costs]).reshape(len(costs), 2)
    actual = frame["total_time_ms"].to_numpy(dtype=np.float64)
    return Method({t: np.array([getattr(c, t).median for c in costs], dtype=np.float64) for t in TARGETS},
                  (time_[:, 0] <= actual * (1 + 1e-9)) & (actual <= time_[:, 1] * (1 + 1e-9)),
                  np.array([not c.converges for c in costs], dtype=bool))


def physics_held_out(frame: pd.DataFrame, fold: np.ndarray, name: str) -> Method:
    """Each fold's migrations by the physics calibrated on the other folds' (all rows of one profile)."""
    parts: dict[str, list[np.ndarray]] = {"index": [], **{t: [] for t in TARGETS}, "inside": [], "foreseen": []}
    for k in np.unique(fold):
        test = fold == k
        progress(f"  physics {name}: fold {k} ({int(test.sum())} migrations)")
        m = physics(frame[test], calibrated_on(frame[~test], name), name)
        parts["index"].append(np.flatnonzero(test))
        for t in TARGETS:
            parts[t].append(m.median[t])
        parts["inside"].append(m.time_inside)
        parts["foreseen"].append(m.foreseen)
    order = np.argsort(np.concatenate(parts["index"]))
    return Method({t: np.concatenate(parts[t])[order] for t in TARGETS}, np.concatenate(parts["inside"])[order],
                  np.concatenate(parts["foreseen"])[order])


@dataclass(frozen=True)
class CrossValidated:
    """The learned recipe's held-out predictions of every row (variants included), from one cross-validation."""

    data: Prepared
    median: Mapping[str, np.ndarray]  # log
    probability: np.ndarray  # calibrated on the other folds, with the physics guard
    raw: np.ndarray

    def residual(self) -> dict[str, np.ndarray]:
        return {t: self.data.y[t] - self.median[t] for t in TARGETS}

    def method(self, rows: np.ndarray) -> Method:
        """The held-out predictions of `rows` (full variants), coverage from nested held-out intervals per cell."""
        inside = coverage_inside(self.data, self.residual()["total_time_ms"], cells(self.data)[0],
                                 rows & self.data.completed)
        return Method({t: np.exp(self.median[t][rows]) for t in TARGETS}, inside[rows],
                      self.probability[rows] <= CONVERGE_THRESHOLD)


def cross_validated(data: Prepared, cfg: TrainConfig) -> CrossValidated:
    oof = cross_validate(data, cfg, progress)
    return CrossValidated(data, oof.median["learned"], calibrated_oof(data, oof.raw_converge, oof.fold),
                          oof.raw_converge)


def learned_transfer(train: CrossValidated, keep: np.ndarray, test: pd.DataFrame, profile: str,
                     cfg: TrainConfig) -> Method:
    """The recipe trained on the rows `keep` of `train`, predicting `test` (one row per migration) as migrations of
    `profile`; intervals as served for `profile`, from the held-out residuals of the rows it learned from; the
    convergence classifier calibrated on their held-out probabilities, under the physics guard."""
    data = train.data.subset(keep)
    held = prepare(as_profile(test, profile), cfg)
    median = {t: predict_target(fit_target(data, t, cfg), held.features, t) for t in TARGETS}
    residual = {t: v[keep] for t, v in train.residual().items()}
    offsets = interval_table(data, residual, data.completed)[0]["total_time_ms"]
    bounds = np.array([offsets[interval_key(profile, str(t), b)]
                       for t, b in zip(held.frame["technique"], held.features.bands(), strict=True)])
    r = held.y["total_time_ms"] - median["total_time_ms"]
    inside = (r >= bounds[:, 0] - 1e-12) & (r <= bounds[:, 1] + 1e-12)
    conv = convergence_rows(data)
    calibration = isotonic(train.raw[keep][conv], data.completed[conv], data.weight[conv])
    p = calibration.apply(raw_probability(fit_convergence(data, cfg), held))
    p = np.where(guard_probability(held) == 0.0, 0.0, p)
    return Method({t: np.exp(v) for t, v in median.items()}, inside, p <= CONVERGE_THRESHOLD)


# ---- sections ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    title: str
    text: str
    frame: pd.DataFrame  # one row per migration
    methods: Mapping[str, Method]

    def table(self) -> dict[str, dict[str, dict[str, float]]]:
        """technique (and all) -> method -> figures."""
        technique = self.frame["technique"].to_numpy()
        every = np.ones(len(self.frame), dtype=bool)
        return {row: {name: figures(self.frame, m, every if row == ALL else technique == row)
                      for name, m in self.methods.items()} for row in ROWS}


def pct(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{100 * x:.0f}%"


def render_section(section: Section) -> list[str]:
    names = list(section.methods)
    table = section.table()
    lines = [f"### {section.title}", "", section.text, "", "Each cell: " + " / ".join(names) + ".", "",
             "| technique | completed | time MAPE | downtime med APE | data MAPE | time p10-p90 coverage "
             "| non-converging | recall | false alarms |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row, by_method in table.items():
        first = next(iter(by_method.values()))
        cells_ = [" / ".join(pct(by_method[n][key]) for n in names)
                  for key in ("time MAPE", "downtime medAPE", "data MAPE", "time coverage")]
        judged = [" / ".join(pct(by_method[n][key]) for n in names) if first["non-converging"] else "-"
                  for key in ("recall", "false alarms")]
        lines.append(f"| {row} | {int(first['completed'])} | " + " | ".join(cells_)
                     + f" | {int(first['non-converging'])} | " + " | ".join(judged) + " |")
    worst = []
    for name, method in section.methods.items():
        group, n, mape = worst_group(section.frame, method)
        worst.append(f"{name}: {group} ({n} completed, {pct(mape)})")
    lines += ["", f"Worst group by time MAPE (at least {MIN_GROUP_MIGRATIONS} completed migrations): "
              + "; ".join(worst) + ".", ""]
    return lines


def render_few_shot(result: pd.DataFrame, lab: pd.DataFrame, draws: int) -> list[str]:
    completed = lab["outcome"] == "completed"
    lines = ["### Few-shot on a held-out rig", "",
             f"The lab's {len(lab)} migrations ({int(completed.sum())} completed, "
             f"{int((precopy_with_deadline(lab) & ~completed.to_numpy()).sum())} pre-copy never converged) stand "
             f"for a rig the learned model never saw (`training/few_shot.py`): each of {draws} draws calibrates a "
             "new profile from k of them drawn at random and predicts the others; k = 0 is the profile never "
             "calibrated. Median over the draws. Only the physics is served here: the learned model cannot serve "
             "a profile it does not know, and learns a correction only from 40 migrations of one.", "",
             "| k | technique | " + " | ".join(few_shot.METRICS) + " |", "|---|---|" + "---:|" * len(few_shot.METRICS)]
    for row in result.itertuples(index=False):
        lines.append(f"| {row[0]} | {row[1]} | " + " | ".join(pct(float(v)) for v in row[2:]) + " |")
    return [*lines, ""]


def render_like_others(likes: pd.DataFrame, draws: int) -> list[str]:
    lines = ["### Few-shot on a held-out lab collection, calibrated like the others", "",
             "Each lab collection of at least "
             f"{few_shot.MIN_COLLECTION} migrations stands for the new rig in turn, its profile calibrated like one "
             "fitted on the lab's other collections (`advisor profiles calibrate --like`; `python -m "
             "training.few_shot --like-others`): the fit starts from that profile's parameters and is shrunk toward "
             "them; the intervals are a profile left out's until the rig's own migrations narrow them. k = 0 is the "
             f"known profile's parameters served as they are. Median over {draws} draws.", "",
             "| collection | k | technique | " + " | ".join(few_shot.METRICS) + " |",
             "|---|---|---|" + "---:|" * len(few_shot.METRICS)]
    for record in likes[likes["technique"] == ALL].to_dict("records"):
        lines.append(f"| {record['collection']} | {record['k']} | {record['technique']} | "
                     + " | ".join(pct(float(record[metric])) for metric in few_shot.METRICS) + " |")
    return [*lines, "", "Per technique: `python -m training.few_shot --like-others`.", ""]


def aims(snu: Section, shots: pd.DataFrame, likes: pd.DataFrame) -> list[str]:
    """The issue's aims, each judged on its figure: (aim, figure, lowest and highest value that meet it). Those
    of a rig calibrated like a known one are judged on the worst collection."""
    def shot(k: int, metric: str, frame: pd.DataFrame = shots) -> float:
        row = frame[(frame["k"] == k) & (frame["technique"] == ALL)]
        return float(row[metric].iloc[0]) if len(row) else math.nan

    def worst(k: int, metric: str, low: float, high: float) -> float:
        values = [shot(k, metric, part) for _, part in likes.groupby("collection")] if len(likes) else []
        values = [v for v in values if np.isfinite(v)]
        # the furthest from the bound it must stay within
        return max(values, key=lambda v: max(low - v, v - high)) if values else math.nan

    judged = [(f"rig never seen, no local data (few-shot k = 0, all techniques): {metric}", shot(0, metric), low, high)
              for metric, low, high in AIMS_NO_LOCAL]
    judged += [(f"after calibrating on 10 of its migrations (few-shot k = 10, all techniques): {metric}",
                shot(10, metric), low, high) for metric, low, high in AIMS_TEN]
    judged += [(f"rig never seen, like the lab's other collections, no local data (k = 0, worst collection): "
                f"{metric}", worst(0, metric, low, high), low, high) for metric, low, high in AIMS_NO_LOCAL]
    judged += [(f"after calibrating like the others on 10 of its migrations (k = 10, worst collection): {metric}",
                worst(10, metric, low, high), low, high) for metric, low, high in AIMS_TEN]
    judged.append(("SNU workloads never seen (leave-one-workload-out, learned): pre-copy time MAPE",
                   snu.table()[str(Technique.PRECOPY)]["learned"]["time MAPE"], -math.inf, AIM_SNU_PRECOPY_TIME))
    lines = ["### Aims", "", "| aim | figure | bound | verdict |", "|---|---:|---|---|"]
    for aim, value, low, high in judged:
        bound = (f"at most {pct(high)}" if low == -math.inf else f"at least {pct(low)}" if high == math.inf
                 else f"{pct(low)}-{pct(high)}")
        verdict = "not measured" if not np.isfinite(value) else "met" if low <= value <= high else "not met"
        figure = f"{100 * value:.1f}%" if np.isfinite(value) else "-"
        lines.append(f"| {aim} | {figure} | {bound} | {verdict} |")
    return [*lines, ""]


def collections(frame: pd.DataFrame, lab_path: Path | None) -> np.ndarray:
    """Each row's lab `collection` (the rig it was collected on) from the lab file; "" where there is none."""
    empty = np.full(len(frame), "", dtype=object)
    if lab_path is None or not lab_path.exists():
        return empty
    lab = pd.read_csv(lab_path)
    if "collection" not in lab.columns:
        return empty
    names = dict(zip(lab["migration_id"].astype(str), few_shot.collection_of(lab), strict=True))
    found = frame["migration_id"].astype(str).map(names).fillna("").to_numpy(dtype=object)
    return np.where(frame["source"].to_numpy() == "lab", found, empty)


def profile_left_out(frame: pd.DataFrame, cv: CrossValidated, cfg: TrainConfig, lab_path: Path | None
                     ) -> list[Section]:
    """Each profile predicted with no data of its own: by the physics never calibrated (what the advisor serves a
    profile it does not know), by the physics calibrated on the other profile, and by the learned recipe trained on
    the other profile alone, its rows given as that profile's."""
    source = frame["source"].to_numpy()
    snu, lab = source == "snu", source == "lab"
    src = cv.data.frame["source"].to_numpy()
    out = []
    progress("leave-one-profile-out: SNU -> lab")
    test = frame[lab].reset_index(drop=True)
    out.append(Section(
        "Leave-one-profile-out: SNU -> lab, no lab data",
        "The lab's migrations predicted with no lab data at all (the physics calibrated on at most "
        f"{CALIBRATION_SAMPLE:,} SNU runs). The SNU runs have no deadline, so the learned recipe trained on them "
        "alone has no convergence classifier: its verdict is the physics'.",
        test, {"physics never calibrated": physics(test, None),
               "physics calibrated on SNU": physics(test, calibrated_on(frame[snu], "snu-fit")),
               "learned, SNU only": learned_transfer(cv, src == "snu", test, "snu", cfg)}))
    progress("leave-one-profile-out: lab -> SNU (the joint recipe cross-validated on the lab alone)")
    joint = replace(cfg, corrections=False)
    lab_cv = cross_validated(cv.data.subset(src == "lab"), joint)
    test = frame[snu].reset_index(drop=True)
    out.append(Section(
        "Leave-one-profile-out: lab -> SNU, no SNU data",
        "The SNU runs predicted with no SNU data. The recipe's base learns from the SNU profile, so the learned "
        "column is the recipe trained jointly (`--joint`) on the lab's migrations alone, the SNU runs given as lab "
        "migrations. The SNU runs have no deadline: no convergence figures.",
        test, {"physics never calibrated": physics(test, None),
               "physics calibrated on lab": physics(test, calibrated_on(frame[lab], "lab-fit")),
               "learned, lab only": learned_transfer(lab_cv, np.ones(len(lab_cv.data.frame), dtype=bool), test,
                                                     "lab", joint)}))
    collection = collections(frame, lab_path)
    names = sorted(set(collection[lab]) - {""})
    if len(names) > 1:
        of_row = collection[cv.data.frame["row"].to_numpy()]
        for name in names:
            progress(f"leave-one-profile-out: lab collection {name}, a rig never seen")
            mine = lab & (collection == name)
            test = frame[mine].reset_index(drop=True)
            out.append(Section(
                f"A rig never seen: lab collection {name}",
                f"The migrations of the lab collection `{name}` predicted with none of its own: the physics never "
                "calibrated, the physics calibrated on the lab's other collections, and the learned recipe trained "
                "on the SNU runs and the other collections (its rows given as lab migrations).",
                test, {"physics never calibrated": physics(test, None),
                       "physics calibrated on the other collections": physics(
                           test, calibrated_on(frame[lab & ~mine], "lab-others")),
                       "learned, other collections": learned_transfer(cv, ~((src == "lab") & (of_row == name)),
                                                                      test, "lab", cfg)}))
    return out


def evaluate(frame: pd.DataFrame, cfg: TrainConfig, draws: int, ks: Sequence[int], lab_path: Path | None,
             describe: str) -> tuple[list[Section], pd.DataFrame, pd.DataFrame]:
    """The sections, the few-shot figures on the lab as one rig, and those of each lab collection calibrated like
    the others (`few_shot.like_others`; empty with fewer than two collections)."""
    source = frame["source"].to_numpy()
    snu, lab = source == "snu", source == "lab"
    fold = folds(frame)
    progress(f"{len(frame)} migrations ({int(snu.sum())} SNU, {int(lab.sum())} lab): the learned recipe, "
             "retrained for every fold")
    data = prepare(with_variants(frame), cfg)
    cv = cross_validated(data, cfg)
    # with_variants puts every migration's full row first, in the order of `frame`
    full = data.frame["variant"].to_numpy() == "full"
    src = data.frame["source"].to_numpy()
    progress("the physics alone, calibrated per fold")
    snu_frame = frame[snu].reset_index(drop=True)
    sections = [Section(
        "SNU, leave-one-workload-out",
        f"Each of the {snu_frame['workload'].nunique()} SNU workloads held out in turn: the learned recipe "
        "retrained without it (its base learns from the SNU runs alone), the physics calibrated on the other "
        f"workloads' runs (at most {CALIBRATION_SAMPLE:,} of them, drawn at random). {describe}",
        snu_frame, {"physics": physics_held_out(snu_frame, fold[snu], "snu"),
                    "learned": cv.method(full & (src == "snu"))})]
    lab_frame = frame[lab].reset_index(drop=True)
    shots = pd.DataFrame(columns=["k", "technique", *few_shot.METRICS])
    likes = pd.DataFrame(columns=["k", "technique", *few_shot.METRICS, "collection"])
    if lab.any():
        sections.append(Section(
            "Lab, leave-one-configuration-out",
            f"The lab's {lab_frame['group'].nunique()} configurations (writer setting and memory) in "
            f"{len(np.unique(fold[lab]))} folds frozen by a hash of each (`training/splits.py`); each fold "
            "predicted by the learned recipe retrained without it and by the physics calibrated on the other "
            "folds' lab migrations. Post-copy only as the advisor plans it (switching at once).",
            lab_frame, {"physics": physics_held_out(lab_frame, fold[lab], "lab"),
                        "learned": cv.method(full & (src == "lab"))}))
        sections += profile_left_out(frame, cv, cfg, lab_path)
        progress(f"few-shot: k = {', '.join(map(str, ks))}, {draws} draws")
        shots = few_shot.few_shot(lab_frame, ks, draws)
        collection = collections(frame, lab_path)[lab]
        if len(set(collection) - {""}) > 1:
            progress("few-shot: each lab collection calibrated like the others")
            likes = few_shot.like_others(lab_frame.assign(collection=collection), ks, draws)
    return sections, shots, likes


def render(sections: Sequence[Section], shots: pd.DataFrame, likes: pd.DataFrame, lab: pd.DataFrame, draws: int,
           command: str, seconds: float, cpu_seconds: float) -> str:
    lines = [BEGIN, "", f"Generated by `{command}` ({seconds / 60:.1f} min on this machine, {cpu_seconds / 60:.1f} min "
             "of CPU). Counts are migrations, "
             "each scored once with all its measurements; MAPE, median APE and coverage over completed migrations; "
             "recall (non-converging migrations foreseen) and false alarms (converged ones called non-converging) "
             "over pre-copy migrations with a deadline; `-`: none to score. The locked test part "
             "(`training/splits.py`) is not read.", ""]
    for section in sections:
        lines += render_section(section)
    if len(lab):
        lines += render_few_shot(shots, lab, draws)
    if len(likes):
        lines += render_like_others(likes, draws)
    lines += aims(sections[0], shots, likes)
    return "\n".join([*lines, END])


def replace_between_markers(page: str, generated: str) -> str:
    """The page with the text from BEGIN to END replaced; refused when the markers are missing."""
    if page.count(BEGIN) != 1 or page.count(END) != 1 or page.index(BEGIN) > page.index(END):
        raise SystemExit(f"the page must hold one {BEGIN!r} and, after it, one {END!r}")
    head, rest = page.split(BEGIN, 1)
    return head + generated + rest.split(END, 1)[1]


def main(argv: Sequence[str] | None = None) -> int:
    # the docstring's first paragraph: its first line alone stops mid-sentence
    parser = argparse.ArgumentParser(prog="python -m training.evaluate_cost",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--docs", type=Path, default=None, help="the page whose generated section to rewrite "
                        "(docs/learning.md); without it the section is printed")
    parser.add_argument("--data", type=input_file, default=DEFAULT_DATA, help="the SNU migrations CSV")
    parser.add_argument("--lab-data", type=optional_input_file, default=DEFAULT_LAB_DATA,
                        help="the lab's migrations CSV ('' for none)")
    parser.add_argument("--draws", type=few_shot.draw_count, default=20,
                        help="few-shot draws per k (default: %(default)s)")
    parser.add_argument("--ks", type=few_shot.k_list, default=",".join(map(str, few_shot.KS)),
                        help="few-shot k, a comma list (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SNU_SHARE * 100:.0f}%% of the SNU runs, few trees, 2 draws: a check, not the "
                        "figures")
    args = parser.parse_args(argv)
    if args.docs is not None:  # the page is rewritten after minutes of evaluation: refused before them
        try:
            replace_between_markers(args.docs.read_text(), "")
        except OSError as e:
            parser.error(f"argument --docs: cannot read {args.docs} ({e.strerror or e})")
        except SystemExit as e:
            parser.error(f"argument --docs: {args.docs}: {e}")
        if problem := output_problem(args.docs):
            parser.error(f"argument --docs: {problem}")
    started = time.monotonic()
    cfg, draws = (QUICK_CONFIG, 2) if args.quick else (TrainConfig(), args.draws)
    lab_path: Path | None = args.lab_data
    frame = load_all(args.data, lab_path)
    describe = "Every SNU run."
    if args.quick:
        keep = (frame["source"] != "snu") | (np.random.default_rng(cfg.seed).random(len(frame)) < QUICK_SNU_SHARE)
        frame = frame[keep].reset_index(drop=True)
        describe = f"A {QUICK_SNU_SHARE:.0%} sample of the SNU runs and {QUICK_CONFIG.num_trees} trees (--quick)."
    ks = args.ks
    sections, shots, likes = evaluate(frame, cfg, draws, ks, lab_path, describe)
    command = "python -m training.evaluate_cost" + (" --quick" if args.quick else "") + (
        f" --docs {args.docs}" if args.docs else "")
    lab = frame[frame["source"] == "lab"].reset_index(drop=True)
    generated = render(sections, shots, likes, lab, draws, command, time.monotonic() - started,
                       time.process_time())
    if args.docs is None:
        print(generated)
    else:
        args.docs.write_text(replace_between_markers(args.docs.read_text(), generated))
        progress(f"wrote {args.docs}")
    progress(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
