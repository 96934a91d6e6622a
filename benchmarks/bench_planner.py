"""Benchmark: the decision engine's plans and single-VM ranking on synthetic clusters, time and memory.

    .venv/bin/python benchmarks/bench_planner.py [--sizes 250:5000,1000:20000,4000:80000,10000:200000]
        [--rankings 2000] [--repeat 3] [--uncapped HOSTS] [--local-disks] [--horizon SECONDS]

For each size: building the arrays, then a balance, a consolidate and a drain plan (default knobs: the move cap is
2.5% of the VMs; --uncapped N also runs consolidate with no cap up to N hosts), each timed (best of --repeat in the
table, the median wall and CPU seconds beside each plan's summary) with its peak memory (tracemalloc, numpy
included); then, at 1,000 hosts, the filters + weigher of one VM against every host, as a recommendation does, with
p50 / p99 latency. Costs come from the engine's analytic model. With --local-disks every VM has a local disk (10 or
50 GiB, half in use, written at 1 or 10 MiB/s or not measured), whose copy the plans price
(advisor.planning.engine.carried). With --horizon every VM has a CPU spread (a tenth to a third of its use) and
balance ranks relief by the SLA time it saves over that horizon (as serving's rebalance does by default); --horizon 0
is relief by load on the same cluster. Asserts nothing (the machines are shared and noisy); the figures are quoted in
docs/planning.md and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

# The tree this file is in, not whichever tree the virtualenv installed: a worktree's benchmark measures its own code.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advisor.planning.engine import AnalyticMoveCosts, ClusterArrays, Plan, plan, rank_targets
from advisor.planning.engine.churn import AntiChurn
from advisor.planning.engine.planner import PlanSettings
from advisor.planning.engine.relations import Csr, Groups, HostRules


def with_local_disks(cluster: ClusterArrays, seed: int = 3) -> ClusterArrays:
    """`cluster` with a local disk on every VM (see the module docstring)."""
    rng = np.random.default_rng(seed)
    size = rng.choice([10240.0, 51200.0], cluster.n_vms)
    return replace(cluster, vm_local_disk_mib=size, vm_local_disk_used_mib=size / 2,
                   vm_disk_write_rate_mib_s=rng.choice([np.nan, 1.0, 10.0], cluster.n_vms))


def synthetic(n_hosts: int, n_vms: int, seed: int = 7) -> ClusterArrays:
    """A mixed cluster: 3 host sizes and CPU models, 1% in maintenance, 5% hot and 20% light hosts, VMs of 1-8
    vCPUs with dirty rates from idle to busy, anti-affinity pairs, soft affinity triples and host rules."""
    rng = np.random.default_rng(seed)
    cores = rng.choice([32.0, 48.0, 64.0], n_hosts)
    model = rng.integers(0, 3, n_hosts)
    heat = rng.choice([0.4, 1.0, 3.0], n_hosts, p=[0.20, 0.75, 0.05])
    vm_host = rng.permutation(np.arange(n_vms) % n_hosts).astype(np.int64)
    vcpus = rng.choice([1.0, 2.0, 4.0, 8.0], n_vms, p=[0.3, 0.35, 0.25, 0.1])
    util = np.clip(rng.beta(2, 5, n_vms) * heat[vm_host] * cores[vm_host] / 48.0, 0.0, 1.0)
    pairs = rng.permutation(n_vms)[: (n_vms // 25) * 2].reshape(-1, 2)
    triples = rng.permutation(n_vms)[: (n_vms // 100) * 3].reshape(-1, 3)
    g_anti = np.repeat(np.arange(len(pairs)), 2)
    g_soft = len(pairs) + np.repeat(np.arange(len(triples)), 3)
    group_of = np.concatenate([g_anti, g_soft])
    members = np.concatenate([pairs.ravel(), triples.ravel()]).astype(np.int64)
    n_groups = len(pairs) + len(triples)
    groups = Groups(tuple(f"g{g}" for g in range(n_groups)),
                    np.arange(n_groups) >= len(pairs), np.arange(n_groups) < len(pairs),
                    Csr.from_pairs(n_groups, group_of, members), Csr.from_pairs(n_vms, members, group_of))
    legacy = np.flatnonzero(rng.random(n_hosts) < 0.05)
    preferred = np.flatnonzero(rng.random(n_hosts) < 0.10)
    ruled = rng.permutation(n_vms)[: n_vms // 50]
    rule_hosts = np.concatenate([legacy, preferred])
    rule_of_host = np.concatenate([np.zeros(len(legacy)), np.ones(len(preferred))]).astype(np.int64)
    rule_of_vm = (np.arange(len(ruled)) % 2).astype(np.int64)
    host_rules = HostRules(("off-legacy", "prefer-new"), np.array([False, True]), np.array([True, False]),
                           Csr.from_pairs(2, rule_of_host, rule_hosts), Csr.from_pairs(n_vms, ruled, rule_of_vm))
    return ClusterArrays.build(
        host_ids=[f"host-{h:05d}" for h in range(n_hosts)], host_cores=cores, host_memory_mib=cores * 8192,
        host_cpu_model=model, host_disabled=rng.random(n_hosts) < 0.01,
        host_bandwidth_mib_s=np.where(rng.random(n_hosts) < 0.8, 1192.0, 119.2),
        host_idle_w=120 + 1.5 * cores, host_max_w=120 + 5.5 * cores, host_base_cpu=0.02 * cores,
        vm_ids=[f"vm-{v:06d}" for v in range(n_vms)], vm_host=vm_host, vm_vcpus=vcpus,
        vm_memory_mib=vcpus * rng.choice([2048.0, 4096.0], n_vms), vm_cpu=vcpus * util,
        vm_cpu_model=np.where(rng.random(n_vms) < 0.1, model[vm_host], -1),
        vm_dirty_rate_mib_s=np.minimum(rng.lognormal(2.0, 1.0, n_vms), 400.0),
        vm_postcopy=rng.random(n_vms) < 0.9, groups=groups, host_rules=host_rules, cpu_models=("a", "b", "c"),
    )


def measure(run: Callable[[], Plan], repeat: int) -> tuple[float, float, Plan, float, float]:
    """(best seconds, peak MiB of the first run, the plan, median wall seconds, median CPU seconds) of `repeat`
    runs after the first (which also warms the caches and numba's compiled code)."""
    gc.collect()
    tracemalloc.start()
    result = run()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    walls, cpus = [], []
    for _ in range(repeat):
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        result = run()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return min(walls), peak, result, statistics.median(walls), statistics.median(cpus)


def rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="250:5000,1000:20000,4000:80000,10000:200000")
    parser.add_argument("--rankings", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--uncapped", type=int, default=0, metavar="HOSTS",
                        help="also consolidate without the cap on clusters of at most HOSTS hosts")
    parser.add_argument("--local-disks", action="store_true", help="a local disk on every VM, priced by the plans")
    parser.add_argument("--horizon", type=float, default=None, metavar="SECONDS",
                        help="VMs get a CPU spread; balance ranks relief by SLA time over this (0: by load)")
    args = parser.parse_args()
    costs = AnalyticMoveCosts()
    settings = PlanSettings(rebalance_horizon_s=args.horizon or 0.0)
    print(f"engine benchmark: {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}, "
          f"numpy {np.__version__}; costs {costs.name}; best of {args.repeat}"
          + ("; a local disk on every VM" if args.local_disks else "")
          + (f"; relief by SLA time over {args.horizon:g} s" if args.horizon else
             "; VMs with a CPU spread, relief by load" if args.horizon is not None else ""))
    header = (f"{'hosts':>6} {'VMs':>7} {'build s':>8} | {'balance s':>9} {'moves':>5} {'MiB':>5} | "
              f"{'consol. s':>9} {'moves':>5} {'MiB':>5} | {'drain s':>7} {'moves':>5} {'MiB':>5} | "
              f"{'us/move':>7}")
    print(header)
    for size in args.sizes.split(","):
        n_hosts, n_vms = (int(x) for x in size.split(":"))
        started = time.perf_counter()
        cluster = synthetic(n_hosts, n_vms)
        cluster = with_local_disks(cluster) if args.local_disks else cluster
        if args.horizon is not None:
            spread = np.random.default_rng(5).uniform(0.1, 0.33, cluster.n_vms) * cluster.vm_cpu
            cluster = replace(cluster, vm_cpu_spread=spread)
        build_s = time.perf_counter() - started
        busiest = cluster.host_ids[int(np.argmax(np.where(cluster.host_disabled, -1, cluster.loads.host_vms)))]
        runs = {
            "balance": lambda c=cluster: plan("balance", c, costs, settings=settings),
            "consolidate": lambda c=cluster: plan("consolidate", c, costs, settings=settings),
            "drain": lambda c=cluster, h=busiest: plan("drain", c, costs, settings=settings, host=h, deadline_s=900),
        }
        figures = {name: measure(run, args.repeat) for name, run in runs.items()}
        moves = sum(len(f[2].moves) for f in figures.values())
        per_move = 1e6 * sum(f[0] for f in figures.values()) / max(1, moves)
        cells = " | ".join(f"{f[0]:>9.3f} {len(f[2].moves):>5} {f[1]:>5.0f}" if n != "drain" else
                           f"{f[0]:>7.3f} {len(f[2].moves):>5} {f[1]:>5.0f}" for n, f in figures.items())
        print(f"{n_hosts:>6} {n_vms:>7} {build_s:>8.2f} | {cells} | {per_move:>7.0f}")
        for name, f in figures.items():
            print(f"    {name}: median of {args.repeat}: {f[3]:.3f} s wall, {f[4]:.3f} s CPU; {f[2].summary}")
        if n_hosts <= args.uncapped:
            free = PlanSettings(churn=AntiChurn(max_moves=n_vms))
            s, peak, p, _, _ = measure(lambda c=cluster, st=free: plan("consolidate", c, costs, settings=st), 1)
            print(f"    consolidate without the cap: {s:.2f} s, {len(p.moves)} moves, {peak:.0f} MiB peak")
    print(f"process RSS {rss_mib():.0f} MiB")
    cluster = synthetic(1000, 20000)
    rng = np.random.default_rng(1)
    vms = rng.integers(0, cluster.n_vms, args.rankings)
    for vm in vms[:50].tolist():
        rank_targets(cluster, vm)
    times = []
    for vm in vms.tolist():
        started = time.perf_counter()
        rank_targets(cluster, vm)
        times.append(time.perf_counter() - started)
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    print(f"single-VM target ranking (filters + weigher, all 1000 hosts, {len(times)} VMs): "
          f"p50 {1e3 * statistics.median(times):.3f} ms, p99 {1e3 * p99:.3f} ms, max {1e3 * times[-1]:.3f} ms")


if __name__ == "__main__":
    main()
