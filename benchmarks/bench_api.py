"""Benchmark: ingestion throughput and recommendation latency on a synthetic cluster of 1,000 hosts and 20,000 VMs.

Runs `advisor serve` as its own process (as in production) and drives it over gRPC on loopback from this one:

    .venv/bin/python benchmarks/bench_api.py [--hosts 1000] [--vms 20000] [--rounds 10] [--recommendations 300]
                                             [--placements 300]

RecommendTarget, then PlaceVm, are timed twice: on a quiet advisor, then while another process pushes a one-VM
inventory change twice a second and streams samples at `--sample-rate` (100,000/s; the rate reached is printed),
from messages it built before the timing began. Prints figures; asserts nothing about speed (these machines are
shared and noisy).

`--in-process` times the two use cases instead, called in this process on an advisor built here (no gRPC, no
other process): the CPU time of each call (`thread_time`, steadier than wall time on a shared machine), and the
slowest calls' wall time beside their CPU time (a call waiting more than it computes waited for the machine or
for I/O, not for its own work).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

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


def timed_batches(n_vms: int, batch: int, rate: float, seconds: float, start: float,
                  rng: random.Random) -> list[bytes]:
    """Serialized PushSamples messages of `batch` VM samples each, `seconds` of them at `rate` samples/s from
    `start`: sample i is taken at start + i / rate. Each VM's samples come in time order, as a collector sends them
    (out of order, each costs the store a re-sort of its ring)."""
    out = []
    for first in range(0, int(rate * seconds), batch):
        request = pb.PushSamplesRequest()
        for i in range(first, first + batch):
            at = start + i / rate
            request.vm_samples.add(vm_id=f"vm-{rng.randrange(n_vms):05d}",
                                   time={"seconds": int(at), "nanos": int(at % 1 * 1e9)},
                                   cpu_utilization_ratio=rng.random(), dirty_rate_mib_s=rng.expovariate(1 / 20),
                                   memory_used_mib=1024.0)
        out.append(request.SerializeToString())
    return out


def pusher(address: str, secret: str, changes: list[bytes], n_vms: int, batch: int, rate: float, seconds: float,
           ready: Any, stop: Any, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Push one inventory change every 0.5 s and stream samples at `rate` a second, each batch sent when its
    samples are due, until `stop` is set or the `seconds` built beforehand run out. The messages are built before
    `ready` is set: building them in Python takes this process more CPU than the advisor takes to ingest them, and
    on a 2-core machine it would be the pusher, not the advisor, that set the rate."""
    rng = random.Random(3)
    t0 = time.perf_counter()
    probe = timed_batches(n_vms, batch, rate, batch / rate, time.time(), rng)  # the build's speed, to start on time
    per_sample_s = (time.perf_counter() - t0) / batch
    start = time.time() + 1.0 + per_sample_s * rate * seconds * 1.2
    batches = timed_batches(n_vms, batch, rate, seconds, start, rng)
    del probe
    pushes = samples = 0
    with AdvisorClient(address, token=secret, timeout_s=60) as client:
        time.sleep(max(0.0, start - time.time()))
        ready.set()
        began = next_push = time.monotonic()
        for k, message in enumerate(batches):
            if stop.is_set():
                break
            if time.monotonic() >= next_push:
                client.push_inventory(pb.PushInventoryRequest.FromString(changes[pushes % len(changes)]))
                pushes, next_push = pushes + 1, next_push + 0.5
            time.sleep(max(0.0, start + k * batch / rate - time.time()))
            client.push_samples(pb.PushSamplesRequest.FromString(message))
            samples += batch
        ran_out = not stop.is_set()
        elapsed = time.monotonic() - began
    out.put((pushes / elapsed, samples / elapsed, ran_out))


def recommend_latencies(client: AdvisorClient, vm_ids: list[str]) -> tuple[list[float], int]:
    latencies, failed = [], 0
    for vm_id in vm_ids:
        t0 = time.perf_counter()
        try:
            client.recommend(pb.RecommendTargetRequest(vm_id=vm_id, objective=pb.Objective(max_downtime_ms=300)))
        except Exception:
            failed += 1
        latencies.append((time.perf_counter() - t0) * 1000)
    return latencies, failed


def place_latencies(client: AdvisorClient, n: int, tag: str) -> tuple[list[float], int]:
    """PlaceVm for `n` new VMs (at automation manual none is added to the inventory)."""
    latencies, failed = [], 0
    for i in range(n):
        t0 = time.perf_counter()
        try:
            client.place(pb.PlaceVmRequest(vm=pb.Vm(id=f"new-{tag}-{i}", memory_mib=4096, vcpus=2)))
        except Exception:
            failed += 1
        latencies.append((time.perf_counter() - t0) * 1000)
    return latencies, failed


def count(b: pb.PushSamplesRequest) -> int:
    return len(b.host_samples) + len(b.vm_samples)


def timed(calls: list[Any]) -> tuple[list[float], list[float]]:
    """Each call's CPU and wall time, in ms."""
    cpu, wall = [], []
    for call in calls:
        t0, c0 = time.perf_counter(), time.thread_time()
        call()
        cpu.append((time.thread_time() - c0) * 1000)
        wall.append((time.perf_counter() - t0) * 1000)
    return cpu, wall


