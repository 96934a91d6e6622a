"""Train the dirty-rate forecaster on the lab's real measurements and write a versioned artifact with its card.

    .venv/bin/python -m training.train_dirty                  # evaluate (leave one trace VM out), train, activate
    .venv/bin/python -m training.train_dirty --help

Input: training/data/dirty_rates.csv (+ .meta.json) written by `python -m training.collect_dirty`.

Steps:
1. Every reading of a replayed VM is a forecast point `now`. Its features come from the readings in the last
   60 s (advisor.ml.forecast.build_dirty_features, the function serving uses, fed with float32 values exactly as
   SeriesStore keeps them), its targets from the readings in the next 30 s: their mean and their p90. To make
   the model robust to production's slower cadence, each point also appears with its history thinned to one
   reading every 10 s and every 30 s (CADENCES_S); the targets always use every reading.
2. Leave one trace VM out: for each VM, LightGBM models (mean and p90 of the horizon) are trained
   on the other VMs and evaluated on it, together with the last-value and moving-average forecasts and a
   LightGBM ablation that sees only the dirty-rate history (no CPU or memory). The 80% interval for the mean is
   scaled split-conformal, calibrated on out-of-fold residuals of the other VMs only.
3. Final models on all VMs, the interval factors from all out-of-fold residuals; writes models/dirty_rate/<version>/
   (LightGBM text models, card.json, card.md), points models/dirty_rate/ACTIVE at it, and writes
   docs/dirty-rate.md. Deterministic for a given seed, data and library versions.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from advisor.features.dirty import (
    BASE_FEATURE,
    CPU_FIELD,
    DIRTY_FIELD,
    FEATURES,
    HISTORY_S,
    HORIZON_S,
    MEMORY_FIELD,
    MONOTONE,
    build_dirty_features,
    schema_document,
    schema_hash,
)
from advisor.ml.forecast import MODEL_NAME, MODEL_ROLES, ConformalInterval, registry
from advisor.ml.registry import ArtifactError, promotion_on_request
from training.data import file_sha256

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "training" / "data" / "dirty_rates.csv"
FIELDS = (CPU_FIELD, MEMORY_FIELD, DIRTY_FIELD)  # SeriesStore's VM_FIELDS order
CADENCES_S = (2.0, 10.0, 30.0)  # history cadences trained and evaluated on (the lab measures every 2 s)
MIN_FUTURE = 10  # readings needed in the horizon for a target (15 at a 2 s cadence)
APE_FLOOR_MIB_S = 4.0  # APE denominators are floored at the lab's measurable floor (idle VMs read 0-4 MiB/s)
INTERVAL_COVERAGE = 0.8
BASE = FEATURES.index(BASE_FEATURE)
# Features that use CPU or memory: blanked (NaN) in the "dirty history only" ablation.
NON_DIRTY = tuple(i for i, f in enumerate(FEATURES) if f in ("dirty_cpu_adjusted", "cpu_ratio", "memory_rel"))
PARAMS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_child_samples": 100,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.9,
    "reg_lambda": 1.0,
    "deterministic": True,
    "force_row_wise": True,
    "n_jobs": 2,
    "verbose": -1,
    "monotone_constraints": list(MONOTONE),
    "monotone_constraints_method": "basic",
}
OBJECTIVES: dict[str, dict[str, Any]] = {"mean": {"objective": "regression"}, "p90": {"objective": "regression"}}
TARGET_OF = {"mean": "y_mean", "p90": "y_p90"}
BASELINES = ("last value", "moving average (60 s; max as p90, min-max interval)")
LABELS = {"full": "lightgbm, dirty history + CPU/memory", "history-only": "lightgbm, dirty history only"}
SHIPPED_MARK = " (shipped)"
INTERVAL_FLOOR_MIB_S = 4.0  # the interval scales with (floor + forecast): wider for busier VMs, never zero


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # (n, len(FEATURES))
    y_mean: np.ndarray
    y_p90: np.ndarray
    vm: np.ndarray  # trace VM id per row (the group)
    cadence: np.ndarray  # history cadence of the row, s
    samples_used: np.ndarray


def load_readings(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    need = {"guest", "trace_vm", "segment", "wall_time_s", "measured_mib_s", "cpu_utilization", "memory_used_mib"}
    missing = need - set(df.columns)
    if missing:
        raise SystemExit(f"{path}: missing columns {sorted(missing)}")
    return df.sort_values(["guest", "segment", "wall_time_s"], kind="stable").reset_index(drop=True)


def series_arrays(seg: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(times, values[time, FIELDS]) of one replayed VM, float32 values as SeriesStore keeps them."""
    times = seg["wall_time_s"].to_numpy(dtype=np.float64)
    values = np.column_stack([seg["cpu_utilization"], seg["memory_used_mib"], seg["measured_mib_s"]])
    return times, values.astype(np.float32)


