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
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("PROBE_TREE", str(Path(__file__).resolve().parents[2])))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/tmp/lpc")
    ap.add_argument("--cache", default="/tmp/lpc-cache")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--dirty", type=float, nargs="+", default=[8.0])
    ap.add_argument("--bw", type=int, default=16)
    ap.add_argument("--postcopy-bw", type=int, default=None)
    ap.add_argument("--switch-after", type=float, default=3.0)
    ap.add_argument("--sandbox", choices=["on", "off", "default"], default="default")
    ap.add_argument("--cmdline", default="", help="extra guest kernel arguments")
    ap.add_argument("--qemu-arg", action="append", default=[], help="extra QEMU argument (qemu:commandline)")
    ap.add_argument("--preempt", action="store_true")
    ap.add_argument("--no-switch", action="store_true", help="plain pre-copy (control)")
    ap.add_argument("--alive-s", type=float, default=15.0)
    ap.add_argument("--keep", action="store_true", help="leave the lab up at the end")
    ap.add_argument("--stop-on-silent", action="store_true", help="leave a silent guest as it is and stop")
    ap.add_argument("--reboot-each", action="store_true", help="a freshly booted guest for every migration")
    ap.add_argument("--hog", type=int, default=0, help="busy-loop processes competing for the CPUs")
    ap.add_argument("--ram-pad", type=int, default=None, help="guest.RAM_PAD_KIB for this run (0: no fix)")
    ap.add_argument("--downtime", type=int, default=None, help="migrateSetMaxDowntime (ms) once the job runs")
    ap.add_argument("--alternate-pad", action="store_true",
                    help="even iterations with the lab's RAM pad (the fix), odd ones without (needs --reboot-each)")
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
    )
    out = Path(args.out) if args.out else None
    lab.up(hosts=2, guests=1)
    silent = 0
    done = 0
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
            time.sleep(1.0)
            src = lab.host_of(common.GUEST)
            assert src is not None
            dst = common.other(src)
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
            rec = {
                "label": args.label,
                "hog": args.hog,
                "reboot_each": args.reboot_each,
                "i": i,
                "dirty": rate,
                "bw": args.bw,
                "sandbox": args.sandbox,
                "ram_pad": pad if args.alternate_pad else args.ram_pad,
                "cmdline": args.cmdline,
                "preempt": args.preempt,
                **res,
                "where": where,
                "alive": alive,
                "hb_before": before,
                "hb_after": common.last_heartbeat(lab.serial_log(common.GUEST)),
                "alive_check_s": round(time.monotonic() - t_end, 1),
            }
            done += 1
            if not alive and where is not None:
                silent += 1
                rec["diag"] = common.diagnose(lab, where)
                common.log(out, rec)
                if args.stop_on_silent:
                    print(f"stopped on a silent guest on {where}; lab left up at {args.root}")
                    args.keep = True
                    break
                common.reboot(lab)
            else:
                common.log(out, rec)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        print(
            f"SUMMARY label={args.label} silent={silent}/{done} dirty={args.dirty} bw={args.bw} "
            f"sandbox={args.sandbox} cmdline={args.cmdline!r} preempt={args.preempt}"
        )
        if not args.keep:
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
