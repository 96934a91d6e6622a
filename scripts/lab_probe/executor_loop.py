"""The lab post-copy test's scenario in a loop: the advisor's Executor switches a non-converging pre-copy.

    cd /work/main && .venv/bin/python scripts/lab_probe/executor_loop.py --n 10 --label exec --out /tmp/lpc-exec.jsonl

As tests/lab/test_migrations.py::test_dirtying_faster_than_the_cap_is_switched_to_postcopy: guest dirtying
--dirty MiB/s, cap --bw MiB/s, 100 ms downtime ramp, judged from round 2, switched after 2 losing rounds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("PROBE_TREE", str(Path(__file__).resolve().parents[2])))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from advisor.adapters.libvirt import LibvirtHypervisor
from advisor.adapters.sqlite.db import SqliteStore
from advisor.domain.migration import MigrationRecord, Progress
from advisor.domain.model import Interval, MigrationCost, MigrationParameters, ModelRef, Move, Technique
from advisor.execution.executor import Executor
from advisor.execution.hypervisor import MigrationTarget
from advisor.execution.runner import HostEndpoint, MonitorTuning
from advisor.lab import Lab

COST = MigrationCost(
    Technique.PRECOPY, Interval(1, 2, 3), Interval(1, 2, 3), Interval(1, 2, 3), True, ModelRef("test", "0")
)


class Seen:
    def __init__(self) -> None:
        self.seen: list[Progress] = []

    def progress(self, record: MigrationRecord, progress: Progress) -> None:
        self.seen.append(progress)

    def finished(self, record: MigrationRecord) -> None:
        pass


def main() -> int:
    ap = argparse.ArgumentParser()
    common.loop_args(ap, dirty=24.0, alive_s=30.0)
    ap.add_argument("--bw", type=float, default=8)
    ap.add_argument("--downtime", type=float, default=100)
    ap.add_argument("--technique", default="precopy")
    ap.add_argument("--postcopy-after", type=float, default=120_000)
    ap.add_argument("--deadline", type=float, default=150_000)
    ap.add_argument("--ac-initial", type=int, default=60)
    ap.add_argument("--ac-increment", type=int, default=20)
    args = ap.parse_args()
    store = SqliteStore(Path(tempfile.mkdtemp(prefix="lpc-exec-")) / "advisor.sqlite3")
    technique = Technique(args.technique)

    def migrate(lab: Lab, i: int, src: str, dst: str) -> dict[str, Any]:
        def endpoint(host_id: str) -> HostEndpoint:
            uri = lab.uri(host_id)
            return HostEndpoint(lambda: LibvirtHypervisor(uri), MigrationTarget(uri, "127.0.0.1"))

        seen = Seen()
        executor = Executor(
            store, endpoint, seen, tuning=MonitorTuning(judge_from_round=2, stall_rounds=2), poll_interval_s=0.25
        )
        executor.start()
        params = MigrationParameters(
            technique,
            args.bw,
            args.downtime,
            postcopy_after_ms=None if args.postcopy_after < 0 else args.postcopy_after,
            deadline_ms=args.deadline,
            autoconverge_initial_pct=args.ac_initial,
            autoconverge_increment_pct=args.ac_increment,
        )
        started = time.monotonic()
        op = executor.submit(
            f"r{i}-{time.time_ns()}", Move(common.GUEST, src, dst, params, COST, ()), actor="probe"
        ).operation_id
        record = executor.get(op)
        for watched in executor.watch(op, timeout_s=args.deadline / 1000 + 60):
            record = watched.record
        wall = time.monotonic() - started
        executor.stop()
        alive = lab.guest_alive(common.GUEST, within_s=args.alive_s)
        if alive:
            lab.set_dirty_rate(common.GUEST, 0)
        return {
            "technique": args.technique,
            "where": lab.host_of(common.GUEST),
            "phase": str(record.phase),
            "wall_s": round(wall, 1),
            "alive": alive,
            "outcome": None if record.outcome is None else vars(record.outcome),
            "max_iteration": max((p.iteration for p in seen.seen), default=0),
            "max_throttle": max((p.autoconverge_throttle_pct for p in seen.seen), default=0),
            "timeline": [f"{e.at_ms / 1000:.1f}s {e.phase} {e.message}" for e in record.timeline],
        }

    try:
        return common.run_loop(args, migrate, summary=f"technique={args.technique}")
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