def thinned(n_upto: int, step: int) -> np.ndarray:
    """Indices 0..n_upto-1 keeping every `step`-th reading counted back from the newest (n_upto - 1)."""
    return np.arange(n_upto - 1, -1, -step)[::-1]


def points(times: np.ndarray, values: np.ndarray, cadence_s: float, every_s: float) -> Iterator[tuple[int, Any]]:
    """(index of `now`, DirtyFeatures) for every reading usable as a forecast point at this history cadence."""
    step = max(1, round(cadence_s / every_s))
    for i in range(len(times)):  # early points have a shorter history, as a VM that just appeared would
        now = float(times[i])
        idx = thinned(i + 1, step)
        fs = build_dirty_features(times[idx], values[idx], FIELDS, now)
        if fs is not None:
            yield i, fs


def build_dataset(df: pd.DataFrame, every_s: float, cadences: Sequence[float] = CADENCES_S) -> Dataset:
    rows: list[np.ndarray] = []
    y_mean: list[float] = []
    y_p90: list[float] = []
    vms: list[int] = []
    cad: list[float] = []
    used: list[int] = []
    for (_guest, _segment), seg in df.groupby(["guest", "segment"], sort=True):
        times, values = series_arrays(seg)
        dirty = values[:, 2].astype(np.float64)
        vm = int(seg["trace_vm"].iloc[0])
        targets: dict[int, tuple[float, float] | None] = {}
        for i in range(len(times)):
            future = dirty[(times > times[i]) & (times <= times[i] + HORIZON_S)]
            future = future[np.isfinite(future)]
            ok = len(future) >= MIN_FUTURE and times[-1] >= times[i] + HORIZON_S - every_s
            targets[i] = (float(future.mean()), float(np.quantile(future, 0.9))) if ok else None
        for cadence in cadences:
            for i, fs in points(times, values, cadence, every_s):
                target = targets[i]
                if target is None:
                    continue
                rows.append(fs.row)
                y_mean.append(target[0])
                y_p90.append(target[1])
                vms.append(vm)
                cad.append(cadence)
                used.append(fs.samples_used)
    return Dataset(np.vstack(rows), np.array(y_mean), np.array(y_p90), np.array(vms), np.array(cad),
                   np.array(used))


def fit(x: np.ndarray, y: np.ndarray, kind: str, seed: int) -> lgb.LGBMRegressor:
    model = lgb.LGBMRegressor(**PARAMS, **OBJECTIVES[kind], random_state=seed)
    model.fit(x, y)
    return model


def fit_all(ds: Dataset, mask: np.ndarray, seed: int, history_only: bool = False) -> dict[str, lgb.LGBMRegressor]:
    """The mean and p90 models, each learning the target minus BASE_FEATURE (serving adds it back)."""
    x = _view(ds.x[mask], history_only)
    base = ds.x[mask, BASE]
    return {k: fit(x, getattr(ds, TARGET_OF[k])[mask] - base, k, seed) for k in MODEL_ROLES}


def _view(x: np.ndarray, history_only: bool) -> np.ndarray:
    if not history_only:
        return x
    out = x.copy()
    out[:, list(NON_DIRTY)] = np.nan
    return out


