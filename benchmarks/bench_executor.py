"""Benchmark: the advisor's executed migration vs a plain `virsh migrate` of the same guest, same settings.

    .venv/bin/python benchmarks/bench_executor.py [--runs 3] [--bandwidth-mib-s 64] [--dirty-mib-s 8]

Brings up a lab of its own (2 hosts, 1 guest), then alternates: virsh migrates the guest one way, the advisor's
executor (monitor loop, timeline written to SQLite, location check on both hosts) migrates it back. Prints the
wall time of each and the advisor's overhead as a ratio. Figures only, no assertion: the machine is shared.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import libvirt

from advisor.adapters.libvirt import LibvirtHypervisor
from advisor.adapters.sqlite.db import SqliteStore
from advisor.domain.migration import MigrationRecord, Phase, Progress
from advisor.domain.model import Interval, MigrationCost, MigrationParameters, ModelRef, Move, Technique
from advisor.execution.executor import Executor, HostEndpoint, MonitorTuning
from advisor.execution.hypervisor import MigrationTarget
from advisor.lab import DEFAULT_ROOT, Lab

GUEST = "vm1"


class Quiet:
    def progress(self, record: MigrationRecord, progress: Progress) -> None: ...

    def finished(self, record: MigrationRecord) -> None: ...


def settled_host(lab: Lab, timeout_s: float = 10.0) -> str:
    """The one host running the guest, once the last migration's source has let it go."""
    deadline = time.monotonic() + timeout_s
    while True:
        running = []
        for host in ("hv1", "hv2"):
            hypervisor = LibvirtHypervisor(lab.uri(host))
            if any(g.name == GUEST and g.running for g in hypervisor.guests()):
                running.append(host)
            hypervisor.close()
        if len(running) == 1:
            return running[0]
        if time.monotonic() > deadline:
            seen = {h: LibvirtHypervisor(lab.uri(h)).guests() for h in ("hv1", "hv2")}
            raise SystemExit(f"{GUEST} runs on {running or 'no host'}: {seen}")
        time.sleep(0.1)


def virsh_migrate(lab: Lab, source: str, target: str, bandwidth: int) -> float:
    persistent = libvirt.open(lab.uri(source)).lookupByName(GUEST).isPersistent() == 1
    command = ["virsh", "-c", lab.uri(source), "migrate", "--live", "--p2p", GUEST, lab.uri(target),
               "--migrateuri", "tcp://127.0.0.1", "--listen-address", "127.0.0.1", "--bandwidth", str(bandwidth)]
    if persistent:
        command += ["--persistent", "--undefinesource"]
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    return time.monotonic() - started


def advisor_migrate(lab: Lab, executor: Executor, n: int, source: str, target: str, bandwidth: int) -> float:
    cost = MigrationCost(Technique.PRECOPY, Interval(1, 2, 3), Interval(1, 2, 3), Interval(1, 2, 3), True,
                         ModelRef("bench", "0"))
    params = MigrationParameters(Technique.PRECOPY, bandwidth, 300, None, 300_000)
    started = time.monotonic()
    op = executor.submit(f"bench-{n}", Move(GUEST, source, target, params, cost, ()), actor="bench").operation_id
    record = executor.get(op)
    for record, _, _ in executor.watch(op, timeout_s=300):  # noqa: B007 - the last one is the final record
        pass
    elapsed = time.monotonic() - started
    if record.phase is not Phase.SUCCEEDED:
        raise SystemExit(f"advisor migration {op} ended {record.phase}: {record.message}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bandwidth-mib-s", type=int, default=64)
    parser.add_argument("--dirty-mib-s", type=float, default=8.0)
    parser.add_argument("--ramp", action="store_true",
                        help="let the monitor ramp the allowed downtime up from 100 ms (its production behaviour); by "
                             "default it holds 300 ms from the start, as virsh does, so that only overhead differs")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="advisor-bench-lab-", dir="/tmp"))
    lab = Lab(root, cache=DEFAULT_ROOT / "cache")
    data = Path(tempfile.mkdtemp(prefix="advisor-bench-"))
    store = SqliteStore(data / "advisor.sqlite3")

    def endpoint(host_id: str) -> HostEndpoint:
        uri = lab.uri(host_id)
        return HostEndpoint(lambda: LibvirtHypervisor(uri), MigrationTarget(uri, "127.0.0.1"))

    tuning = MonitorTuning() if args.ramp else MonitorTuning(downtime_steps=0)
    executor = Executor(store, endpoint, Quiet(), tuning=tuning, poll_interval_s=0.5)
    executor.start()
    plain: list[float] = []
    ours: list[float] = []
    try:
        lab.up(hosts=2, guests=1)
        lab.set_dirty_rate(GUEST, args.dirty_mib_s)
        for n in range(args.runs):
            source = settled_host(lab)
            target = "hv2" if source == "hv1" else "hv1"
            plain.append(virsh_migrate(lab, source, target, args.bandwidth_mib_s))
            settled_host(lab)
            ours.append(advisor_migrate(lab, executor, n, target, source, args.bandwidth_mib_s))
            print(f"run {n + 1}: virsh {plain[-1]:.2f} s, advisor {ours[-1]:.2f} s", flush=True)
    finally:
        executor.stop()
        store.close()
        lab.down()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
    p, o = statistics.median(plain), statistics.median(ours)
    print(f"guest 128 MiB dirtying {args.dirty_mib_s:g} MiB/s, pre-copy capped at {args.bandwidth_mib_s} MiB/s, "
          f"allowed downtime {'ramped from 100 to 300' if args.ramp else '300'} ms, {args.runs} runs each way "
          "(TCG, loopback)")
    print(f"plain virsh migrate: median {p:.2f} s   advisor executor: median {o:.2f} s   "
          f"overhead ratio {o / p:.2f} ({o - p:+.2f} s)")


if __name__ == "__main__":
    main()
