"""Load benchmark against replicas: bench_load's clients against one advisor on SQLite, one on PostgreSQL, and two
replicas on one PostgreSQL, one after the other.

    .venv/bin/python benchmarks/bench_replicas_load.py [--clients 32] [--seconds 60] [--hosts 200] [--vms 4000]

The clients are bench_load's (schedulers push samples and small inventory changes and ask for recommendations;
SREs list and read recommendations and hosts, and watch), in two worker processes; with two replicas each worker
calls one of them. The inventory is pushed to every replica first, so that each starts with it; what is pushed
to one replica during the run (samples, inventory changes) reaches the other through the database
(advisor.sample_sharing, advisor.inventory_sharing). PostgreSQL is Debian's, started here by
tests.support.postgres, with its defaults (fsync and synchronous commit on), a fresh database for each setting.
Prints throughput, p50 and p99 by kind of call and errors, per setting; asserts nothing (shared, noisy machine).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.lab.procs import free_port
from benchmarks.bench_load import KINDS, worker
from tests.support.postgres import PostgresServer


def store_args(data_dir: Path, url: str) -> list[str]:
    return ["--data-dir", str(data_dir), *(["--database-url", url] if url else [])]


def tokens(data_dir: Path, url: str) -> tuple[str, str]:
    def make(name: str, role: str) -> str:
        return subprocess.run([sys.executable, "-m", "advisor.cli", "tokens", "create", *store_args(data_dir, url),
                               "--name", name, "--role", role], capture_output=True, text=True,
                              check=True).stdout.strip()

    return make("scheduler", "scheduler"), make("sre", "operator")


def inventory(hosts: int, vms: int) -> pb.PushInventoryRequest:
    request = pb.PushInventoryRequest()
    for h in range(hosts):
        request.hosts.add(id=f"host-{h:04d}", cpu_cores=64, memory_mib=512 * 1024)
    for v in range(vms):
        request.vms.add(id=f"vm-{v:05d}", host_id=f"host-{v % hosts:04d}", memory_mib=4096, vcpus=2)
    return request


def run(name: str, replicas: int, url: str, args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="advisor-replicas-load-"))
    secrets = tokens(work / "replica-0", url)
    servers, addresses = [], []
    try:
        for i in range(replicas):
            port = free_port()
            servers.append(subprocess.Popen(
                [sys.executable, "-m", "advisor.cli", "serve", "--listen", f"127.0.0.1:{port}", "--metrics-listen",
                 "", "--log-level", "warning", *store_args(work / f"replica-{i}", url)], env=os.environ.copy()))
            addresses.append(f"127.0.0.1:{port}")
        for address in addresses:
            with AdvisorClient(address, token=secrets[0], timeout_s=120) as client:
                client.wait_ready(60)
                client.push_inventory(inventory(args.hosts, args.vms))
        started = time.time()
        stop_at = started + args.seconds
        queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        procs = [mp.Process(target=worker, args=(addresses[w % replicas], secrets, args.clients // 2, stop_at,
                                                  args.hosts, args.vms, 1000 * w, queue)) for w in range(2)]
        for p in procs:
            p.start()
        results = [queue.get(timeout=args.seconds + 120) for _ in procs]
        for p in procs:
            p.join(30)
        elapsed = time.time() - started
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.wait(60)
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for out, _slow, errs in results:
        for kind, values in out.items():
            latencies[kind] += values
        for kind, n in errs.items():
            errors[kind] += n
    total = sum(len(v) for v in latencies.values())
    cells = []
    for kind in KINDS:
        values = latencies.get(kind, [])
        q = statistics.quantiles(values, n=100, method="inclusive") if len(values) >= 2 else [float("nan")] * 99
        cells.append(f"{q[49]:6.1f} {q[98]:7.1f}")
    print(f"{name:22s} {total / elapsed:7.0f} {sum(errors.values()):6d}  " + "  ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--vms", type=int, default=4000)
    args = parser.parse_args()
    print(f"{args.clients} clients for {args.seconds:g} s each ({args.hosts} hosts, {args.vms} VMs), auth on, "
          f"{os.cpu_count()} CPUs, load average before {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'':22s} {'calls/s':>7s} {'errors':>6s}  " + "  ".join(f"{k[:14]:>14s}" for k in KINDS))
    print(f"{'':22s} {'':7s} {'':6s}  " + "  ".join(f"{'p50':>6s} {'p99 ms':>7s}" for _ in KINDS))
    server = PostgresServer(durable=True)
    server.start()
    try:
        run("sqlite, 1 advisor", 1, "", args)
        run("postgresql, 1 replica", 1, server.url(server.new_database()), args)
        run("postgresql, 2 replicas", 2, server.url(server.new_database()), args)
    finally:
        server.stop()
    print(f"load average after {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
