"""The migrations the cost models learn from, from every source, in one table.

- The shared SNU data (`../shared/data/migrations/snu-live-migrations.csv`): source `snu`; `vm_memory_mib` is
  memory in use, QEMU's default 300 ms allowed downtime, no deadline, every run completed.
- The project's own lab collection (`training/data/lab_migrations.csv`, `python -m training.collect_lab`): source
  `lab`; `vm_memory_mib` is configured RAM, and memory in use is what a running advisor reads for it, RAM less
  the guest's MemAvailable (advisor/adapters/libvirt.py): the dataset records the balloon's MemTotal -
  MemAvailable, and MemTotal is a constant of the lab's guest kernel per RAM size (GUEST_MEMTOTAL_MIB, read from
  the balloon; rows collected since the v2 grid record it, `balloon_available_mib`). QEMU copies the non-zero
  pages (`nonzero_mib`, measured after the first round), 9% more (median)
  than RAM - MemAvailable on these guests; training on what serving reads keeps the two the same by
  construction. Migrations that failed in the lab (not
  in the migration: a guest that did not boot) are left out. The advisor's post-copy switches as soon as the job
  runs, so the lab's post-copy migrations teach it only where they did so (switch `start`); those planned to
  switch later (after the first round, after 5 s) are left out, whether they switched or completed before the
  switch: their time and downtime are those of a plan the advisor never makes (and counting the ones that
  completed early as pre-copy would add only the fast successes of their settings). `lab_postcopy_rows` says
  how many of each.
- Migrations the advisor executed (`advisor outcomes export`, given with --outcomes), in the same columns. Those
  it aborted (an operator, or the monitor's judgement) are censored, not "did not converge": nobody saw how they
  would have ended, so they teach neither the costs nor convergence and are left out, as failed ones are.

Each row gets a `group`: the configuration it belongs to (the SNU workload; the lab's writer setting and memory;
an executed migration's VM, host pair and day), so that evaluation holds out whole configurations, never single
runs of one seen elsewhere, and a `lock_group`: what training/splits.py hashes to set the locked test part
aside. `load_all` returns every row but the locked ones; `load_locked` those alone, for the promotion gate only.

`with_variants` repeats each row that has optional measurements without them (no working-set windows, no memory
in use, neither: then without the hosts' load too), each copy weighted so a migration counts once: the models learn
what to do when a caller gives only some of the columns, and are evaluated that way too.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.features.dataset import OUTCOMES
from advisor.features.inputs import INPUT_COLUMNS, PROFILES
from advisor.ml.cost_features import TECHNIQUE_CODE, FeatureSet
from training.data import DEFAULT_DATA, TARGET_COLUMNS, file_sha256, load_migrations
from training.splits import locked_mask, outcome_group

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LAB_DATA = ROOT / "training" / "data" / "lab_migrations.csv"
# vcpu_utilization: with it a busy guest whose page sampling reads ~0 has a blind reading (unknown, taken as the
# link's rate), as serving and `advisor predict cost` read it; without it training saw those lab runs as idle.
OPTIONAL = ("source", "memory_used_mib", "max_downtime_ms", "deadline_ms", "working_set_mib",
            "dirty_rate_2s_pages_per_s", "dirty_rate_4s_pages_per_s", "vcpu_utilization", "host_load_per_cpu",
            "resident_memory_mib")
WINDOWS = ("working_set_mib", "dirty_rate_2s_pages_per_s", "dirty_rate_4s_pages_per_s")
VARIANTS = ("full", "no windows", "no memory in use", "neither")
# MemTotal of the lab's guest kernel (Debian cloud kernel, busybox initramfs) by configured RAM, MiB: the balloon's
# `available` (94,800 and 223,632 KiB). The rest of the RAM is the kernel's own, and QEMU sends it.
GUEST_MEMTOTAL_MIB = {128: 94_800 / 1024, 256: 223_632 / 1024}


def input_file(text: str) -> Path:
    """An argparse type for an input file: one named that is not there is a usage error before any work."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a file")
    return path.resolve()


def optional_input_file(text: str) -> Path | None:
    """`input_file`, '' for none (Path('') would be the current directory)."""
    return input_file(text) if text else None


def output_problem(path: Path, *, directory: bool = False) -> str | None:
    """Why `path` (a file, or with `directory` a directory, made with its parents if missing) cannot be written,
    None if it can: checked before the work, not found after it."""
    if path.exists() and path.is_dir() != directory:
        return f"{path} is {'not a directory' if directory else 'a directory'}"
    existing = path if directory else path.parent
    if not directory and not existing.is_dir():
        return f"{path}: no directory {existing}"
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{path}: {existing} is not a directory"
    if not os.access(existing, os.W_OK):
        return f"{path}: {existing} is not writable"
    return None


