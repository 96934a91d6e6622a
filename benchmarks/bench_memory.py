"""Benchmark: resident memory per VM of what the advisor keeps for a cluster, at several sizes.

    .venv/bin/python benchmarks/bench_memory.py [--sizes 1000:20000,10000:200000] [--rounds 120] [--capacity 120]
        [--batch 5000] [--all-fields]

Each size runs in a fresh process, which builds what `advisor serve` holds in memory for a cluster (hosts and
VMs as the domain's values in the inventory, the planning snapshot built from them) and then the recent samples
(`--rounds` per host and per VM through `RecentSamples.add`, `--batch` samples at a time as bench_api.py pushes
them, `--capacity` kept per entity as the setting `samples_per_entity`, whose default is 120; as many rounds fill
every ring); RSS is read after each step. A VM sample measures CPU, memory and dirty rate, as bench_api.py's do
(`--all-fields`: every VM field, the most a VM's samples can cost), a host sample its CPU.
Figures are per VM, hosts included (one host per 20 VMs). Asserts nothing; the figures are quoted in docs/benchmarks.md
(issue 17's aim: at most 2 KiB per VM).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import platform
import time

from advisor.domain.cluster import Cluster
from advisor.domain.model import Host, HostSample, Vm, VmSample
from advisor.features.samples import RecentSamples, warm_up
from advisor.lab.procs import rss_mib
from advisor.planning.engine.domain_arrays import Tracked
from advisor.planning.engine.measured import Measured


def inventory(n_hosts: int, n_vms: int) -> tuple[list[Host], list[Vm]]:
    """As benchmarks/bench_api.py pushes it: 64-core hosts with a label, VMs of 1-4 vCPUs, a third in an
    anti-affinity group."""
    hosts = [Host(id=f"host-{h:05d}", cpu_cores=64, memory_mib=512 * 1024, cpu_model="Cascadelake-Server",
                  labels={"rack": f"r{h // 40}"}) for h in range(n_hosts)]
    vms = [Vm(id=f"vm-{v:06d}", host_id=f"host-{v % n_hosts:05d}", memory_mib=(2048, 4096, 8192)[v % 3],
              vcpus=(1, 2, 4)[v % 3], anti_affinity_groups=frozenset({f"app-{v % 500}"}) if v % 3 == 0 else frozenset())
           for v in range(n_vms)]
    return hosts, vms


def measure(n_hosts: int, n_vms: int, rounds: int, capacity: int, batch: int, all_fields: bool,
            out: mp.Queue) -> None:  # type: ignore[type-arg]
    # the store's compiled loops, compiled (or read from numba's cache) before anything is measured, as `advisor
    # serve` does at its start (advisor/app.py): their code is the process's, whatever the number of VMs
    warm_up()
    gc.collect()
    empty = rss_mib(os.getpid())
    hosts, vms = inventory(n_hosts, n_vms)
    cluster = Cluster(hosts, vms)
    snapshot = Tracked.build(hosts, vms, Measured.of(hosts, vms, {}, {}, {}, {}), frozenset(), "")
    del hosts, vms
    gc.collect()
    with_inventory = rss_mib(os.getpid())
    samples = RecentSamples(capacity)
    started = time.perf_counter()
    t0 = 1_796_000_000.0
    host_ids, vm_ids = list(cluster.hosts), list(cluster.vms)
    more = ({"working_set_mib": 300.0, "disk_write_rate_mib_s": 2.5, "resident_memory_mib": 1200.0} if all_fields
            else {})
    for r in range(rounds):
        t = t0 + 15 * r
        for start in range(0, len(host_ids), batch):
            samples.add([HostSample(h, t, cpu_utilization=0.3) for h in host_ids[start : start + batch]], [])
        for start in range(0, len(vm_ids), batch):
            samples.add([], [VmSample(v, t, cpu_utilization=0.5, memory_used_mib=1024.0, dirty_rate_mib_s=20.0, **more)
                             for v in vm_ids[start : start + batch]])
    fill_s = time.perf_counter() - started
    gc.collect()
    with_samples = rss_mib(os.getpid())
    out.put((empty, with_inventory, with_samples, samples.nbytes(), fill_s, len(snapshot.vms)))


def per_vm(mib: float, n_vms: int) -> float:
    return mib * 1024 / n_vms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000:20000,10000:200000")
    parser.add_argument("--rounds", type=int, default=120, help="samples per host and VM (capacity fills every ring)")
    parser.add_argument("--capacity", type=int, default=120, help="samples kept per host and VM")
    parser.add_argument("--batch", type=int, default=5000, help="samples per push (bench_api.py's default)")
    parser.add_argument("--all-fields", action="store_true", help="VM samples measure every field")
    args = parser.parse_args()
    print(f"memory benchmark: {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}; "
          f"{args.rounds} samples per host and VM, {args.capacity} kept, pushed {args.batch} at a time, "
          f"{'every VM field' if args.all_fields else 'three VM fields'} measured; KiB per VM (hosts included)")
    print(f"{'hosts':>6} {'VMs':>7} | {'RSS empty':>9} {'+inventory':>10} {'+samples':>9} MiB | "
          f"{'inventory':>9} {'samples':>8} {'all':>6} KiB/VM | {'ring data':>9} B/entity")
    ctx = mp.get_context("spawn")
    for size in args.sizes.split(","):
        n_hosts, n_vms = (int(x) for x in size.split(":"))
        out = ctx.Queue()
        child = ctx.Process(target=measure, args=(n_hosts, n_vms, args.rounds, args.capacity, args.batch,
                                                           args.all_fields, out))
        child.start()
        empty, inv, full, ring_bytes, _, _ = out.get(timeout=3600)
        child.join()
        kib = [per_vm(inv - empty, n_vms), per_vm(full - inv, n_vms), per_vm(full - empty, n_vms)]
        print(f"{n_hosts:>6} {n_vms:>7} | {empty:>9.0f} {inv:>10.0f} {full:>9.0f}     | {kib[0]:>9.2f} "
              f"{kib[1]:>8.2f} {kib[2]:>6.2f}        | "
              f"{ring_bytes / (n_hosts + n_vms):>9,.0f}")


if __name__ == "__main__":
    main()