def in_process(args: argparse.Namespace, rng: random.Random) -> None:
    """The use cases alone, in this process, on the same cluster and samples (see the module's docstring)."""
    from advisor.app import build_app
    from advisor.config import Settings
    from advisor.domain.access import Role
    from advisor.domain.model import Objective, Vm

    data = Path(tempfile.mkdtemp(prefix="advisor-bench-"))
    app = build_app(Settings(listen="127.0.0.1:0", metrics_listen="", dirty_rate_interval_s=0.0, data_dir=data))
    app.start()
    try:
        assert app.server is not None
        with AdvisorClient(f"127.0.0.1:{app.server.port}", token=app.tokens.renew("bench", Role.SCHEDULER),
                           timeout_s=300) as client:
            client.push_inventory(cluster(args.hosts, args.vms, rng))
            client.stream_samples(sample_batches(args.hosts, args.vms, args.rounds, args.batch, rng))
        advice = app.usecases.advice
        objective = Objective(max_downtime_ms=300)
        recommend = [partial(advice.recommend_target, f"vm-{rng.randrange(args.vms):05d}", objective)
                     for _ in range(args.recommendations + 20)]
        place = [partial(advice.place_vm, Vm(f"new-{i}", "", 4096, 2)) for i in range(args.placements + 20)]
        timed(recommend[:20] + place[:20])  # the first builds the snapshot
        figures = {"RecommendTarget": timed(recommend[20:]), "PlaceVm": timed(place[20:])}
    finally:
        app.stop()
        shutil.rmtree(data, ignore_errors=True)
    print(f"in process, the use cases alone: {args.hosts} hosts, {args.vms} VMs; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for name, (cpu, wall) in figures.items():
        slowest = sorted(range(len(wall)), key=wall.__getitem__)[-3:]
        print(f"{name:16s} CPU p50 {statistics.median(cpu):6.3f} ms  mean {statistics.mean(cpu):6.3f} ms  "
              f"p99 {pct(cpu, 99):6.3f} ms;  wall p50 {statistics.median(wall):6.3f} ms  p99 {pct(wall, 99):6.3f} ms"
              f"  (slowest, wall/CPU: {', '.join(f'{wall[i]:.1f}/{cpu[i]:.1f}' for i in slowest)} ms)")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:  # noqa: PLR0915 - a linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--vms", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=10, help="sample rounds: one sample per host and VM each")
    parser.add_argument("--batch", type=int, default=5000, help="samples per PushSamples message")
    parser.add_argument("--recommendations", type=int, default=300)
    parser.add_argument("--placements", type=int, default=300, help="PlaceVm calls, quiet and while pushing")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sample-rate", type=float, default=100_000,
                        help="samples/s streamed while the calls are timed the second time")
    parser.add_argument("--busy-seconds", type=float, default=12,
                        help="seconds of samples built for that (the calls must end within them)")
    parser.add_argument("--in-process", action="store_true", help="the use cases' CPU per call, without gRPC")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    if args.in_process:
        in_process(args, rng)
        return

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
        latencies, failed = recommend_latencies(client, vm_ids)
        places, places_failed = place_latencies(client, args.placements, "quiet")
        changes = []
        for vm in rng.sample(list(inventory.vms), 100):  # a VM relabelled, as agents push them
            vm.labels["touched"] = "yes"
            changes.append(pb.PushInventoryRequest(vms=[vm]).SerializeToString())
        # Spawned, not forked: a forked child shares this process's gRPC state, and its calls failed with "Stream
        # removed (sendmsg: Wrong file descriptor generation)".
        spawn = mp.get_context("spawn")
        ready, stop, rates = spawn.Event(), spawn.Event(), spawn.Queue()
        busy = spawn.Process(target=pusher, args=(f"127.0.0.1:{port}", secret, changes, args.vms, 2000,
                                                  args.sample_rate, args.busy_seconds, ready, stop, rates))
        busy.start()
        if not ready.wait(300):
            raise SystemExit("the pusher did not start within 300 s")
        busy_latencies, busy_failed = recommend_latencies(client, vm_ids)
        busy_places, busy_places_failed = place_latencies(client, args.placements, "busy")
        stop.set()
        pushes_s, samples_s, ran_out = rates.get(timeout=120)
        busy.join(60)
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
        shutil.rmtree(data, ignore_errors=True)  # its database: about 30 MB a run

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
    print(f"  while pushing:                p50 {pct(busy_latencies, 50):6.1f} ms   "
          f"p99 {pct(busy_latencies, 99):6.1f} ms  "
          f"({busy_failed} without; inventory {pushes_s:.1f} pushes/s, samples {samples_s:,.0f}/s of "
          f"{args.sample_rate:,.0f} asked)")
    if ran_out:
        print(f"  the samples ran out before the calls ended: raise --busy-seconds ({args.busy_seconds:g})")
    print(f"PlaceVm latency:                p50 {pct(places, 50):6.1f} ms   p99 {pct(places, 99):6.1f} ms  "
          f"({args.placements} calls, {places_failed} failed)")
    print(f"  while pushing:                p50 {pct(busy_places, 50):6.1f} ms   p99 {pct(busy_places, 99):6.1f} ms  "
          f"({busy_places_failed} failed)")
    print(f"PredictMigrationCost latency:   p50 {pct(predict_latencies, 50):6.1f} ms   "
          f"p99 {pct(predict_latencies, 99):6.1f} ms")
    print(f"sample store: {store_bytes / tracked:,.0f} bytes per tracked host or VM ({store_bytes / 2**20:.1f} MiB); "
          f"server RSS {rss_empty:.0f} MiB empty, {rss_inventory:.0f} MiB with inventory, "
          f"{rss_samples:.0f} MiB with samples "
          f"({(rss_samples - rss_empty) * 1024 / tracked:.1f} KiB per tracked entity)")


if __name__ == "__main__":
    main()
