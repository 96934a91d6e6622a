"""Benchmark: the CPU and wall time of the first save of the recent samples (`RecentSamples.export_changed`).

    .venv/bin/python benchmarks/bench_sample_save.py [--hosts 10000] [--vms 200000] [--rounds 120] [--newest 16]

Every 60 s the leader saves the newest samples of every host and VM changed since the last save; the first save
after a start (or a push of every VM) reads them all, beside whatever else runs (a rebalance's plan). This fills a
`RecentSamples` with `--rounds` samples per host and VM (a VM sample measuring CPU, memory and dirty rate, a host
sample its CPU, as benchmarks/bench_memory.py; 5,000 a batch, straight into the stores so that the fill takes a
minute, not six), then exports every entity's newest `--newest` (the service's SAMPLES_SAVED) twice: as it was
done before, a `window` per entity, and through `export_changed`, checking that both give the same series. The
lock is timed too: the longest hold is what a push of samples waits for at most. Asserts nothing; the figures are
quoted in docs/benchmarks.md. `--archive`: also the rest of the save, writing what was exported into a fresh
SQLite archive in a temporary directory (`SampleArchive.save`, about 100 MB at the default sizes).
`--beside-balance N`: N times, a balance plan of bench_planner.py's synthetic cluster of the same size alone, then
with each export running beside it in a thread (the GIL switched as `advisor serve` switches it): what the save
does to a rebalance planned during it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import numpy as np
from bench_planner import synthetic  # a sibling script

from advisor.adapters.sql.samples import SampleArchive
from advisor.adapters.sqlite.db import SqliteDatabase
from advisor.app import GIL_SWITCH_INTERVAL_S
from advisor.features.samples import READ_CHUNK, RecentSamples, Series
from advisor.features.series_store import UNREAD, UNSAVED, SeriesStore
from advisor.planning.engine import AnalyticMoveCosts, plan

BATCH = 5000


class TimedLock:
    """A lock that keeps how long each hold lasted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.holds: list[float] = []
        self._since = 0.0

    def __enter__(self) -> None:
        self._lock.acquire()
        self._since = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.holds.append(time.perf_counter() - self._since)
        self._lock.release()


def fill(samples: RecentSamples, n_hosts: int, n_vms: int, rounds: int) -> None:
    def first_fields(store: SeriesStore, *values: float) -> np.ndarray:  # the others not measured, however many
        return np.r_[values, np.full(len(store.fields) - len(values), np.nan)]

    stores: list[tuple[SeriesStore, list[str], np.ndarray]] = [
        (samples._hosts, [f"host-{h:05d}" for h in range(n_hosts)], first_fields(samples._hosts, 0.3)),
        (samples._vms, [f"vm-{v:06d}" for v in range(n_vms)], first_fields(samples._vms, 0.5, 1024.0, 20.0))]
    for r in range(rounds):
        t = 1_796_000_000.0 + 15 * r
        for store, ids, row in stores:
            for start in range(0, len(ids), BATCH):
                batch = ids[start : start + BATCH]
                store.add_many(batch, [t] * len(batch), np.broadcast_to(row, (len(batch), len(row))))


def mark_all(samples: RecentSamples) -> None:
    """Every entity changed again, as after a push of them all."""
    for store in (samples._hosts, samples._vms):
        for block in store._chunks:
            block.marks[:] = UNSAVED | UNREAD


def per_entity_export(samples: RecentSamples, newest: int) -> list[Series]:
    """The export as it was: the changed entities taken, then a `window` each, READ_CHUNK per hold of the lock."""
    hosts, vms = samples._take(samples._hosts, UNSAVED), samples._take(samples._vms, UNSAVED)
    out, ordered = [], sorted([("host", i) for i in hosts] + [("vm", i) for i in vms])
    for start in range(0, len(ordered), READ_CHUNK):
        with samples._lock:
            for kind, entity_id in ordered[start : start + READ_CHUNK]:
                store = samples._hosts if kind == "host" else samples._vms
                times, values = store.window(entity_id)
                out.append(Series(kind, entity_id, times[-newest:], values[-newest:]))
    return out


def timed(samples: RecentSamples, export: object, newest: int) -> tuple[list[Series], float, float, float]:
    lock = samples._lock = TimedLock()  # type: ignore[assignment]
    cpu, wall = time.process_time(), time.perf_counter()
    series = export(samples, newest)  # type: ignore[operator]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return series, cpu, wall, max(lock.holds)


def beside_balance(samples: RecentSamples, n_hosts: int, n_vms: int, newest: int, repeat: int) -> None:
    cluster, costs = synthetic(n_hosts, n_vms), AnalyticMoveCosts()

    def balance() -> float:
        started = time.perf_counter()
        plan("balance", cluster, costs)
        return time.perf_counter() - started

    balance()  # warm
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    print(f"balance of {n_hosts} hosts, s: alone | beside a window per entity | beside export_changed")
    for _ in range(repeat):
        times = [balance()]
        for export in (per_entity_export, RecentSamples.export_changed):
            mark_all(samples)
            saving = threading.Thread(target=export, args=(samples, newest))
            saving.start()
            times.append(balance())
            saving.join()
        print(" | ".join(f"{t:.2f}" for t in times), flush=True)


def same(a: list[Series], b: list[Series]) -> bool:
    return len(a) == len(b) and all(
        x.kind == y.kind and x.entity_id == y.entity_id and x.times.dtype == y.times.dtype
        and x.values.dtype == y.values.dtype and np.array_equal(x.times, y.times)
        and np.array_equal(x.values, y.values, equal_nan=True) for x, y in zip(a, b, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--vms", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=120, help="samples per host and VM (120 fill every ring)")
    parser.add_argument("--capacity", type=int, default=120, help="samples kept per host and VM")
    parser.add_argument("--newest", type=int, default=16, help="samples saved per entity (SAMPLES_SAVED)")
    parser.add_argument("--archive", action="store_true", help="also time writing them to a SQLite archive")
    parser.add_argument("--beside-balance", type=int, default=0, metavar="N",
                        help="also time a balance plan N times alone and beside each export")
    args = parser.parse_args()
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    samples = RecentSamples(args.capacity)
    start = time.perf_counter()
    fill(samples, args.hosts, args.vms, args.rounds)
    print(f"filled {args.hosts} hosts and {args.vms} VMs with {args.rounds} samples each in "
          f"{time.perf_counter() - start:.0f} s; saving the newest {args.newest}", flush=True)
    print(f"{'export':<22} {'series':>8} {'CPU s':>7} {'wall s':>7} {'longest hold ms':>16}")
    results = []
    for name, export in (("a window per entity", per_entity_export),
                         ("export_changed", RecentSamples.export_changed)):
        mark_all(samples)
        series, cpu, wall, hold = timed(samples, export, args.newest)
        results.append(series)
        print(f"{name:<22} {len(series):>8} {cpu:>7.2f} {wall:>7.2f} {hold * 1000:>16.1f}", flush=True)
    if args.archive:
        with tempfile.TemporaryDirectory() as tmp:
            database = SqliteDatabase(Path(tmp) / "advisor.sqlite3")
            cpu, wall = time.process_time(), time.perf_counter()
            SampleArchive(database).save(results[-1])
            print(f"{'SampleArchive.save':<22} {len(results[-1]):>8} {time.process_time() - cpu:>7.2f} "
                  f"{time.perf_counter() - wall:>7.2f}   (SQLite, a fresh file)")
            database.close()
    print(f"same series: {same(*results)}; load {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    if args.beside_balance:
        beside_balance(samples, args.hosts, args.vms, args.newest, args.beside_balance)
        print(f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
