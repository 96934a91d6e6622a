"""Load benchmark: 32 concurrent clients against one `advisor serve` for a few minutes.

    .venv/bin/python benchmarks/bench_load.py [--clients 32] [--seconds 180] [--hosts 200] [--vms 4000]

The server runs as its own process with authentication on. The clients are threads of this process (half of them
in each of two worker processes, so that the client side is not the bottleneck on the GIL): schedulers push
samples and small inventory changes and ask for recommendations; SREs list recommendations and hosts, read one,
and watch migrations. Prints
throughput, latency quantiles and errors per kind of call, the calls slower than 1 s and when they started (the
first second included: the first snapshot is built while callers wait), and the server's memory every 10 s (it
should stay flat). Asserts nothing about speed: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict

from advisor.api.client import AdvisorClient, ClientError
from advisor.api.v1 import advisor_pb2 as pb
from advisor.lab.procs import free_port, rss_mib

SLOW_MS = 1000  # a call slower than this is listed with the time it started
KINDS = ("push_samples", "push_inventory", "recommend", "list_recs", "list_hosts", "get_rec", "watch")


def token(data: str, name: str, role: str) -> str:
    made = subprocess.run([sys.executable, "-m", "advisor.cli", "tokens", "create", "--data-dir", data, "--name",
                           name, "--role", role], capture_output=True, text=True, check=True)
    return made.stdout.strip()


class Calls:
    """Latencies by kind of call, and the calls slower than SLOW_MS: (kind, wall time it started, ms)."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.slow: list[tuple[str, float, float]] = []

    def add(self, kind: str, wall_started: float, perf_started: float) -> None:
        ms = (time.perf_counter() - perf_started) * 1000
        self.latencies[kind].append(ms)
        if ms > SLOW_MS:
            self.slow.append((kind, wall_started, ms))


def scheduler(address: str, secret: str, stop_at: float, seed: int, hosts: int, vms: int,
              out: Calls, errors: dict[str, int]) -> None:
    rng = random.Random(seed)
    with AdvisorClient(address, token=secret, timeout_s=30) as client:
        while time.time() < stop_at:
            draw = rng.random()
            kind = "push_samples" if draw < 0.55 else "push_inventory" if draw < 0.65 else "recommend"
            started, wall_started = time.perf_counter(), time.time()
            try:
                if kind == "push_inventory":  # a VM resized or labelled: small changes, as agents send them
                    v = rng.randrange(vms)
                    client.push_inventory(pb.PushInventoryRequest(vms=[pb.Vm(
                        id=f"vm-{v:05d}", host_id=f"host-{v % hosts:04d}", memory_mib=4096, vcpus=2,
                        labels={"touched": str(rng.randrange(1000))})]))
                elif kind == "push_samples":
                    now = int(time.time())
                    request = pb.PushSamplesRequest()
                    for _ in range(200):
                        v = rng.randrange(vms)
                        request.vm_samples.add(vm_id=f"vm-{v:05d}",
                                               time={"seconds": now, "nanos": rng.randrange(10**9)},
                                               cpu_utilization_ratio=rng.random(),
                                               dirty_rate_mib_s=rng.expovariate(0.05))
                    client.push_samples(request)
                else:
                    client.recommend(pb.RecommendTargetRequest(vm_id=f"vm-{rng.randrange(vms):05d}"))
            except ClientError as error:
                errors[f"{kind}:{error.code}"] += 1
                continue
            out.add(kind, wall_started, started)


def sre(address: str, secret: str, stop_at: float, seed: int, out: Calls, errors: dict[str, int]) -> None:
    rng = random.Random(seed)
    with AdvisorClient(address, token=secret, timeout_s=30) as client:
        while time.time() < stop_at:
            kind = rng.choice(("list_recs", "list_hosts", "get_rec", "watch"))
            started, wall_started = time.perf_counter(), time.time()
            try:
                if kind == "list_recs":
                    client.list_recommendations(pb.ListRecommendationsRequest(page_size=100))
                elif kind == "list_hosts":
                    list(client.list_hosts())
                elif kind == "get_rec":
                    page = client.list_recommendations(pb.ListRecommendationsRequest(page_size=5))
                    if page.recommendations:
                        client.get_recommendation(page.recommendations[0].id)
                else:  # a watch of a finished or unknown operation answers at once: what an SRE dashboard polls
                    try:
                        list(client.watch("000000000000", timeout_s=5))
                    except ClientError as error:
                        if error.code != "NOT_FOUND":
                            raise
            except ClientError as error:
                errors[f"{kind}:{error.code}"] += 1
                continue
            out.add(kind, wall_started, started)


