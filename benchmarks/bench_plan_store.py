"""Planning through the service on each store: PlanCluster (a balance stored for review, the same as a dry run, a
drain of one host) against one advisor on SQLite and one on PostgreSQL, with the same inventory and samples.

    .venv/bin/python -m benchmarks.bench_plan_store [--hosts 10000] [--vms 200000] [--repeat 3]

Every host gets one CPU sample, a tenth of them hot (90-98%), the rest 20-60%, and every VM one sample, so that a
balance has moves to propose. A stored plan is written to the store with all its moves and explanations (what
differs between the stores); a dry run is planned the same way and stored nowhere. PostgreSQL is Debian's, started
here by tests.support.postgres with its defaults (fsync and synchronous commit on). Prints, per store and call, the
seconds of each repeat and the moves proposed (the plan's, and those its answer carries: as many as fit a
message), then the advisor's peak memory; asserts nothing (a shared, noisy machine).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.lab.procs import free_port
from benchmarks.bench_replicas_load import inventory, store_args
from tests.support.postgres import PostgresServer

BATCH = 50_000  # the API's most samples of a kind per message
VMS_PER_PUSH = 100_000  # the API's most VMs per inventory push (pushes upsert)


def samples(hosts: int, vms: int, rng: random.Random) -> list[pb.PushSamplesRequest]:
    now = Timestamp()
    now.GetCurrentTime()
    host_samples = [pb.HostSample(host_id=f"host-{h:04d}", time=now,
                                  cpu_utilization_ratio=rng.uniform(0.90, 0.98) if h % 10 == 0
                                  else rng.uniform(0.2, 0.6)) for h in range(hosts)]
    vm_samples = [pb.VmSample(vm_id=f"vm-{v:05d}", time=now, cpu_utilization_ratio=rng.uniform(0.1, 0.9),
                              dirty_rate_mib_s=rng.uniform(0.0, 50.0)) for v in range(vms)]
    return [pb.PushSamplesRequest(host_samples=host_samples[i:i + BATCH], vm_samples=vm_samples[i:i + BATCH])
            for i in range(0, max(hosts, vms), BATCH)]


def peak_rss_gib(pid: int) -> float:
    """The peak resident memory of a process so far (Linux's VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def token(data_dir: Path, url: str) -> str:
    return subprocess.run([sys.executable, "-m", "advisor.cli", "tokens", "create", *store_args(data_dir, url),
                           "--name", "planner", "--role", "operator"], capture_output=True, text=True,
                          check=True).stdout.strip()


def run(name: str, url: str, args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="advisor-plan-store-"))
    secret = token(work, url)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "advisor.cli", "serve", "--listen", f"127.0.0.1:{port}",
                               "--metrics-listen", "", "--log-level", "warning", *store_args(work, url)],
                              env=os.environ.copy())
    try:
        with AdvisorClient(f"127.0.0.1:{port}", token=secret, timeout_s=600) as client:
            client.wait_ready(120)
            started = time.perf_counter()
            whole = inventory(args.hosts, args.vms)
            for first in range(0, max(len(whole.vms), 1), VMS_PER_PUSH):
                client.push_inventory(pb.PushInventoryRequest(hosts=whole.hosts if first == 0 else [],
                                                              vms=whole.vms[first:first + VMS_PER_PUSH]))
            for request in samples(args.hosts, args.vms, random.Random(16)):
                client.push_samples(request)
            print(f"{name}: inventory and samples pushed in {time.perf_counter() - started:.1f} s", flush=True)
            calls = (("balance, stored", pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_REBALANCE)),
                     ("balance, dry run", pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_REBALANCE, dry_run=True)),
                     ("drain host-0001, stored", pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_DRAIN,
                                                                       host_id="host-0001")))
            for label, plan in calls:
                seconds, moves = [], ""
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    rec = client.call(client.recommendations.PlanCluster, plan)
                    seconds.append(time.perf_counter() - t)
                    # the plan's moves, and those the answer carries (the ones that fit a message)
                    total, shown = rec.moves_total, len(rec.moves)  # type: ignore[attr-defined]
                    moves = f"{total:5d} moves ({shown} in the answer)"
                print(f"  {label:24s} {moves}  " + "  ".join(f"{s:6.2f} s" for s in seconds), flush=True)
            print(f"  advisor's peak memory {peak_rss_gib(server.pid):.2f} GiB", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(120)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--vms", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.hosts} hosts, {args.vms} VMs, {os.cpu_count()} CPUs, load average before "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    run("sqlite", "", args)
    server = PostgresServer(durable=True)
    server.start()
    try:
        run("postgresql", server.url(server.new_database()), args)
    finally:
        server.stop()
    print(f"load average after {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