def conformal(mean: np.ndarray, p90: np.ndarray, y: np.ndarray,
              coverage: float = INTERVAL_COVERAGE) -> ConformalInterval:
    """Scaled split-conformal interval for the window mean: each tail (1 - coverage) / 2 of the scaled residuals."""
    tail = (1 - coverage) / 2
    r_low = (y - mean) / (INTERVAL_FLOOR_MIB_S + mean)
    r_high = (y - mean) / (INTERVAL_FLOOR_MIB_S + p90)
    n = len(y)
    if n == 0:
        return ConformalInterval(0.0, 0.0, INTERVAL_FLOOR_MIB_S)
    lo_level = max(0.0, np.floor((n + 1) * tail) / n)
    hi_level = min(1.0, np.ceil((n + 1) * (1 - tail)) / n)
    q_low = float(np.quantile(r_low, lo_level, method="lower"))
    q_high = float(np.quantile(r_high, hi_level, method="higher"))
    return ConformalInterval(min(0.0, max(-0.95, q_low)), max(0.0, q_high), INTERVAL_FLOOR_MIB_S)


def _order(mean: np.ndarray, p90: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.maximum(mean, 0.0)  # as the serving code orders them
    return mean, np.maximum(p90, mean)


def cross_validate(ds: Dataset, seed: int) -> dict[str, np.ndarray]:
    """Leave one trace VM out: out-of-fold predictions of both LightGBM variants with their intervals, each held-out
    VM's interval calibrated on the out-of-fold residuals of the other VMs only."""
    n = len(ds.y_mean)
    pred = {f"{p}_{k}": np.full(n, np.nan) for p in ("lgb", "hist") for k in ("mean", "p90", "low", "high")}
    for vm in np.unique(ds.vm):
        test = ds.vm == vm
        for prefix, history_only in (("lgb", False), ("hist", True)):
            models = fit_all(ds, ~test, seed, history_only)
            x_test = _view(ds.x[test], history_only)
            base = ds.x[test, BASE]
            mean, p90 = _order(base + models["mean"].predict(x_test), base + models["p90"].predict(x_test))
            pred[f"{prefix}_mean"][test], pred[f"{prefix}_p90"][test] = mean, p90
    for prefix in ("lgb", "hist"):
        mean, p90 = pred[f"{prefix}_mean"], pred[f"{prefix}_p90"]
        for vm in np.unique(ds.vm):
            test = ds.vm == vm
            interval = conformal(mean[~test], p90[~test], ds.y_mean[~test])
            low, high = interval.bounds(mean[test], p90[test])
            pred[f"{prefix}_low"][test] = np.clip(low, 0.0, mean[test])
            pred[f"{prefix}_high"][test] = np.maximum(high, mean[test])
    return pred


def method_predictions(ds: Dataset, pred: Mapping[str, np.ndarray],
                       shipped: str) -> dict[str, dict[str, np.ndarray | None]]:
    col = {f: i for i, f in enumerate(FEATURES)}
    last = ds.x[:, col["dirty_last"]]
    out: dict[str, dict[str, np.ndarray | None]] = {
        BASELINES[0]: {"mean": last, "p90": last, "low": None, "high": None},
        BASELINES[1]: {
            "mean": ds.x[:, col["dirty_mean"]], "p90": ds.x[:, col["dirty_max"]],
            "low": ds.x[:, col["dirty_min"]], "high": ds.x[:, col["dirty_max"]]},
    }
    for prefix, variant in (("hist", "history-only"), ("lgb", "full")):
        label = LABELS[variant] + (SHIPPED_MARK if variant == shipped else "")
        out[label] = {k: pred[f"{prefix}_{k}"] for k in ("mean", "p90", "low", "high")}
    return out


def metrics_of(ds: Dataset, methods: Mapping[str, Mapping[str, np.ndarray | None]],
               mask: np.ndarray) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for name, m in methods.items():
        mean, p90 = m["mean"], m["p90"]
        assert mean is not None and p90 is not None
        e_mean = np.abs(mean[mask] - ds.y_mean[mask])
        e_p90 = np.abs(p90[mask] - ds.y_p90[mask])
        row: dict[str, float | None] = {
            "mae_mean": float(e_mean.mean()),
            "mdape_mean": float(np.median(e_mean / np.maximum(ds.y_mean[mask], APE_FLOOR_MIB_S))),
            "mae_p90": float(e_p90.mean()),
            "mdape_p90": float(np.median(e_p90 / np.maximum(ds.y_p90[mask], APE_FLOOR_MIB_S))),
            "p90_under": float(np.mean(p90[mask] < ds.y_p90[mask])),
            "coverage": None,
            "width": None,
        }
        low, high = m["low"], m["high"]
        if low is not None and high is not None:
            inside = (low[mask] <= ds.y_mean[mask]) & (ds.y_mean[mask] <= high[mask])
            row["coverage"] = float(inside.mean())
            row["width"] = float(np.mean(high[mask] - low[mask]))
        out[name] = row
    return out


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.0f}%" if pct else f"{v:.2f}"


