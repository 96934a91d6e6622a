"""Benchmark: how long replicas on one PostgreSQL go without a leader when the leader is killed (`kill -9`).

    .venv/bin/python benchmarks/bench_failover.py [--kills 10] [--lease-ttl-s 10]

Two `advisor serve` processes on a PostgreSQL started here (Debian's, by tests.support.postgres, with its defaults),
each with its own data directory and metrics endpoint. Each round kills the leader by SIGKILL and times, from the
kill, how long until the other exports `advisor_leader 1` (it has taken the lease and taken over: executor started,
reconciled, leader's tasks running), polling every 50 ms; the killed one is then started again, as its supervisor
would, and the next round waits for it to serve as a follower. What to expect: the lease's TTL less the time since
its last renewal, plus up to one claim interval (a fifth of the TTL) — between 0.8 and 1.2 TTL. Prints each takeover
and their median and worst; asserts nothing (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from advisor.api.client import AdvisorClient
from advisor.lab.procs import free_port
from tests.support.postgres import PostgresServer

POLL_S = 0.05


@dataclass
class Replica:
    data_dir: Path
    url: str
    ttl_s: float
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    metrics_port: int = 0

    def start(self) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "advisor.cli", "serve", "--listen", f"127.0.0.1:{self.port}", "--metrics-listen",
             f"127.0.0.1:{self.metrics_port}", "--data-dir", str(self.data_dir), "--database-url", self.url,
             "--log-level", "warning"],
            env={**os.environ, "ADVISOR_LEASE_TTL_S": str(self.ttl_s)}, stdout=subprocess.DEVNULL)
        with AdvisorClient(f"127.0.0.1:{self.port}") as client:
            client.wait_ready(60)

    def leads(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as answer:
                found = re.search(r"^advisor_leader (\S+)$", answer.read().decode(), re.MULTILINE)
        except OSError:
            return False
        return found is not None and float(found.group(1)) == 1.0

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--lease-ttl-s", type=float, default=10.0)
    args = parser.parse_args()
    server = PostgresServer(durable=True)
    server.start()
    work = Path(tempfile.mkdtemp(prefix="advisor-failover-"))
    url = server.url(server.new_database())
    pair = [Replica(work / f"replica-{i}", url, args.lease_ttl_s) for i in range(2)]
    takeovers: list[float] = []
    try:
        for replica in pair:
            replica.start()
        for kill in range(args.kills):
            deadline = time.monotonic() + 3 * args.lease_ttl_s
            while not any(r.leads() for r in pair):
                assert time.monotonic() < deadline, "no leader"
                time.sleep(POLL_S)
            leader, follower = pair if pair[0].leads() else pair[::-1]
            time.sleep(1.0 + kill % 3 * args.lease_ttl_s / 10)  # kills at different points of the renewal cycle
            leader.kill()
            killed = time.monotonic()
            while not follower.leads():
                assert time.monotonic() - killed < 3 * args.lease_ttl_s, "the follower never took over"
                time.sleep(POLL_S)
            takeovers.append(time.monotonic() - killed)
            print(f"kill {kill + 1:2d}: the other replica led {takeovers[-1]:5.2f} s after the kill", flush=True)
            leader.start()  # its supervisor starts it again: a follower now
    finally:
        for replica in pair:
            replica.stop()
        server.stop()
    print(f"{len(takeovers)} kills of the leader, lease TTL {args.lease_ttl_s:g} s: takeover median "
          f"{statistics.median(takeovers):.2f} s, worst {max(takeovers):.2f} s, best {min(takeovers):.2f} s "
          f"({os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
