"""Loop of post-copy migrations of vm1 between hv1 and hv2; counts guests silent afterwards, with diagnostics.

    cd /work/main && .venv/bin/python scripts/lab_probe/postcopy_loop.py --n 20 --dirty 8 --bw 16 \
        --label base --out /tmp/lpc-results.jsonl

Each iteration: set the dirty rate, start a P2P post-copy migration capped at --bw MiB/s, switch to post-copy
after --switch-after s, wait for the end, then require the heartbeat to advance on the target within --alive-s.
A silent guest gets a full diagnosis (monitor, /proc threads, logs) and is rebooted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("PROBE_TREE", str(Path(__file__).resolve().parents[2])))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from advisor.lab import Lab


def main() -> int:
    ap = argparse.ArgumentParser()
    common.loop_args(ap, dirty=8.0, alive_s=15.0)
    ap.add_argument("--bw", type=int, default=16)
    ap.add_argument("--postcopy-bw", type=int, default=None)
    ap.add_argument("--switch-after", type=float, default=3.0)
    ap.add_argument("--preempt", action="store_true")
    ap.add_argument("--no-switch", action="store_true", help="plain pre-copy (control)")
    ap.add_argument("--downtime", type=int, default=None, help="migrateSetMaxDowntime (ms) once the job runs")
    args = ap.parse_args()

    def migrate(lab: Lab, i: int, src: str, dst: str) -> dict[str, Any]:
        before = common.last_heartbeat(lab.serial_log(common.GUEST))
        res = common.postcopy_migrate(
            lab,
            dst,
            bandwidth=args.bw,
            switch_after_s=args.switch_after,
            postcopy_bw=args.postcopy_bw,
            preempt=args.preempt,
            switch=not args.no_switch,
            downtime_ms=args.downtime,
        )
        where = lab.host_of(common.GUEST)
        t_end = time.monotonic()
        alive = lab.guest_alive(common.GUEST, within_s=args.alive_s)
        return {
            "preempt": args.preempt,
            **res,
            "where": where,
            "alive": alive,
            "hb_before": before,
            "hb_after": common.last_heartbeat(lab.serial_log(common.GUEST)),
            "alive_check_s": round(time.monotonic() - t_end, 1),
        }

    return common.run_loop(args, migrate, settle_s=1.0, summary=f"preempt={args.preempt}")


if __name__ == "__main__":
    sys.exit(main())