def render_table(metrics: Mapping[str, Mapping[str, float | None]]) -> str:
    lines = ["| method | MAE mean | MdAPE mean | MAE p90 | MdAPE p90 | p90 under-forecast | 80% interval coverage "
             "| interval width |", "|---|---|---|---|---|---|---|---|"]
    for name, r in metrics.items():
        lines.append(f"| {name} | {_fmt(r['mae_mean'])} | {_fmt(r['mdape_mean'], True)} | {_fmt(r['mae_p90'])} | "
                     f"{_fmt(r['mdape_p90'], True)} | {_fmt(r['p90_under'], True)} | {_fmt(r['coverage'], True)} | "
                     f"{_fmt(r['width'])} |")
    return "\n".join(lines)


def render_per_vm(per_vm: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| trace VM | kind | set rate mean (range) MiB/s | points | MAE mean: lightgbm | moving avg "
             "| last value |", "|---|---|---|---|---|---|---|"]
    for r in per_vm:
        lines.append(f"| {r['trace_vm']} | {r['kind']} | {r['rate_mean']:.1f} ({r['rate_min']:.1f}-{r['rate_max']:.1f})"
                     f" | {r['points']} | {r['lightgbm']:.2f} | {r['moving_average']:.2f} | {r['last_value']:.2f} |")
    return "\n".join(lines)


def shipped_label(methods: Mapping[str, Any]) -> str:
    return next(k for k in methods if k.endswith(SHIPPED_MARK))


def summary_lines(metrics: Mapping[str, Mapping[str, Mapping[str, float | None]]]) -> str:
    """One generated sentence per cadence: the shipped model against the best baseline, on the window mean."""
    lines = []
    m: Mapping[str, Mapping[str, float | None]] = {}
    for cad, m in metrics.items():
        shipped = m[shipped_label(m)]
        base_name = min(BASELINES, key=lambda b: float(m[b]["mae_mean"] or 0.0))
        base = m[base_name]
        gain = 1 - float(shipped["mae_mean"] or 0.0) / float(base["mae_mean"] or 1.0)
        p90_gain = 1 - float(shipped["mae_p90"] or 0.0) / min(float(m[b]["mae_p90"] or 1.0) for b in BASELINES)
        lines.append(f"- history at {cad}: MAE of the mean {shipped['mae_mean']:.2f} vs {base['mae_mean']:.2f} "
                     f"MiB/s for the better baseline ({base_name.split(' (')[0]}), {100 * gain:+.0f}% "
                     f"(positive: the model is better); MAE of the p90 {100 * p90_gain:+.0f}% against the better "
                     f"baseline; interval coverage {100 * float(shipped['coverage'] or 0):.0f}% (aim 80%).")
    full, hist = (next(k for k in m if k.startswith(LABELS[v])) for v in ("full", "history-only"))
    pairs = ", ".join(f"{cad} {float(mm[full]['mae_mean'] or 0):.2f} vs {float(mm[hist]['mae_mean'] or 0):.2f}"
                      for cad, mm in metrics.items())
    lines.append(f"- with vs without the CPU/memory features, MAE of the mean: {pairs} MiB/s.")
    return "\n".join(lines)


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in ("lightgbm", "numpy", "pandas", "scikit-learn"):
        out[lib] = metadata.version(lib)
    return out