def load_snu(path: Path = DEFAULT_DATA) -> pd.DataFrame:
    frame = load_migrations(path)
    frame["source"] = "snu"
    frame["outcome"] = "completed"
    frame["group"] = "snu:" + frame["workload"]
    frame["report_group"] = frame["group"]
    frame["lock_group"] = frame["group"] + "@" + frame["max_bandwidth_mib_s"].round().astype(int).astype(str)
    for column in OPTIONAL[1:]:
        frame[column] = np.nan
    return frame


def load_lab(path: Path = DEFAULT_LAB_DATA) -> pd.DataFrame:
    frame = pd.read_csv(path)
    missing = [c for c in (*INPUT_COLUMNS, "workload", "outcome", "nonzero_mib", *TARGET_COLUMNS)
               if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    unknown = sorted(set(frame["technique"]) - set(TECHNIQUE_CODE))
    if unknown or not set(frame["outcome"]) <= set(OUTCOMES):
        raise ValueError(f"{path}: unknown techniques {unknown} or outcomes {sorted(set(frame['outcome']))}")
    frame = frame[frame["outcome"] != "failed"].copy()
    frame = as_the_advisor_plans_postcopy(frame)
    frame = as_serving_reads_memory(frame, path)
    # The lab's hosts talk over loopback, which has no link limit of its own (the dataset writes 10 Gbit/s): the
    # cap is the link. The advisor in the lab is told so (advisor/cli/demo.py: a link of the cap's speed), and
    # the rows are read the same way, or the models would learn from a 10 Gbit/s link they are never served. A
    # shaped link (the `links` grid, advisor/lab/shaping.py) is slower than the cap and recorded: it is kept.
    cap_mbps = frame["max_bandwidth_mib_s"] * (1 << 20) * 8 / 1e6
    frame["available_bandwidth_mbps"] = np.fmin(frame["available_bandwidth_mbps"], cap_mbps)
    frame["source"] = "lab"
    frame["technique"] = frame["technique"].astype(str)
    frame["workload"] = frame["workload"].astype(str)
    frame["group"] = "lab:" + frame["workload"] + "@" + frame["vm_memory_mib"].astype(int).astype(str)
    frame["lock_group"] = frame["group"]
    # A grid point is one or two migrations: the worst group is reported over pattern, memory and cap instead.
    pattern = frame["pattern"].astype(str) if "pattern" in frame.columns else frame["workload"].str.split("-").str[0]
    frame["report_group"] = ("lab:" + pattern + " " + frame["vm_memory_mib"].astype(int).astype(str) + " MiB cap "
                             + frame["max_bandwidth_mib_s"].round().astype(int).astype(str))
    frame["transferred_mib"] = frame["transferred_kib"] / 1024.0
    cpus = lab_cpus(path)
    if "host_load_1m" in frame.columns and cpus:  # else missing, as every OPTIONAL column below
        frame["host_load_per_cpu"] = frame["host_load_1m"] / cpus
    if "qemu_rss_mib" in frame.columns:  # what the source QEMU held resident, as serving reads it (memoryStats rss)
        frame["resident_memory_mib"] = frame["qemu_rss_mib"]
    for column in OPTIONAL:
        if column not in frame.columns:
            frame[column] = np.nan
    return frame.reset_index(drop=True)


def lab_cpus(path: Path) -> int | None:
    """The CPUs of the machine a lab file was collected on (`machine.cpus` of its `.meta.json` card): its rows
    record the machine's 1-minute load average (`host_load_1m`), which over these is the input `host_load_per_cpu`.
    None where no card says: the load per CPU is then not known, never taken from another machine."""
    card = path.with_name(path.name.removesuffix(".csv") + ".meta.json")
    try:
        cpus = json.loads(card.read_text()).get("machine", {}).get("cpus")
    except (OSError, ValueError):
        return None
    return int(cpus) if isinstance(cpus, int) and cpus > 0 else None


def as_serving_reads_memory(frame: pd.DataFrame, path: Path | str = "lab data") -> pd.DataFrame:
    """The lab's rows with memory in use as a running advisor reads it, RAM - MemAvailable: the collection records
    the balloon's MemTotal - MemAvailable (kept as `balloon_used_mib`), and MemTotal is a constant of the lab's
    guest per RAM size (GUEST_MEMTOTAL_MIB) until the v2 collection, which records it (`balloon_available_mib`)."""
    frame = frame.copy()
    frame["balloon_used_mib"] = frame.get("memory_used_mib", np.nan)
    memtotal = frame["vm_memory_mib"].map(GUEST_MEMTOTAL_MIB)
    if "balloon_available_mib" in frame.columns:  # the balloon's MemTotal, recorded since the v2 collection
        memtotal = frame["balloon_available_mib"].fillna(memtotal)
    if memtotal.isna().any():
        raise ValueError(f"{path}: no guest MemTotal known for memory sizes "
                         f"{sorted(set(frame['vm_memory_mib'][memtotal.isna()]))} (GUEST_MEMTOTAL_MIB)")
    frame["memory_used_mib"] = frame["vm_memory_mib"] - memtotal + frame["balloon_used_mib"]
    return frame


def lab_postcopy_rows(frame: pd.DataFrame) -> dict[str, int]:
    """The lab's post-copy migrations: switched at once (kept), completed before a later planned switch, switched
    later (both left out)."""
    post = frame[frame["technique"] == "postcopy"]
    if "postcopy_switch" not in post.columns:
        return {"switched at once": len(post), "never switched": 0, "switched later": 0}
    switched = post["postcopy_after_ms"].notna() if "postcopy_after_ms" in post.columns else pd.Series(True, post.index)
    at_once = post["postcopy_switch"].astype(str) == "start"
    return {"switched at once": int((at_once & switched).sum()),
            "never switched": int((~switched & (post["outcome"] == "completed")).sum()),
            "switched later": int((~at_once & switched).sum())}


def as_the_advisor_plans_postcopy(frame: pd.DataFrame) -> pd.DataFrame:
    """See the module: only the post-copy rows planned as the advisor plans post-copy (switch at once)."""
    if "postcopy_switch" not in frame.columns:
        return frame
    later = (frame["technique"] == "postcopy") & (frame["postcopy_switch"].astype(str) != "start")
    return frame[~later].copy()


def load_outcomes(path: Path) -> pd.DataFrame:
    """Migrations the advisor executed (`advisor outcomes export`), its source the host profile it ran on, grouped
    by VM, host pair and day (`training.splits.outcome_group`; each its own group in an export without them)."""
    frame = pd.read_csv(path)
    # migration_id groups a row when the export lacks what outcome_group reads (every export has it)
    missing = [c for c in ("migration_id", *INPUT_COLUMNS, "outcome", *TARGET_COLUMNS) if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    frame = frame[frame["outcome"] == "completed"].copy()  # aborted ones are censored, failed ones unknown
    # only the techniques the models learn: a cold move's cost is its steps (advisor.physics.cold)
    frame = frame[frame["technique"].isin(list(TECHNIQUE_CODE))].copy()
    # a figure not measured (e.g. the downtime of a migration reconciled after a restart) is unknown: not taught
    frame = frame.dropna(subset=list(TARGET_COLUMNS))
    # nor one whose dirty rate was assumed (exported empty): its inputs are not what the migration saw
    frame = frame.dropna(subset=["dirty_rate_pages_per_s"])
    # the host profile the prediction was made for (advisor outcomes export writes it); none: the default, snu
    source = frame["source"] if "source" in frame.columns else pd.Series("snu", index=frame.index)
    frame["source"] = source.fillna("snu").astype(str).replace({"": "snu", "advisor": "snu"})
    # a profile the learned model does not know learns online (advisor.ml.profile_store.OnlineProfiles), not here
    frame = frame[frame["source"].isin(PROFILES)].copy()
    frame["workload"] = "advisor"
    if {"vm_id", "source_host_id", "target_host_id", "finished_at_s"} <= set(frame.columns):
        frame["group"] = [outcome_group(str(v), str(s), str(t), float(f)) for v, s, t, f in zip(
            frame["vm_id"], frame["source_host_id"], frame["target_host_id"],
            pd.to_numeric(frame["finished_at_s"], errors="coerce"), strict=True)]
    else:
        frame["group"] = "advisor:" + frame["migration_id"].astype(str)
    frame["lock_group"] = frame["group"]
    frame["report_group"] = "advisor:" + frame["source"]
    frame["transferred_mib"] = frame["transferred_kib"] / 1024.0
    for column in OPTIONAL:
        if column not in frame.columns:
            frame[column] = np.nan
    return frame.reset_index(drop=True)


def load_all(snu: Path = DEFAULT_DATA, lab: Path | None = DEFAULT_LAB_DATA,
             outcomes: tuple[Path, ...] = ()) -> pd.DataFrame:
    """Every migration training, tuning and evaluation may read: all but the locked test part."""
    every = _every_source(snu, lab, outcomes)
    return every[~locked_mask(every)].reset_index(drop=True)


def without_locked(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of one source's table (`load_lab`, `load_snu`) that training, tuning and evaluation may read."""
    return frame[~locked_mask(frame)].reset_index(drop=True)


def load_locked(snu: Path = DEFAULT_DATA, lab: Path | None = DEFAULT_LAB_DATA,
                outcomes: tuple[Path, ...] = ()) -> pd.DataFrame:
    """The locked test part alone: for the promotion gate (training/gate.py), never for training or tuning."""
    every = _every_source(snu, lab, outcomes)
    return every[locked_mask(every)].reset_index(drop=True)


def _every_source(snu: Path, lab: Path | None, outcomes: tuple[Path, ...]) -> pd.DataFrame:
    frames = [load_snu(snu)]
    if lab is not None:  # named: it must be there (FileNotFoundError), never silently left out
        frames.append(load_lab(lab))
    frames += [load_outcomes(path) for path in outcomes]
    keep = ["migration_id", "technique", "workload", *INPUT_COLUMNS[1:], *OPTIONAL, "outcome", "group",
            "report_group", "lock_group", *TARGET_COLUMNS, "transferred_mib", "nonzero_mib"]
    return pd.concat([f.reindex(columns=keep) for f in frames], ignore_index=True)


def with_variants(frame: pd.DataFrame) -> pd.DataFrame:
    """Each row, and for rows with optional measurements, copies without them; `variant` names which, `weight`
    sums to 1 per migration and `row` points at the original row."""
    has_windows = frame[list(WINDOWS)].notna().any(axis=1)
    has_used = frame["memory_used_mib"].notna() & (frame["source"] != "snu")
    parts = []
    for variant in VARIANTS:
        drop_windows = variant in ("no windows", "neither")
        drop_used = variant in ("no memory in use", "neither")
        take = pd.Series(True, index=frame.index)
        if drop_windows:
            take &= has_windows
        if drop_used:
            take &= has_used
        part = frame[take].copy()
        if drop_windows:
            part.loc[:, list(WINDOWS)] = np.nan
        if drop_used:
            part.loc[:, "memory_used_mib"] = np.nan
        if variant == "neither":  # none of the optional measurements: a host without load samples either
            part.loc[:, ["host_load_per_cpu", "resident_memory_mib"]] = np.nan
        part["variant"] = variant
        part["row"] = part.index
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["weight"] = 1.0 / out.groupby("row")["row"].transform("size")
    return out


def typical_first_pass(fs: FeatureSet, nonzero_mib: np.ndarray, basis: np.ndarray | None = None) -> np.ndarray:
    """Per row, what to add to a correction's log label of time or data so that the label is what the migration
    would have cost had its first pass sent the typical share of the memory the features read, not the non-zero
    pages QEMU found (`nonzero_mib`, measured in the lab; 0 where not measured).

    Serving reads memory in use (RAM less MemAvailable), never the non-zero pages. On the lab's first collection
    these were 4-13% more; on the later ones (512 MiB-1 GiB guests that had run other programs: memory a program
    freed keeps its content) 0.6 to 3.9 times as much, which no input tells. Learned as it was measured, that
    spread taught the correction spurious rules (a long analytic time, a large RAM: more sent) that then held for
    every technique, post-copy's single pass too. The typical share (the median over the rows that measured
    memory in use; where it was not, the features read RAM, and the correction learns what share of it is sent)
    stays in the label; the rest is left to the intervals, calibrated on the actual figures. `basis` says per row
    what the features' first pass was read from (resident memory or memory in use: 0.98x and 1.61x of the non-zero
    pages on the same migrations); each has its own typical share."""
    ratio = nonzero_mib / np.exp(fs.column("log_first_pass_mib"))
    known = fs.column("memory_known") == 1
    out = np.zeros(len(ratio))
    measured = np.isfinite(ratio) & (ratio > 0) & known
    basis = np.zeros(len(ratio)) if basis is None else np.asarray(basis)
    for kind in np.unique(basis[measured]):
        rows = measured & (basis == kind)
        out[rows] = np.log(np.median(ratio[rows])) - np.log(ratio[rows])
    return out


def fingerprints(snu: Path, lab: Path | None) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {"snu": {"file": snu.name, "sha256": file_sha256(snu)}}
    if lab is not None:
        out["lab"] = {"file": str(lab.relative_to(ROOT)) if lab.is_relative_to(ROOT) else lab.name,
                      "sha256": file_sha256(lab)}
    return out
