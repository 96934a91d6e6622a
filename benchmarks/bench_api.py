"""Benchmark: ingestion throughput and recommendation latency on a synthetic cluster of 1,000 hosts and 20,000 VMs.

Runs `advisor serve` as its own process (as in production) and drives it over gRPC on loopback from this one:

    .venv/bin/python benchmarks/bench_api.py [--hosts 1000] [--vms 20000] [--rounds 10] [--recommendations 300]

Prints figures; asserts nothing about speed (these machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.lab.procs import free_port, rss_mib


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]


def cluster(n_hosts: int, n_vms: int, rng: random.Random) -> pb.PushInventoryRequest:
    request = pb.PushInventoryRequest()
    for h in range(n_hosts):
        request.hosts.add(id=f"host-{h:04d}", cpu_cores=64, memory_mib=512 * 1024, cpu_model="Cascadelake-Server",
                          in_maintenance=rng.random() < 0.02, labels={"rack": f"r{h // 40}"})
    for v in range(n_vms):
        request.vms.add(id=f"vm-{v:05d}", host_id=f"host-{v % n_hosts:04d}",
                        memory_mib=rng.choice([2048, 4096, 8192]),
                        vcpus=rng.choice([1, 2, 4]), anti_affinity_groups=[f"app-{v % 500}"] if v % 3 == 0 else [])
    return request


def sample_batches(
    n_hosts: int, n_vms: int, rounds: int, batch: int, rng: random.Random
) -> list[pb.PushSamplesRequest]:
    start = time.time() - rounds * 15
    batches, current = [], pb.PushSamplesRequest()
    for r in range(rounds):
        t = int(start + r * 15)
        for h in range(n_hosts):
            current.host_samples.add(host_id=f"host-{h:04d}", time={"seconds": t},
                                     cpu_utilization_ratio=rng.uniform(0.05, 0.7))
        for v in range(n_vms):
            current.vm_samples.add(vm_id=f"vm-{v:05d}", time={"seconds": t}, cpu_utilization_ratio=rng.random(),
                                   dirty_rate_mib_s=rng.expovariate(1 / 20), memory_used_mib=1024.0)
            if len(current.vm_samples) + len(current.host_samples) >= batch:
                batches.append(current)
                current = pb.PushSamplesRequest()
    if len(current.vm_samples) + len(current.host_samples):
        batches.append(current)
    return batches


def count(b: pb.PushSamplesRequest) -> int:
    return len(b.host_samples) + len(b.vm_samples)


def main() -> None:  # noqa: PLR0915 - a linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--vms", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=10, help="sample rounds: one sample per host and VM each")
    parser.add_argument("--batch", type=int, default=5000, help="samples per PushSamples message")
    parser.add_argument("--recommendations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    port, metrics_port = free_port(), free_port()
    data = tempfile.mkdtemp(prefix="advisor-bench-")
    secret = subprocess.run([sys.executable, "-m", "advisor.cli", "tokens", "create", "--data-dir", data, "--name",
                             "bench", "--role", "scheduler"], capture_output=True, text=True, check=True).stdout.strip()
    server = subprocess.Popen(
        [sys.executable, "-m", "advisor.cli", "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data,
         "--metrics-listen", f"127.0.0.1:{metrics_port}", "--log-level", "warning"],
        env=os.environ.copy(),
    )
    try:
        client = AdvisorClient(f"127.0.0.1:{port}", token=secret, timeout_s=300)
        client.wait_ready(60)
        rss_empty = rss_mib(server.pid)

        inventory = cluster(args.hosts, args.vms, rng)
        t0 = time.perf_counter()
        client.push_inventory(inventory)
        inventory_s = time.perf_counter() - t0
        rss_inventory = rss_mib(server.pid)

        batches = sample_batches(args.hosts, args.vms, args.rounds, args.batch, rng)
        half = len(batches) // 2
        t0 = time.perf_counter()
        for b in batches[:half]:
            client.push_samples(b)
        unary_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        client.stream_samples(batches[half:])
        stream_s = time.perf_counter() - t0
        unary_n, stream_n = sum(map(count, batches[:half])), sum(map(count, batches[half:]))
        rss_samples = rss_mib(server.pid)
        store_bytes = metric(metrics_port, "advisor_sample_store_bytes")

        vm_ids = [f"vm-{rng.randrange(args.vms):05d}" for _ in range(args.recommendations)]
        latencies, failed = [], 0
        for vm_id in vm_ids:
            t0 = time.perf_counter()
            try:
                client.recommend(pb.RecommendTargetRequest(vm_id=vm_id, objective=pb.Objective(max_downtime_ms=300)))
            except Exception:
                failed += 1
            latencies.append((time.perf_counter() - t0) * 1000)
        predict_latencies = []
        for vm_id in vm_ids[:100]:
            t0 = time.perf_counter()
            client.predict(pb.PredictMigrationCostRequest(vm_id=vm_id))
            predict_latencies.append((time.perf_counter() - t0) * 1000)
        model = client.predict(pb.PredictMigrationCostRequest(vm_id=vm_ids[0])).costs[0].model
        client.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]

    tracked = args.hosts + args.vms
    print(f"cluster: {args.hosts} hosts, {args.vms} VMs; cost model {model.name} {model.version}; "
          f"{os.cpu_count()} CPUs; server and client in separate processes over loopback gRPC")
    entities_s = (args.hosts + args.vms) / inventory_s
    print(f"inventory push (one message):   {inventory_s:8.2f} s  ({entities_s:,.0f} entities/s)")
    print(f"samples, unary PushSamples:     {unary_n / unary_s:12,.0f} samples/s  "
          f"({unary_n:,} in batches of {args.batch:,})")
    print(f"samples, streaming:             {stream_n / stream_s:12,.0f} samples/s  ({stream_n:,})")
    print(f"RecommendTarget latency:        p50 {pct(latencies, 50):6.1f} ms   p99 {pct(latencies, 99):6.1f} ms  "
          f"({args.recommendations} calls, {failed} without an eligible target)")
    print(f"PredictMigrationCost latency:   p50 {pct(predict_latencies, 50):6.1f} ms   "
          f"p99 {pct(predict_latencies, 99):6.1f} ms")
    print(f"sample store: {store_bytes / tracked:,.0f} bytes per tracked host or VM ({store_bytes / 2**20:.1f} MiB); "
          f"server RSS {rss_empty:.0f} MiB empty, {rss_inventory:.0f} MiB with inventory, "
          f"{rss_samples:.0f} MiB with samples "
          f"({(rss_samples - rss_empty) * 1024 / tracked:.1f} KiB per tracked entity)")


if __name__ == "__main__":
    main()
