"""Benchmark: the Prometheus source on a synthetic cluster (default 200 hosts, 4,000 VMs, 1 h of history every 15 s).

Writes node_exporter-, libvirt-exporter- and advisor-style series as OpenMetrics, backfills them with
`promtool tsdb create-blocks-from openmetrics`, starts a real Prometheus on 127.0.0.1 (free port, temp dir), then
times `PrometheusSource.poll` and `history`:

    .venv/bin/python benchmarks/bench_prometheus.py [--hosts 200] [--vms 4000] [--minutes 60] [--step 15] \
        [--polls 10] [--workers 4]

Prints figures only (this machine is shared and noisy); the Prometheus it started is stopped by its pid at the end.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from advisor.adapters.prometheus.queries import PrometheusQueries
from advisor.adapters.prometheus.source import PrometheusSource
from advisor.domain.model import MIB
from advisor.lab.procs import free_port, rss_mib, wait_for_http

CPUS = 2


def write_cluster(path: Path, hosts: int, vms: int, start: int, end: int, step: int, rng: random.Random) -> int:
    """OpenMetrics text for the cluster; returns the number of samples written."""
    times = list(range(start, end + 1, step))
    elapsed = [t - start for t in times]
    n = 0
    with path.open("w") as f:

        def counter(labels: str, name: str, rate: float, base: float) -> None:
            nonlocal n
            pairs = zip(times, elapsed, strict=True)
            f.write("".join(f"{name}{{{labels}}} {base + rate * e:.3f} {t}\n" for t, e in pairs))
            n += len(times)

        def gauge(labels: str, name: str, value: float) -> None:
            nonlocal n
            f.write("".join(f"{name}{{{labels}}} {value:.6g} {t}\n" for t in times))
            n += len(times)

        host_labels = [f'instance="host-{h:04d}:9100",job="node"' for h in range(hosts)]
        f.write("# TYPE node_cpu_seconds counter\n")
        for labels in host_labels:
            for cpu in range(CPUS):
                idle = rng.uniform(0.1, 0.9)
                counter(f'{labels},cpu="{cpu}",mode="idle"', "node_cpu_seconds_total", idle, 1e6)
                counter(f'{labels},cpu="{cpu}",mode="user"', "node_cpu_seconds_total", 1 - idle, 1e5)
        f.write("# TYPE node_memory_MemTotal_bytes gauge\n")
        for labels in host_labels:
            gauge(labels, "node_memory_MemTotal_bytes", 512 * 1024 * MIB)
        f.write("# TYPE node_memory_MemAvailable_bytes gauge\n")
        for labels in host_labels:
            gauge(labels, "node_memory_MemAvailable_bytes", rng.uniform(64, 448) * 1024 * MIB)
        for direction in ("receive", "transmit"):
            f.write(f"# TYPE node_network_{direction}_bytes counter\n")
            for labels in host_labels:
                for device in ("eth0", "lo"):
                    counter(f'{labels},device="{device}"', f"node_network_{direction}_bytes_total",
                            rng.uniform(1, 100) * MIB, 1e10)

        vm_labels = [(f'instance="host-{v % hosts:04d}:9177",job="libvirt",domain="vm-{v:05d}"', v)
                     for v in range(vms)]
        vcpus = {v: rng.choice([1, 2, 4]) for v in range(vms)}
        f.write("# TYPE libvirt_domain_info_cpu_time_seconds counter\n")
        for labels, v in vm_labels:
            counter(labels, "libvirt_domain_info_cpu_time_seconds_total", vcpus[v] * rng.uniform(0, 1), 1e4)
        f.write("# TYPE libvirt_domain_info_virtual_cpus gauge\n")
        for labels, v in vm_labels:
            gauge(labels, "libvirt_domain_info_virtual_cpus", vcpus[v])
        f.write("# TYPE libvirt_domain_info_memory_usage_bytes gauge\n")
        for labels, _ in vm_labels:
            gauge(labels, "libvirt_domain_info_memory_usage_bytes", rng.choice([2048, 4096, 8192]) * MIB)
        f.write("# TYPE advisor_vm_dirty_rate_mib_s gauge\n")
        for _, v in vm_labels:
            gauge(f'instance="advisor:9464",job="advisor",vm="vm-{v:05d}"', "advisor_vm_dirty_rate_mib_s",
                  rng.uniform(0, 200))
        f.write("# EOF\n")
    return n


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--vms", type=int, default=4000)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--step", type=int, default=15)
    parser.add_argument("--polls", type=int, default=10)
    parser.add_argument("--histories", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="queries in flight per poll (PrometheusSource)")
    args = parser.parse_args()
    rng = random.Random(5)

    with tempfile.TemporaryDirectory(prefix="bench-prom-") as tmp:
        directory = Path(tmp)
        end = int(time.time()) // args.step * args.step - args.step
        start = end - args.minutes * 60
        t0 = time.perf_counter()
        samples_in = write_cluster(directory / "cluster.om", args.hosts, args.vms, start, end, args.step, rng)
        size_mib = (directory / "cluster.om").stat().st_size / MIB
        t1 = time.perf_counter()
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(directory / "cluster.om"),
                        str(directory / "data")], check=True, capture_output=True, timeout=1800)
        t2 = time.perf_counter()
        (directory / "cluster.om").unlink()
        print(f"cluster: {args.hosts} hosts, {args.vms} VMs, {args.minutes} min every {args.step} s")
        print(f"backfill: {samples_in:,} samples ({size_mib:,.0f} MiB OpenMetrics) written in {t1 - t0:.1f} s, "
              f"promtool create-blocks-from openmetrics {t2 - t1:.1f} s ({samples_in / (t2 - t1):,.0f} samples/s)")

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        (directory / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
        with open(directory / "prometheus.log", "wb") as log:
            process = subprocess.Popen(
                ["prometheus", f"--config.file={directory / 'prometheus.yml'}",
                 f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                 "--storage.tsdb.retention.time=30d"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        try:
            t3 = time.perf_counter()
            wait_for_http("prometheus", f"{url}/-/ready", process, timeout_s=120)
            print(f"prometheus 2.42 ready in {time.perf_counter() - t3:.1f} s")
            run(url, args, end, rng)
            print(f"prometheus RSS after the run: {rss_mib(process.pid):,.0f} MiB")
        finally:
            process.terminate()
            process.wait(timeout=60)


def run(url: str, args: argparse.Namespace, end: int, rng: random.Random) -> None:
    hosts = [f"host-{h:04d}" for h in range(args.hosts)]
    vms = [f"vm-{v:05d}" for v in range(args.vms)]
    clock_now = float(end + 5)
    with PrometheusSource(url, PrometheusQueries(), timeout_s=60, clock=lambda: clock_now,
                          workers=args.workers) as source:
        source.poll(hosts, vms)  # warm-up: first touch of the blocks
        walls, outs, values, per_query = [], [], [], {}
        for _ in range(args.polls):
            started = time.perf_counter()
            result = source.poll(hosts, vms)
            walls.append(time.perf_counter() - started)
            assert result.health.ok, result.health.last_error
            outs.append(len(result.host_samples) + len(result.vm_samples))
            values.append(sum(v is not None for s in result.host_samples
                              for v in (s.cpu_utilization, s.memory_used_mib, s.network_rx_mib_s, s.network_tx_mib_s))
                          + sum(v is not None for s in result.vm_samples
                                for v in (s.cpu_utilization, s.memory_used_mib, s.dirty_rate_mib_s)))
            for name, seconds in result.query_seconds.items():
                per_query.setdefault(name, []).append(seconds)
        wall = statistics.median(walls)
        print(f"poll ({len(per_query)} instant queries, {args.workers} in flight): median {wall * 1000:.0f} ms, "
              f"p95 {pct(walls, 0.95) * 1000:.0f} ms over {args.polls} polls")
        print(f"  samples out per poll: {outs[-1]:,} ({len(hosts)} HostSample + {len(vms)} VmSample expected), "
              f"metric values {values[-1]:,}; skipped {result.skipped or 'none'}; missing {result.missing or 'none'}")
        print(f"  throughput: {sum(outs) / sum(walls):,.0f} samples/s, {sum(values) / sum(walls):,.0f} values/s "
              "(samples out / wall time of poll)")
        print("  query latency, median / max ms:")
        for name, seconds in sorted(per_query.items(), key=lambda kv: -statistics.median(kv[1])):
            print(f"    {name:28s} {statistics.median(seconds) * 1000:7.1f} / {max(seconds) * 1000:7.1f}")
        history: dict[str, list[float]] = {}
        for metric in ("dirty_rate_mib_s", "cpu_utilization", "memory_used_mib"):
            for vm in rng.sample(vms, min(args.histories, len(vms))):
                started = time.perf_counter()
                points = source.history(vm, metric, end - args.minutes * 60 + 300, end, args.step)
                history.setdefault(metric, []).append(time.perf_counter() - started)
                assert points, (vm, metric)
        for metric, seconds in history.items():
            print(f"history({metric}, {args.minutes - 5} min every {args.step} s, one VM of {len(vms)}): "
                  f"median {statistics.median(seconds) * 1000:.0f} ms, max {max(seconds) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