def worker(address: str, tokens: tuple[str, str], clients: int, stop_at: float, hosts: int, vms: int, seed: int,
           queue: mp.Queue) -> None:  # type: ignore[type-arg]
    out = Calls()
    errors: dict[str, int] = defaultdict(int)
    threads = []
    for i in range(clients):
        if i % 2 == 0:
            threads.append(threading.Thread(target=scheduler, args=(address, tokens[0], stop_at, seed + i, hosts,
                                                                    vms, out, errors)))
        else:
            threads.append(threading.Thread(target=sre, args=(address, tokens[1], stop_at, seed + i, out, errors)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((dict(out.latencies), out.slow, dict(errors)))


def main() -> None:  # noqa: PLR0915 - a linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--vms", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    args = parser.parse_args()

    data = tempfile.mkdtemp(prefix="advisor-load-")
    tokens = (token(data, "scheduler", "scheduler"), token(data, "sre", "operator"))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "advisor.cli", "serve", "--listen", f"127.0.0.1:{port}",
                               "--data-dir", data, "--metrics-listen", "", "--log-level", "warning"],
                              env=os.environ.copy())
    address = f"127.0.0.1:{port}"
    memory: list[tuple[float, float]] = []
    try:
        with AdvisorClient(address, token=tokens[0], timeout_s=120) as client:
            client.wait_ready(60)
            request = pb.PushInventoryRequest()
            for h in range(args.hosts):
                request.hosts.add(id=f"host-{h:04d}", cpu_cores=64, memory_mib=512 * 1024)
            for v in range(args.vms):
                request.vms.add(id=f"vm-{v:05d}", host_id=f"host-{v % args.hosts:04d}", memory_mib=4096, vcpus=2)
            client.push_inventory(request)
        started = time.time()
        stop_at = started + args.seconds
        queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        per = args.clients // args.workers
        procs = [mp.Process(target=worker, args=(address, tokens, per, stop_at, args.hosts, args.vms, 1000 * w,
                                                  queue)) for w in range(args.workers)]
        for p in procs:
            p.start()
        while time.time() < stop_at:
            memory.append((time.time() - started, rss_mib(server.pid)))
            time.sleep(10)
        memory.append((time.time() - started, rss_mib(server.pid)))
        results = [queue.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(30)
        elapsed = time.time() - started
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)

    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    slow: list[tuple[str, float, float]] = []
    for out, slow_calls, errs in results:
        for kind, values in out.items():
            latencies[kind] += values
        slow += slow_calls
        for kind, n in errs.items():
            errors[kind] += n
    total = sum(len(v) for v in latencies.values())
    print(f"{args.clients} clients ({args.clients // 2} schedulers, {args.clients - args.clients // 2} SREs) for "
          f"{elapsed:.0f} s against one advisor ({args.hosts} hosts, {args.vms} VMs), auth on, {os.cpu_count()} CPUs")
    print(f"throughput: {total / elapsed:,.0f} calls/s in all; errors: {sum(errors.values())}"
          + (f" ({dict(errors)})" if errors else ""))
    print(f"{'call':14s} {'calls':>8s} {'per s':>7s} {'p50 ms':>7s} {'p99 ms':>7s}")
    for kind in KINDS:
        values = latencies.get(kind, [])
        if len(values) < 2:
            continue
        q = statistics.quantiles(values, n=100, method="inclusive")
        print(f"{kind:14s} {len(values):8d} {len(values) / elapsed:7.1f} {q[49]:7.1f} {q[98]:7.1f}")
    line = f"calls over {SLOW_MS / 1000:g} s: {len(slow)}"
    if slow:
        kinds = {k: n for k in KINDS if (n := sum(1 for kind, _, _ in slow if kind == k))}
        first, last = (min(t for _, t, _ in slow) - started, max(t for _, t, _ in slow) - started)
        line += (f" ({kinds}), started {first:.1f} to {last:.1f} s after the start, the slowest "
                 f"{max(ms for _, _, ms in slow):,.0f} ms")
    print(line)
    print("server RSS over time: " + ", ".join(f"{t:.0f}s {m:.0f} MiB" for t, m in memory))


if __name__ == "__main__":
    main()