def collection_summary(df: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, Any]:
    per_vm_s = df.groupby("trace_vm")["replay_time_s"].max()
    measured = df["measured_mib_s"]
    return {
        "vms": int(df["trace_vm"].nunique()),
        "readings": len(df),
        "failed_readings": int(measured.isna().sum()),
        "replay_hours_total": round(float(per_vm_s.sum()) / 3600, 2),
        "replay_hours_per_vm": [round(float(per_vm_s.min()) / 3600, 2), round(float(per_vm_s.max()) / 3600, 2)],
        "wall_minutes": meta.get("wall_minutes"),
        "measure_wall_minutes": round(float(df.groupby(["guest", "segment"])["t_s"].max().sum()) / 60, 1),
        "time_compression": meta.get("time_compression"),
        "sample_wall_s": meta.get("sample_wall_s"),
        "measure_every_s": meta.get("measure_every_s"),
        "mapping": meta.get("mapping"),
        "seed": meta.get("seed"),
        "status": meta.get("status"),
        "set_rate_mib_s": [float(df["set_rate_mib_s"].min()), float(df["set_rate_mib_s"].mean()),
                           float(df["set_rate_mib_s"].max())],
        "measured_mib_s": [float(measured.min()), float(measured.mean()), float(measured.max())],
        "measured_minus_set_mae": float((measured - df["set_rate_mib_s"]).abs().mean()),
    }


def render_card(card: Mapping[str, Any]) -> str:
    c = card["collection"]
    ev = card["evaluation"]
    tables = "\n\n".join(f"History cadence {cad}:\n\n{render_table(m)}" for cad, m in card["metrics"].items())
    return f"""# Model card: {card['model']} {card['version']}

Forecasts a VM's dirty rate over the next {HORIZON_S:.0f} s (one migration window): the mean, the p90 and an
80% interval for the mean, from the last {HISTORY_S:.0f} s of its samples (dirty rate, CPU utilisation, memory
use). Serving: `advisor.ml.forecast.load_dirty_forecaster(Path("models/dirty_rate"))`.

- Trained on real page-sampling measurements (`startDirtyRateCalc(1)`, 1 s windows every {c['measure_every_s']} s)
  of lab guests (128 MiB TCG) replaying {c['vms']} Bitbrains VMs: {c['replay_hours_total']} h of trace
  ({c['replay_hours_per_vm'][0]}-{c['replay_hours_per_vm'][1]} h per VM), {c['measure_wall_minutes']} guest-minutes
  measured in a {c['wall_minutes']} min job (2 guests at once), {c['readings']} readings
  ({c['failed_readings']} failed); compression x{c['time_compression']}.
- Cadence: the lab measured every {c['measure_every_s']} s; the model was trained on histories at
  {', '.join(f'{x:g}' for x in CADENCES_S)} s cadence (thinned), so it is meant for production's 15-30 s. At a
  60 s cadence a 60 s window usually holds 1 reading, fewer than the 2 it needs, and `forecast` returns None.
- Features (schema hash `{card['schema_hash'][:16]}...`): {', '.join(FEATURES)}; the models are monotone
  non-decreasing in every dirty-rate feature.
- Interval: {card['interval']['kind']}: low = mean {card['interval']['q_low']:+.3f} x (4 + mean),
  high = mean + {card['interval']['q_high']:.3f} x (4 + p90), MiB/s.
- Evaluation: {ev['method']}.

{tables}

Caveats: the guest's dirtying is *driven* by the trace's CPU utilisation (the mapping below), so CPU is a
better predictor here than it will be in production; yet on held-out VMs the CPU/memory features add about
nothing over the dirty-rate history (compare the two LightGBM rows; `--variant history-only` ships the other).
Readings are page-sampling readings (2 MiB/s steps, about +-6 MiB/s per reading, floor ~2 MiB/s, level off at
45-50 MiB/s); the targets are means and p90s of such readings, not of the guest's true write rate. Rates come
from a 128 MiB guest whose writable region is 43 MiB; no rate above 40 MiB/s was set.

Mapping: {c['mapping']}.

Data: `{card['data']['file']}` sha256 `{card['data']['sha256'][:16]}...`; trained in {card['train_seconds']:.0f} s,
seed {card['seed']}; libraries {', '.join(f'{k} {v}' for k, v in card['libraries'].items())}.
"""


