"""Benchmark: the CPU a restart spends putting the saved recent samples back (`RecentSamples.restore`).

    .venv/bin/python benchmarks/bench_restore.py [--vms 20000,200000] [--samples 120] [--one-by-one-up-to 20000]

Until the restore is done `advisor serve` answers nothing, so this is part of a scheduler's wait at cold start.
Each size restores `--samples` samples of each VM (the default setting `samples_per_entity`) into empty stores,
once as the service does (a whole series per VM) and, up to `--one-by-one-up-to` VMs, as it did before (each sample
through `add`, the same outcome, checked). Asserts nothing; figures are quoted in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from advisor.features.samples import VM_FIELDS, RecentSamples, Series


def saved(n_vms: int, samples: int) -> list[Series]:
    rng = np.random.default_rng(1)
    times = 1_796_000_000 + np.arange(samples, dtype=np.float64) * 5.0
    return [Series("vm", f"vm{i}", times, rng.random((samples, len(VM_FIELDS))).astype(np.float32))
            for i in range(n_vms)]


def one_by_one(samples: RecentSamples, series: list[Series]) -> None:
    """The restore before: every sample through `add`, unmarked."""
    store = samples._vms  # the reference path works on the store itself
    for item in series:
        for time_s, row in zip(item.times, item.values, strict=True):
            store.add(item.entity_id, float(time_s), [None if np.isnan(v) else float(v) for v in row], mark=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", default="20000,200000", help="comma-separated VM counts")
    parser.add_argument("--samples", type=int, default=120, help="saved samples per VM")
    parser.add_argument("--one-by-one-up-to", type=int, default=20000, help="largest size timed the old way too")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'VMs':>8} {'samples':>8} {'restore s':>10} {'one by one s':>13}")
    for n in (int(v) for v in args.vms.split(",")):
        series = saved(n, args.samples)
        whole = RecentSamples(args.samples)
        start = time.process_time()
        whole.restore(series)
        restore_s = time.process_time() - start
        old = "-"
        if n <= args.one_by_one_up_to:
            each = RecentSamples(args.samples)
            start = time.process_time()
            one_by_one(each, series)
            old = f"{time.process_time() - start:.2f}"
            probe = f"vm{n // 2}"
            assert all(np.array_equal(a, b, equal_nan=True) for a, b in
                       zip(whole._vms.window(probe), each._vms.window(probe), strict=True))
        print(f"{n:>8} {args.samples:>8} {restore_s:>10.2f} {old:>13}", flush=True)


if __name__ == "__main__":
    main()
