"""Benchmark: the page's cluster view (`/api/v1/cluster`) on synthetic clusters: time and bytes.

    .venv/bin/python benchmarks/bench_web_cluster.py [--sizes 40:400,1000:20000,4000:80000] [--moves 50] [--repeat 5]

For each size (hosts:VMs, bench_planner's synthetic cluster): the use case's `ClusterView.loads()` now and after a
recommendation of --moves moves, and the web view's JSON document built from it and encoded, as the listener
sends it (best and median of --repeat), with its size. 50 recent operations spread over the hosts. Asserts nothing
(the machine is shared and noisy); the figures are quoted in docs/web.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from types import SimpleNamespace
from typing import Any

from advisor.domain.migration import MigrationRecord, Phase
from advisor.domain.model import (
    Interval,
    MigrationCost,
    MigrationParameters,
    ModelRef,
    Move,
    Technique,
)
from advisor.domain.recommendation import Recommendation
from advisor.usecases.cluster_view import ClusterView
from advisor.web import views
from advisor.web.params import Query
from benchmarks.bench_planner import synthetic

COST = MigrationCost(Technique.PRECOPY, Interval(1, 2, 3), Interval(1, 2, 3), Interval(1, 2, 3), True,
                     ModelRef("analytic", "1"))
PARAMETERS = MigrationParameters(Technique.PRECOPY, 100, 300)


def timed(run: Any, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="40:400,1000:20000,4000:80000")
    parser.add_argument("--moves", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    print(f"{'hosts':>6} {'VMs':>7} | {'now ms':>13} | {'after ms':>13} | {'JSON ms':>13} | {'bytes':>10}")
    for size in args.sizes.split(","):
        n_hosts, n_vms = (int(v) for v in size.split(":"))
        cluster = synthetic(n_hosts, n_vms)
        moves = []
        for k in range(min(args.moves, n_vms)):
            vm = k * (n_vms // max(1, args.moves))
            source = int(cluster.vm_host[vm])
            moves.append(Move(cluster.vm_ids[vm], cluster.host_ids[source],
                              cluster.host_ids[(source + 1) % n_hosts], PARAMETERS, COST, ("why",)))
        rec = Recommendation("bench", "rebalance", 0.0, tuple(moves), "bench")
        operations = [MigrationRecord(f"op{k}", "bench", cluster.vm_ids[k], cluster.host_ids[k % n_hosts],
                                      cluster.host_ids[(k + 1) % n_hosts], PARAMETERS, COST, float(k),
                                      Phase.SUCCEEDED, finished_at_s=float(k) + 1) for k in range(50)]
        sampled = dict(zip(cluster.host_ids, cluster.cpu_ratio().tolist(), strict=True))  # each host's CPU sample
        view = ClusterView(lambda cluster=cluster: cluster, lambda _, rec=rec: rec,
                           lambda running, n, ops=operations: [] if running else ops[:n],
                           lambda ids, sampled=sampled: {h: sampled[h] for h in ids})
        now = timed(view.loads, args.repeat)
        after = timed(lambda view=view: view.loads("bench"), args.repeat)
        sources: Any = SimpleNamespace(usecases=SimpleNamespace(cluster=view))
        body = b""

        def encoded(sources: Any = sources) -> None:
            nonlocal body
            doc = views.cluster(sources, Query("recommendation_id=bench", {"recommendation_id"}))
            body = json.dumps(doc, separators=(",", ":")).encode()

        whole = timed(encoded, args.repeat)
        print(f"{n_hosts:>6} {n_vms:>7} | {now[0]:>5.1f} / {now[1]:>5.1f} | {after[0]:>5.1f} / {after[1]:>5.1f} | "
              f"{whole[0]:>5.1f} / {whole[1]:>5.1f} | {len(body):>10,}")


if __name__ == "__main__":
    main()