def docs_page(card: Mapping[str, Any], per_vm_table: str) -> str:
    c = card["collection"]
    ev = card["evaluation"]
    tables = "\n\n".join(f"### History at a {cad} cadence\n\n{render_table(m)}" for cad, m in card["metrics"].items())
    return f"""# Dirty-rate forecaster (issue 5)

A VM's dirty rate decides whether a pre-copy converges, so the advisor forecasts it for the next migration window
instead of trusting one noisy reading. This page is written by `python -m training.train_dirty`; the model card
is `models/dirty_rate/{card['version']}/card.md`.

```sh
.venv/bin/python -m training.collect_dirty   # ~31 min: lab of its own, 2 guests, writes training/data/dirty_rates.csv
.venv/bin/python -m training.train_dirty     # < 1 min: evaluation, final fit, models/dirty_rate/, this page
.venv/bin/pytest tests/test_forecast.py -q
```

```python
from pathlib import Path
from advisor.ml.forecast import load_dirty_forecaster
forecaster = load_dirty_forecaster(Path("models/dirty_rate"))  # falls back to the moving average, saying why
times, values = store.window("vm-42")                           # SeriesStore(VM_FIELDS)
f = forecaster.forecast(times, values, store.fields, now_s=time.time())
if f is not None:
    print(f.describe())
    # dirty rate 23.4 MiB/s (p90 31.0) forecast by lightgbm-dirty {card['version']} from 30 samples over 60 s
```

`forecast` returns None with fewer than 2 dirty-rate readings in the last {HISTORY_S:.0f} s or when they span less
than 10 s. `DirtyRateForecast`: `mean_mib_s`, `p90_mib_s`, `interval` (low, high: ~80% for the mean),
`samples_used`, `window_s`, `horizon_s`, `model` (`ModelRef`; `fallback_reason` set when the learned model was
refused: missing artifact, schema mismatch, unreadable model).

## Collection (`training/collect_dirty.py`)

A lab of its own (`/tmp/advisor-dirty-lab`, 1 host, 2 guests: each dirtying guest costs a core and the machine
has 2). Each guest replays {c['vms'] // 2} trace VMs one after the other; each VM's window of consecutive
5-minute Bitbrains samples becomes a schedule that runs in the guest, one trace sample lasting
{c['sample_wall_s']} s of wall time (compression x{c['time_compression']}). Both guests are measured in the same
1 s page-sampling window every {c['measure_every_s']} s through libvirt (`startDirtyRateCalc` +
`VIR_DOMAIN_STATS_DIRTYRATE`); there are no migrations in the job, so no reading overlaps one.

Mapping of a trace sample to a set dirty rate: {c['mapping']}. The cap keeps it in the range page sampling reads
back (4-40 MiB/s, docs/lab.md); idle VMs stay at the lab's floor. VMs are picked with a seed ({c['seed']}) from
gap-free windows where memory use is reported, by behaviour: idle (p90 CPU < 5%), busy (mean > 30%), bursty
(CPU coefficient of variation > 0.6), steady (the rest).

| figure | value |
|---|---|
| trace VMs | {c['vms']} |
| replay time | {c['replay_hours_total']} h of trace \
({c['replay_hours_per_vm'][0]}-{c['replay_hours_per_vm'][1]} h per VM) |
| wall time of the job / guest-minutes measured | {c['wall_minutes']} min / {c['measure_wall_minutes']} min |
| readings (failed) | {c['readings']} ({c['failed_readings']}) |
| set rate min / mean / max | {" / ".join(f"{v:.1f}" for v in c['set_rate_mib_s'])} MiB/s |
| measured min / mean / max | {" / ".join(f"{v:.1f}" for v in c['measured_mib_s'])} MiB/s |
| mean abs(measured - set) | {c['measured_minus_set_mae']:.1f} MiB/s |
| forecast points (all cadences) | {ev['points']} |

## Evaluation: leave one trace VM out

{ev['method']}. Targets: the mean and the p90 of the readings in the next {HORIZON_S:.0f} s. MdAPE is the
median of |error| / max(target, {APE_FLOOR_MIB_S:g} MiB/s) (the floor keeps idle VMs from dominating). "p90
under-forecast": how often the forecast p90 was below the p90 that followed. Interval coverage is of the window
mean (aim 80%).

{summary_lines(card['metrics'])}

{tables}

Per held-out trace VM (history at a 2 s cadence, MAE of the window mean, MiB/s):

{per_vm_table}

## Model

Features ({len(FEATURES)}, `advisor.features.dirty.FEATURES`, schema hash `{card['schema_hash'][:16]}...`): the last,
mean, EWMA (tau 15 s), min, median and max of the dirty-rate readings in the last {HISTORY_S:.0f} s, their trend
(least-squares slope), the window mean scaled by how CPU use moved (newest / window mean CPU utilisation), that
CPU ratio, and the newest memory use relative to the window's mean. Absolute CPU utilisation is not a feature:
how much a VM dirties per CPU-% differs between VMs (a development run on the first 6 VMs with absolute CPU
features and no residual target was worse than the baselines on held-out VMs). All windows are in seconds, not
samples. Two LightGBM models (the horizon's mean and p90), each learning the target minus the
EWMA (so a forecast follows the VM's own level, even beyond the levels seen in training) and each monotone
non-decreasing in the dirty-rate features, so raising the most recent readings of an otherwise equal history
never lowers a forecast (tested; the test fails for models trained without the constraints). The interval is
scaled split-conformal (LightGBM cannot constrain quantile objectives to be monotone): low = mean
{card['interval']['q_low']:+.3f} x (4 + mean), high = mean + {card['interval']['q_high']:.3f} x (4 + p90), with the
factors from the out-of-fold residuals, so both bounds are monotone as well. The p90 model estimates the p90 of
the next window's readings, so it is below what follows about half of the time by design (the "p90
under-forecast" column): it is a forecast of the burst level, not a 90% upper bound.

Caveats: the guest's dirtying is driven by the trace's CPU utilisation, so CPU is a stronger predictor here than in
production, and even so the CPU/memory features add about nothing on held-out VMs (compare the two LightGBM rows;
`python -m training.train_dirty --variant history-only` ships the history-only models instead); readings are
page-sampling readings of a 128 MiB guest (2 MiB/s steps, about +-6 MiB/s; no rate above 40 MiB/s was set);
production samples every 15-60 s, the model was trained on
histories thinned to {', '.join(f'{x:g}' for x in CADENCES_S)} s.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--models-dir", type=Path, default=REPO / "models" / "dirty_rate")
    p.add_argument("--version", default=None,
                   help="the version to write; refused if it exists (default: the next free one, e.g. 1.0.0 -> 1.1.0)")
    p.add_argument("--activate", action="store_true",
                   help="point ACTIVE at the new version (default: write it, leave the active one in place)")
    p.add_argument("--docs", default=str(REPO / "docs" / "dirty-rate.md"), help="'' to skip")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--variant", choices=sorted(LABELS), default="full",
                   help="which LightGBM variant to ship (both are evaluated): all features, or the dirty-rate "
                        "history only (CPU and memory features blanked in training, so the models never use them)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.version = registry(args.models_dir).new_version(args.version)
    except ArtifactError as e:
        print(f"train_dirty: {e}", file=sys.stderr)
        return 2
    started = time.monotonic()
    df = load_readings(args.data)
    meta_path = args.data.with_suffix(".meta.json")
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    every_s = float(meta.get("measure_every_s", 2.0))
    ds = build_dataset(df, every_s)
    print(f"{len(df)} readings of {df['trace_vm'].nunique()} trace VMs -> {len(ds.y_mean)} forecast points",
          flush=True)

    pred = cross_validate(ds, args.seed)
    methods = method_predictions(ds, pred, args.variant)
    metrics = {f"{c:g} s": metrics_of(ds, methods, ds.cadence == c) for c in CADENCES_S}
    kinds = {r["trace_vm"]: r["kind"] for r in meta.get("replays", [])}
    per_vm = []
    for vm in np.unique(ds.vm):
        mask = (ds.vm == vm) & (ds.cadence == CADENCES_S[0])
        rates = df.loc[df["trace_vm"] == vm, "set_rate_mib_s"]
        m = metrics_of(ds, methods, mask)
        per_vm.append({"trace_vm": int(vm), "kind": kinds.get(int(vm), "?"), "points": int(mask.sum()),
                       "rate_mean": float(rates.mean()), "rate_min": float(rates.min()), "rate_max": float(rates.max()),
                       "lightgbm": m[shipped_label(m)]["mae_mean"], "moving_average": m[BASELINES[1]]["mae_mean"],
                       "last_value": m[BASELINES[0]]["mae_mean"]})

    history_only = args.variant == "history-only"
    prefix = "hist" if history_only else "lgb"
    final = fit_all(ds, np.ones(len(ds.y_mean), dtype=bool), args.seed, history_only)
    interval = conformal(pred[f"{prefix}_mean"], pred[f"{prefix}_p90"], ds.y_mean)
    train_seconds = time.monotonic() - started

    try:
        data_file = str(args.data.resolve().relative_to(REPO))
    except ValueError:
        data_file = str(args.data)
    command = "python -m training.train_dirty" + (f" --variant {args.variant}" if args.variant != "full" else "")
    card: dict[str, Any] = {
        "model": MODEL_NAME,
        "version": args.version,
        "schema_hash": schema_hash(),
        "schema": schema_document(),
        "files": {role: f"{role}.txt" for role in MODEL_ROLES},
        "objectives": OBJECTIVES,
        "params": {k: v for k, v in PARAMS.items() if k != "n_jobs"},
        "seed": args.seed,
        "variant": args.variant,
        "interval": {"kind": "scaled split-conformal 80% for the mean (leave-one-VM-out residuals)",
                     "coverage_target": INTERVAL_COVERAGE, "q_low": interval.q_low, "q_high": interval.q_high,
                     "floor_mib_s": interval.floor_mib_s},
        "training_cadences_s": list(CADENCES_S),
        "measured_cadence_s": every_s,
        "data": {"file": data_file, "sha256": file_sha256(args.data), "rows": len(df),
                 "points": len(ds.y_mean)},
        "collection": collection_summary(df, meta),
        "evaluation": {"method": f"Leave one trace VM out ({len(np.unique(ds.vm))} folds), every method in the "
                                 f"same run on the same held-out points", "points": len(ds.y_mean),
                       "per_vm": per_vm},
        "metrics": metrics,
        "train_seconds": round(train_seconds, 1),
        "libraries": library_versions(),
        "created_by": command,
        "promotion": promotion_on_request(args.activate),
    }

    def write_files(directory: Path) -> None:
        for role in MODEL_ROLES:
            final[role].booster_.save_model(str(directory / card["files"][role]))
        (directory / "card.md").write_text(render_card(card))

    out_dir = registry(args.models_dir).write(card, write_files, activate=args.activate)
    print(f"wrote {out_dir}" + (f"; {args.models_dir / 'ACTIVE'} -> {args.version}" if args.activate
                                else "; ACTIVE unchanged"), flush=True)
    if args.docs:
        Path(args.docs).write_text(docs_page(card, render_per_vm(per_vm)))
        print(f"wrote {args.docs}", flush=True)
    for cad, m in metrics.items():
        print(f"\nhistory cadence {cad}\n{render_table(m)}")
    print(f"\n{render_per_vm(per_vm)}\ninterval {interval}; done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
