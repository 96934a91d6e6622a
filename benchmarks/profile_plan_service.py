"""Profile PlanCluster in process: the servicer's call (use case, store, the answer's protobuf) on the advisor as
`advisor serve` wires it (SQLite; with --postgresql, on a PostgreSQL server started here as bench_plan_store.py
starts it), without gRPC, the periodic tasks or anything running beside it.

    .venv/bin/python benchmarks/profile_plan_service.py [--hosts 10000] [--vms 200000] [--repeat 3]
        [--postgresql] [--profile FILE] [--top 40]

The inventory and samples are those of benchmarks/bench_plan_store.py, pushed through the servicers on a frozen
clock, so that two versions of the code plan on the same cluster at the same time. Then a balance stored for review,
a dry run and a drain of one host, `--repeat` times each: the wall and CPU seconds of each call, its moves, and a
digest of its answer (each move's VM, hosts, parameters, predicted cost, reasons and host counts, and the summary,
other recommendations' ids masked) and, for a stored plan, the CPU seconds of reading it back from the store and a
digest of every move stored (the answer holds only the moves that fit a message): two versions with equal digests
made the same plans. With `--profile`, the
calls run under cProfile, the statistics are dumped to FILE and the `--top` functions by cumulative time printed.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import os
import pstats
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support, benchmarks.*

from advisor.api import servicers
from advisor.api.v1 import advisor_pb2 as pb
from advisor.domain.recommendation import Recommendation
from benchmarks.bench_plan_store import VMS_PER_PUSH, samples
from benchmarks.bench_replicas_load import inventory
from tests.support import local_advisor
from tests.support.postgres import PostgresServer

NO_CONTEXT = cast(grpc.ServicerContext, None)  # the servicers here read nothing of their call's context
NOW_S = 1_796_000_000.0  # the frozen clock: samples are pushed and plans made at this time
OTHER_IDS = re.compile(r"recommendation [0-9a-f]{6,}")


def digest(rec: pb.Recommendation) -> str:
    """A digest of what a plan decided and said, other recommendations' ids masked (they are new each run)."""
    text = [OTHER_IDS.sub("recommendation ID", rec.summary)]
    for m in rec.moves:
        fields = (m.vm_id, m.source_host_id, m.target_host_id, str(m.parameters), str(m.predicted_cost),
                  *m.reasons, *(str(c) for c in m.rejection_counts), str(m.hosts_assessed),
                  *(str(a) for a in m.assessments))
        text.append(OTHER_IDS.sub("recommendation ID", "\n".join(fields)))
    return hashlib.sha256("\n\n".join(text).encode()).hexdigest()[:16]


def stored_digest(rec: Recommendation) -> str:
    """A digest of every move of a stored plan (their text, other recommendations' ids masked)."""
    return hashlib.sha256(OTHER_IDS.sub("recommendation ID", repr(rec.moves)).encode()).hexdigest()[:16]


def pushed_samples(hosts: int, vms: int) -> list[pb.PushSamplesRequest]:
    requests = samples(hosts, vms, random.Random(16))
    for request in requests:
        for host in request.host_samples:
            host.time.FromNanoseconds(int((NOW_S - 5) * 1e9))
        for vm in request.vm_samples:
            vm.time.FromNanoseconds(int((NOW_S - 5) * 1e9))
    return requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--vms", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgresql", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--profile", default="", metavar="FILE", help="run the calls under cProfile, dump to FILE")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    print(f"{args.hosts} hosts, {args.vms} VMs, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    with contextlib.ExitStack() as stack:
        url = ""
        if args.postgresql:
            server = PostgresServer(durable=True)
            server.start()
            stack.callback(server.stop)
            url = server.url(server.new_database())
        work = stack.enter_context(tempfile.TemporaryDirectory(prefix="advisor-plan-profile-"))
        app = stack.enter_context(local_advisor(Path(work), clock=lambda: NOW_S, database_url=url))
        pushing, telemetry = (servicers.InventoryServicer(app.usecases, app.metrics),
                              servicers.TelemetryServicer(app.usecases, app.metrics))
        started = time.perf_counter()
        whole = inventory(args.hosts, args.vms)
        for first in range(0, max(len(whole.vms), 1), VMS_PER_PUSH):
            pushing.PushInventory(pb.PushInventoryRequest(hosts=whole.hosts if first == 0 else [],
                                                          vms=whole.vms[first:first + VMS_PER_PUSH]), NO_CONTEXT)
        for pushed in pushed_samples(args.hosts, args.vms):
            telemetry.PushSamples(pushed, NO_CONTEXT)
        print(f"pushed in {time.perf_counter() - started:.1f} s", flush=True)
        planning = servicers.RecommendationServicer(app.usecases, app.metrics)
        calls = (("balance, stored", pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_REBALANCE)),
                 ("balance, dry run", pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_REBALANCE, dry_run=True)),
                 ("drain host-0001, stored", pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_DRAIN, host_id="host-0001")))
        profile = cProfile.Profile() if args.profile else None
        for label, request in calls:
            for _ in range(args.repeat):
                cpu, wall = time.process_time(), time.perf_counter()
                if profile is not None:
                    profile.enable()
                rec = planning.PlanCluster(request, NO_CONTEXT)
                if profile is not None:
                    profile.disable()
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                line = (f"  {label:24s} {len(rec.moves):5d} moves  {wall:6.2f} s wall  {cpu:6.2f} s CPU  "
                        f"digest {digest(rec)}")
                if rec.id:
                    read = time.process_time()
                    stored = app.store.get_recommendation(rec.id)
                    read = time.process_time() - read
                    assert stored is not None
                    line += f"  read back {read:.2f} s CPU, {len(stored.moves)} moves, digest {stored_digest(stored)}"
                print(line, flush=True)
    if profile is not None:
        profile.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(args.top)
    print(f"load average after {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
