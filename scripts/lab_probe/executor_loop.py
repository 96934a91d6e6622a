"""The lab post-copy test's scenario in a loop: the advisor's Executor switches a non-converging pre-copy.

    cd /work/main && .venv/bin/python scripts/lab_probe/executor_loop.py --n 10 --label exec --out /tmp/lpc-exec.jsonl

As tests/lab/test_migrations.py::test_dirtying_faster_than_the_cap_is_switched_to_postcopy: guest dirtying
--dirty MiB/s, cap --bw MiB/s, 100 ms downtime ramp, judged from round 2, switched after 2 losing rounds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("PROBE_TREE", str(Path(__file__).resolve().parents[2])))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from advisor.execution.libvirt_adapter import LibvirtHypervisor
from advisor.storage.sqlite import SqliteStore

from advisor.domain.model import Interval, MigrationCost, MigrationParameters, ModelRef, Move, Technique
from advisor.execution.executor import Executor, HostEndpoint, MonitorTuning
from advisor.execution.hypervisor import MigrationTarget

COST = MigrationCost(
    Technique.PRECOPY, Interval(1, 2, 3), Interval(1, 2, 3), Interval(1, 2, 3), True, ModelRef("test", "0")
)


class Seen:
    def __init__(self) -> None:
        self.seen: list = []

    def progress(self, record, progress) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(progress)

    def finished(self, record) -> None:  # type: ignore[no-untyped-def]
        pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/tmp/lpc")
    ap.add_argument("--cache", default="/tmp/lpc-cache")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--dirty", type=float, nargs="+", default=[24.0])
    ap.add_argument("--bw", type=float, default=8)
    ap.add_argument("--downtime", type=float, default=100)
    ap.add_argument("--technique", default="precopy")
    ap.add_argument("--postcopy-after", type=float, default=120_000)
    ap.add_argument("--deadline", type=float, default=150_000)
    ap.add_argument("--ac-initial", type=int, default=60)
    ap.add_argument("--ac-increment", type=int, default=20)
    ap.add_argument("--sandbox", choices=["on", "off", "default"], default="default")
    ap.add_argument("--cmdline", default="")
    ap.add_argument("--qemu-arg", action="append", default=[])
    ap.add_argument("--monitoring", action="store_true", help="run Prometheus and the exporters too")
    ap.add_argument("--reboot-each", action="store_true", help="a freshly booted guest for every migration")
    ap.add_argument("--alive-s", type=float, default=30.0)
    ap.add_argument("--stop-on-silent", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--hog", type=int, default=0, help="busy-loop processes competing for the CPUs")
    ap.add_argument("--ram-pad", type=int, default=None, help="guest.RAM_PAD_KIB for this run (0: no fix)")
    ap.add_argument(
        "--alternate-pad",
        action="store_true",
        help="even iterations with the lab's RAM pad (the fix), odd ones without (needs --reboot-each)",
    )
    ap.add_argument("--label", default="")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    sandbox = None if args.sandbox == "default" else args.sandbox == "on"
    lab = common.make_lab(
        Path(args.root),
        Path(args.cache),
        sandbox=sandbox,
        cmdline_extra=args.cmdline,
        qemu_args=args.qemu_arg,
        ram_pad_kib=args.ram_pad,
        monitoring=args.monitoring,
    )
    out = Path(args.out) if args.out else None
    lab.up(hosts=2, guests=1)
    tmp = Path(tempfile.mkdtemp(prefix="lpc-exec-"))
    store = SqliteStore(tmp / "advisor.sqlite3")

    def endpoint(host_id: str) -> HostEndpoint:
        uri = lab.uri(host_id)
        return HostEndpoint(lambda: LibvirtHypervisor(uri), MigrationTarget(uri, "127.0.0.1"))

    technique = Technique(args.technique)
    silent = done = 0
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hog)]
    try:
        for i in range(args.n):
            rate = args.dirty[i % len(args.dirty)]
            pad = None
            if args.alternate_pad:
                pad = 8 if i % 2 == 0 else 0
                common.guest.RAM_PAD_KIB = pad
            if args.reboot_each or not lab.guest_alive(common.GUEST, within_s=5):
                common.reboot(lab)
            lab.set_dirty_rate(common.GUEST, rate)
            src = lab.host_of(common.GUEST)
            assert src is not None
            dst = common.other(src)
            seen = Seen()
            executor = Executor(
                store, endpoint, seen, tuning=MonitorTuning(judge_from_round=2, stall_rounds=2), poll_interval_s=0.25
            )
            executor.start()
            postcopy_after = None if args.postcopy_after < 0 else args.postcopy_after
            params = MigrationParameters(
                technique,
                args.bw,
                args.downtime,
                postcopy_after_ms=postcopy_after,
                deadline_ms=args.deadline,
                autoconverge_initial_pct=args.ac_initial,
                autoconverge_increment_pct=args.ac_increment,
            )
            started = time.monotonic()
            op = executor.submit(
                f"r{i}-{time.time_ns()}", Move(common.GUEST, src, dst, params, COST, ()), actor="probe"
            ).operation_id
            record = executor.get(op)
            for latest, _ in executor.watch(op, timeout_s=args.deadline / 1000 + 60):
                record = latest
            wall = time.monotonic() - started
            executor.stop()
            where = lab.host_of(common.GUEST)
            alive = lab.guest_alive(common.GUEST, within_s=args.alive_s)
            timeline = [f"{e.at_ms / 1000:.1f}s {e.phase} {e.message}" for e in record.timeline]
            rec = {
                "label": args.label,
                "hog": args.hog,
                "i": i,
                "dirty": rate,
                "bw": args.bw,
                "technique": args.technique,
                "sandbox": args.sandbox,
                "ram_pad": pad if args.alternate_pad else args.ram_pad,
                "cmdline": args.cmdline,
                "src": src,
                "dst": dst,
                "where": where,
                "phase": str(record.phase),
                "wall_s": round(wall, 1),
                "alive": alive,
                "outcome": None if record.outcome is None else vars(record.outcome),
                "max_iteration": max((p.iteration for p in seen.seen), default=0),
                "max_throttle": max((p.autoconverge_throttle_pct for p in seen.seen), default=0),
                "timeline": timeline,
            }
            done += 1
            if not alive and where is not None:
                silent += 1
                rec["diag"] = common.diagnose(lab, where)
                common.log(out, rec)
                if args.stop_on_silent:
                    args.keep = True
                    break
                common.reboot(lab)
            else:
                common.log(out, rec)
            lab.set_dirty_rate(common.GUEST, 0) if alive else None
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        store.close()
        print(
            f"SUMMARY label={args.label} silent={silent}/{done} (see the jsonl for the split by ram_pad) dirty={args.dirty} bw={args.bw} "
            f"technique={args.technique} sandbox={args.sandbox} cmdline={args.cmdline!r}"
        )
        if not args.keep:
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
