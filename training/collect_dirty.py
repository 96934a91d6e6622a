"""Collect real dirty-rate measurements from lab guests that replay Bitbrains VM activity.

    .venv/bin/python -m training.collect_dirty                     # ~31 min wall, writes training/data/
    .venv/bin/python -m training.collect_dirty --help

What it does (see docs/dirty-rate.md for the figures of the shipped run):

1. Reads the Bitbrains "Rnd" trace (`../shared/data/bitbrains/rnd-2013-7.csv.gz`, never copied into the repo) and
   picks, with a seed, `guests x segments` trace VMs with varied behaviour (a few idle, steady, bursty and busy
   ones), each with a window of `samples` consecutive 5-minute samples.
2. Maps each trace sample to a dirty rate for the guest (MAPPING below) and replays the window as a schedule that
   runs in the guest: one 5-minute trace sample lasts `--sample-wall-s` seconds of wall time (6 s: a time
   compression of 50, so 50 samples = 4 h 10 min of trace per VM in 300 s of wall time).
3. Brings up its own lab (root /tmp/advisor-dirty-lab, cache .lab/cache, 1 host, 2 guests: each dirtying guest
   costs a CPU core and the machine has 2) and, while the schedules run, measures every guest through libvirt
   page sampling (`startDirtyRateCalc(1)`, both guests in the same 1 s window, every `--every-s` seconds). No
   migrations happen in this job, so no reading overlaps one.
4. Writes one row per reading to training/data/dirty_rates.csv (appended and flushed as it goes, so an
   interrupted run keeps what it measured) and the run's figures to training/data/dirty_rates.meta.json.
   The lab is always taken down at the end, also on error or SIGTERM. `--max-minutes` (35) time-boxes the job:
   measuring stops early enough to take the lab down within it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import libvirt
import numpy as np
import pandas as pd

from advisor.lab import Lab, virt

REPO = Path(__file__).resolve().parents[1]
TRACE = REPO.parent / "shared" / "data" / "bitbrains" / "rnd-2013-7.csv.gz"
OUT_DIR = REPO / "training" / "data"
TRACE_STEP_S = 300.0  # Bitbrains samples every 5 minutes

# The mapping from a trace sample to a guest dirty rate (MiB/s):
#   rate_t = min(CAP, k_vm * u_t * m_t)
#   u_t  = cpu_usage_mhz / cpu_capacity_mhz of the trace VM at t (0..1)
#   m_t  = clip(sqrt(memory_usage_t / mean memory_usage over the window), 0.5, 1.5): busier memory, more dirtying
#   k_vm = min(K_MAX, target_vm / p90(u over the window)): each VM's own busy level (its p90 utilisation) maps to
#          target_vm MiB/s, a per-VM dirtying intensity drawn (seeded) from TARGET_RANGE, so that the VMs cover
#          the range at different levels; never more than K_MAX MiB/s per unit of utilisation (2 MiB/s per
#          CPU-%), so an idle VM stays idle (near the lab's 2-4 MiB/s floor) instead of being blown up.
# CAP keeps the set rate in the range page sampling can read back (about 4-40 MiB/s; docs/lab.md).
CAP_MIB_S = 40.0
TARGET_RANGE_MIB_S = (12.0, 36.0)
K_MAX_MIB_S = 200.0
MAPPING = (f"rate = min({CAP_MIB_S:g}, k_vm * cpu_util * m), m = clip(sqrt(mem_used / window mean mem_used), "
           f"0.5, 1.5), k_vm = min({K_MAX_MIB_S:g}, target_vm / p90(cpu_util over the window)), "
           f"target_vm ~ U{TARGET_RANGE_MIB_S} per VM (seeded); rounded to 0.25 MiB/s")

FIELDS = ("guest", "trace_vm", "segment", "wall_time_s", "t_s", "replay_time_s", "trace_timestamp_s",
          "set_rate_mib_s", "measured_mib_s", "cpu_utilization", "memory_used_mib")


@dataclass(frozen=True)
class Replay:
    vm: int
    kind: str
    timestamps: np.ndarray  # trace timestamps of the window, one per 5-minute sample
    cpu_util: np.ndarray
    mem_mib: np.ndarray
    rates: np.ndarray  # MiB/s set for each sample


def load_trace(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, usecols=["vm", "timestamp_s", "cpu_capacity_mhz", "cpu_usage_mhz", "memory_usage_kib"])
    df = df.sort_values(["vm", "timestamp_s"], kind="stable").reset_index(drop=True)
    cap = df["cpu_capacity_mhz"].where(df["cpu_capacity_mhz"] > 0)
    df["cpu_util"] = (df["cpu_usage_mhz"] / cap).clip(0.0, 1.0)
    df["mem_mib"] = df["memory_usage_kib"] / 1024.0
    return df[["vm", "timestamp_s", "cpu_util", "mem_mib"]]


def map_rates(cpu_util: np.ndarray, mem_mib: np.ndarray, target_mib_s: float) -> np.ndarray:
    """The documented mapping (MAPPING) for one window of one VM."""
    p90 = float(np.quantile(cpu_util, 0.9))
    k = K_MAX_MIB_S if p90 <= 0 else min(K_MAX_MIB_S, target_mib_s / p90)
    mean_mem = float(np.mean(mem_mib))
    m = np.ones_like(mem_mib) if mean_mem <= 0 else np.clip(np.sqrt(np.maximum(mem_mib, 0) / mean_mem), 0.5, 1.5)
    rates = np.minimum(CAP_MIB_S, k * cpu_util * m)
    return np.round(rates * 4) / 4


def _windows(df: pd.DataFrame, samples: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """One random window of `samples` consecutive (gap-free) samples per VM, with its behaviour class."""
    out = []
    for vm, g in df.groupby("vm", sort=True):
        ts = g["timestamp_s"].to_numpy()
        util = g["cpu_util"].to_numpy()
        mem = g["mem_mib"].to_numpy()
        ok = np.isfinite(util) & np.isfinite(mem)
        if len(ts) < samples + 1:
            continue
        gaps = np.abs(np.diff(ts) - TRACE_STEP_S) > 30  # a gap-free window has every step ~300 s
        for _ in range(8):
            start = int(rng.integers(0, len(ts) - samples))
            sl = slice(start, start + samples)
            if gaps[start:start + samples - 1].any() or not ok[sl].all() or (mem[sl] <= 0).mean() > 0.1:
                continue  # a gap, a missing value, or memory use not reported (0) in more than 10% of the window
            u = util[sl]
            mean, p90 = float(u.mean()), float(np.quantile(u, 0.9))
            cv = float(u.std() / mean) if mean > 0 else 0.0
            if p90 < 0.05:
                kind = "idle"
            elif mean > 0.3:
                kind = "busy"
            elif cv > 0.6:
                kind = "bursty"
            else:
                kind = "steady"
            out.append({"vm": int(vm), "start": start, "kind": kind, "ts": ts[sl], "u": u, "mem": mem[sl]})
            break
    return out


def pick_replays(df: pd.DataFrame, count: int, samples: int, seed: int) -> list[Replay]:
    """`count` VMs of varied behaviour: about 1/6 idle, 1/3 bursty, 1/4 steady, the rest busy (seeded)."""
    rng = np.random.default_rng(seed)
    windows = _windows(df, samples, rng)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for w in windows:
        by_kind.setdefault(w["kind"], []).append(w)
    want = {"idle": max(1, count // 6), "bursty": max(1, count // 3), "steady": max(1, count // 4)}
    want["busy"] = max(0, count - sum(want.values()))
    chosen: list[dict[str, Any]] = []
    for kind, n in want.items():
        pool = by_kind.get(kind, [])
        idx = rng.permutation(len(pool))[:n]
        chosen.extend(pool[i] for i in idx)
    rest = [w for w in windows if w not in chosen]
    for i in rng.permutation(len(rest)):
        if len(chosen) >= count:
            break
        if rest[i]["kind"] != "idle":
            chosen.append(rest[i])
    order = rng.permutation(len(chosen))  # mix the kinds over guests and segments
    targets = rng.uniform(*TARGET_RANGE_MIB_S, size=len(chosen))
    return [Replay(w["vm"], w["kind"], w["ts"], w["u"], w["mem"], map_rates(w["u"], w["mem"], float(t)))
            for w, t in zip((chosen[i] for i in order), targets, strict=True)]


class _Stop(Exception):
    pass


def _on_term(_sig: int, _frame: FrameType | None) -> None:
    raise _Stop("SIGTERM")


def collect(args: argparse.Namespace) -> int:  # noqa: PLR0915 - one sequential job, read top to bottom
    started = time.time()
    deadline = started + args.max_minutes * 60 - 30  # leave time to take the lab down
    df = load_trace(args.trace)
    replays = pick_replays(df, args.guests * args.segments, args.samples, args.seed)
    del df
    guests = [f"vm{i + 1}" for i in range(args.guests)]
    plan = {g: replays[i * args.segments:(i + 1) * args.segments] for i, g in enumerate(guests)}
    for g in guests:
        for r in plan[g]:
            print(f"{g}: trace VM {r.vm} ({r.kind}) util mean {r.cpu_util.mean():.2f} "
                  f"rates {r.rates.min():.1f}-{r.rates.max():.1f} MiB/s", flush=True)
    seg_wall = args.samples * args.sample_wall_s
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "trace": str(args.trace.relative_to(REPO.parent)) if args.trace.is_relative_to(REPO.parent)
        else str(args.trace),
        "seed": args.seed, "mapping": MAPPING, "sample_wall_s": args.sample_wall_s,
        "time_compression": TRACE_STEP_S / args.sample_wall_s, "samples_per_vm": args.samples,
        "replay_hours_per_vm": args.samples * TRACE_STEP_S / 3600, "segment_wall_s": seg_wall,
        "measure_every_s": args.every_s, "measure_window_s": 1, "guests": args.guests,
        "replays": [{"guest": g, "segment": i, "trace_vm": r.vm, "kind": r.kind,
                     "trace_start_s": int(r.timestamps[0]), "rates_min": float(r.rates.min()),
                     "rates_mean": float(r.rates.mean()), "rates_max": float(r.rates.max())}
                    for g in guests for i, r in enumerate(plan[g])],
        "readings": 0, "failed_readings": 0, "completed_segments": 0, "status": "running",
    }
    meta_path = args.out.with_suffix(".meta.json")
    previous = signal.signal(signal.SIGTERM, _on_term)
    lab = Lab(args.root, cache=args.cache, progress=lambda line: print(line, flush=True))
    conn = None
    readings = failed = 0
    try:
        lab.up(hosts=1, guests=args.guests)
        conn = libvirt.open(lab.uri("hv1"))
        doms = {g: conn.lookupByName(g) for g in guests}
        with open(args.out, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(FIELDS)
            for seg in range(args.segments):
                if time.time() > deadline - 60:
                    meta["status"] = "time-boxed"
                    break
                t0: dict[str, float] = {}
                for g in guests:
                    r = plan[g][seg]
                    lab.set_dirty_schedule(g, [(args.sample_wall_s, float(x)) for x in r.rates])
                    t0[g] = time.time()
                end = min(min(t0.values()) + seg_wall, deadline)
                next_at = time.time()
                while time.time() < end - 1.0:
                    now = time.time()
                    if now < next_at:
                        time.sleep(next_at - now)
                    t_start = time.time()
                    # Every guest in the same 1 s window; NaN for one that does not finish within 5 s.
                    values = {name: math.nan for name in doms} | virt.dirty_rates_mib_s(conn, doms, 1, timeout_s=5.0)
                    mid = t_start + 0.5
                    for g in guests:
                        r = plan[g][seg]
                        t = mid - t0[g]
                        if not 0 <= t < seg_wall:
                            continue
                        i = min(int(t // args.sample_wall_s), len(r.rates) - 1)
                        v = values[g]
                        readings += 1
                        failed += int(not np.isfinite(v))
                        writer.writerow([g, r.vm, seg, f"{mid:.3f}", f"{t:.3f}",
                                         f"{t * TRACE_STEP_S / args.sample_wall_s:.1f}",
                                         int(r.timestamps[i]), f"{r.rates[i]:.2f}",
                                         "" if not np.isfinite(v) else f"{v:.1f}",
                                         f"{r.cpu_util[i]:.4f}", f"{r.mem_mib[i]:.1f}"])
                    handle.flush()
                    next_at = max(next_at + args.every_s, time.time())
                meta["completed_segments"] = seg + 1
                meta["readings"], meta["failed_readings"] = readings, failed
                meta_path.write_text(json.dumps(meta, indent=2) + "\n")
                print(f"segment {seg + 1}/{args.segments} done: {readings} readings, "
                      f"{(time.time() - started) / 60:.1f} min", flush=True)
        if meta["status"] == "running":
            meta["status"] = "complete" if time.time() < deadline else "time-boxed"
        return 0
    except (_Stop, KeyboardInterrupt) as exc:
        meta["status"] = f"interrupted ({exc.__class__.__name__})"
        return 1
    except Exception as exc:
        meta["status"] = f"failed: {exc!r}"
        raise
    finally:
        if conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()
        lab.down()
        signal.signal(signal.SIGTERM, previous)
        meta["readings"], meta["failed_readings"] = readings, failed
        meta["wall_minutes"] = round((time.time() - started) / 60, 2)
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        print(f"collection {meta['status']}: {readings} readings ({failed} failed) in "
              f"{meta['wall_minutes']} min", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trace", type=Path, default=TRACE)
    p.add_argument("--out", type=Path, default=OUT_DIR / "dirty_rates.csv")
    p.add_argument("--root", type=Path, default=Path("/tmp/advisor-dirty-lab"))
    p.add_argument("--cache", type=Path, default=REPO / ".lab" / "cache")
    p.add_argument("--guests", type=int, default=2, help="at most 2 here: each dirtying guest costs a core")
    p.add_argument("--segments", type=int, default=6, help="trace VMs replayed one after the other per guest")
    p.add_argument("--samples", type=int, default=50, help="5-minute trace samples per VM (50 = 4 h 10 min)")
    p.add_argument("--sample-wall-s", type=float, default=6.0, help="wall seconds per 5-minute trace sample")
    p.add_argument("--every-s", type=float, default=2.0, help="one 1 s page-sampling reading every this often")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--max-minutes", type=float, default=35.0, help="time box: stop measuring before this")
    args = p.parse_args(argv)
    if args.guests > 2:
        p.error("at most 2 dirtying guests on this 2-core machine")
    return collect(args)


if __name__ == "__main__":
    sys.exit(main())
