"""Does a TCG live migration carry every guest write? Compare guest RAM on both sides after a pre-copy.

Plain QEMU (no libvirt), the lab's guest image and devices. The source runs the lab guest dirtying --dirty MiB/s,
migrates capped at --bw MiB/s; after --rounds dirty-bitmap syncs the cap and the downtime limit are lifted so
that the migration completes. The destination was started with -S, so after completion both sides are stopped
and must hold identical RAM: `pmemsave` both and compare 4 KiB pages. Any page that differs is a guest write that
the migration never sent (the source RAM is frozen at the stop; the destination got what was sent).

    .venv/bin/python scripts/lab_probe/memcompare.py --runs 5 --mem 128M        # ram block a multiple of 256 KiB
    .venv/bin/python scripts/lab_probe/memcompare.py --runs 5 --mem 131080K     # 128 MiB + 8 KiB: not a multiple

QEMU's cpu_physical_memory_sync_dirty_bitmap() has a word-aligned fast path (a RAM block whose length is a multiple
of 64 pages) that clears the migration dirty bits without resetting TCG's TLB_NOTDIRTY, and a page-by-page slow
path that does reset it; the two sizes select one or the other.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("PROBE_TREE", str(Path(__file__).resolve().parents[2])))

from advisor.lab import guest

PAGE = 4096


class QMP:
    def __init__(self, path: str) -> None:
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())
        self.cmd("qmp_capabilities")

    def cmd(self, name: str, **args: object) -> object:
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "event" in r:
                continue
            if "error" in r:
                raise RuntimeError(f"{name}: {r['error']}")
            return r["return"]

    def hmp(self, line: str) -> str:
        return str(self.cmd("human-monitor-command", **{"command-line": line}))


def start(
    work: Path,
    name: str,
    image: guest.GuestImage,
    mem: str,
    extra: list[str],
    qemu: str,
    cmdline: str,
    lab_pad: bool = False,
) -> tuple[subprocess.Popen, QMP]:
    qmp = work / f"{name}.qmp"
    qmp.unlink(missing_ok=True)
    cmd = [
        qemu,
        "-name",
        name,
        "-machine",
        "pc-i440fx-7.2,usb=off",
        "-accel",
        "tcg",
        "-cpu",
        "qemu64",
        "-m",
        mem,
        "-smp",
        "1",
        "-display",
        "none",
        "-no-user-config",
        "-nodefaults",
        "-no-shutdown",
        "-kernel",
        str(image.kernel),
        "-initrd",
        str(image.initrd),
        "-append",
        f"console=ttyS0 quiet panic=-1 {cmdline}".strip(),
        "-chardev",
        f"file,id=s0,path={work / (name + '.serial')}",
        "-device",
        "isa-serial,chardev=s0",
        "-chardev",
        "pty,id=s1",
        "-device",
        "isa-serial,chardev=s1",
        "-device",
        "virtio-balloon-pci",
        "-rtc",
        "base=utc",
        "-qmp",
        f"unix:{qmp},server=on,wait=off",
        "-monitor",
        "none",
    ] + extra
    if lab_pad:  # what the lab's domain XML appends: a larger RAM backend replacing the first one
        cmd[cmd.index("-m") + 1 : cmd.index("-m") + 1] = []
        cmd += [
            "-object",
            f"memory-backend-ram,id=pc.ram,size={int(mem[:-1]) << 20}",
            "-machine",
            "memory-backend=pc.ram",
        ] + guest.ram_override_args(int(mem[:-1]), 8)
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(work / f"{name}.stderr", "w"))
    for _ in range(200):
        if qmp.exists():
            break
        time.sleep(0.05)
    return p, QMP(str(qmp))


def pty_of(q: QMP) -> str:
    for c in q.cmd("query-chardev"):  # type: ignore[union-attr]
        if c["label"] == "s1":
            return c["filename"].removeprefix("pty:")
    raise RuntimeError("no pty")


def send_plan(q: QMP, serial: Path, mib_s: float) -> None:
    seq = time.time_ns() // 1_000_000 % 1_000_000_000
    line = guest.plan_command(seq, [(0, round(mib_s * 1024))], False)
    fd = os.open(pty_of(q), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            os.write(fd, line)
            t = time.monotonic() + 3
            while time.monotonic() < t:
                if f"GUEST-CMD seq={seq}" in serial.read_text(errors="replace"):
                    return
                time.sleep(0.1)
    finally:
        os.close(fd)
    raise RuntimeError("guest did not take the plan")


def compare(a: Path, b: Path) -> list[tuple[int, int]]:
    """(guest physical address, differing bytes) of every 4 KiB page that differs."""
    out = []
    with open(a, "rb") as fa, open(b, "rb") as fb:
        addr = 0
        while True:
            pa, pb = fa.read(PAGE), fb.read(PAGE)
            if not pa:
                break
            if pa != pb:
                out.append((addr, sum(1 for x, y in zip(pa, pb) if x != y)))
            addr += PAGE
    return out


def one_run(args: argparse.Namespace, image: guest.GuestImage, port: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="memcmp-", dir="/tmp"))
    src, qs = start(work, "src", image, args.mem, [], args.qemu, args.cmdline, args.lab_pad)
    dst, qd = start(
        work,
        "dst",
        image,
        args.mem,
        ["-S", "-incoming", f"tcp:127.0.0.1:{port}"],
        args.qemu,
        args.cmdline,
        args.lab_pad,
    )
    try:
        serial = work / "src.serial"
        deadline = time.monotonic() + 120
        while "GUEST-READY" not in serial.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise RuntimeError("guest did not boot")
            time.sleep(0.1)
        send_plan(qs, serial, args.dirty)
        time.sleep(args.settle)
        caps = [{"capability": "events", "state": True}]
        qs.cmd("migrate-set-capabilities", capabilities=caps)
        qs.cmd("migrate-set-parameters", **{"max-bandwidth": args.bw << 20, "downtime-limit": args.downtime})
        t0 = time.monotonic()
        qs.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
        lifted = False
        while True:
            st = qs.cmd("query-migrate")
            status = st.get("status")  # type: ignore[union-attr]
            if status in ("completed", "failed", "cancelled"):
                break
            syncs = st.get("ram", {}).get("dirty-sync-count", 0)  # type: ignore[union-attr]
            if not lifted and syncs >= args.rounds:
                if args.finish == "bandwidth":  # the last live round at full speed: short
                    qs.cmd("migrate-set-parameters", **{"max-bandwidth": 4 << 30, "downtime-limit": 5000})
                else:  # the last live round still capped, then a long stop: like a post-copy switch
                    qs.cmd("migrate-set-parameters", **{"downtime-limit": 60000})
                lifted = True
            if time.monotonic() - t0 > 300:
                qs.cmd("migrate_cancel")
            time.sleep(0.1)
        ram = st.get("ram", {})  # type: ignore[union-attr]
        res = {
            "mem": args.mem,
            "lab_pad": args.lab_pad,
            "dirty": args.dirty,
            "bw": args.bw,
            "rounds": args.rounds,
            "finish": args.finish,
            "cmdline": args.cmdline,
            "status": status,
            "syncs": ram.get("dirty-sync-count"),
            "total_ms": st.get("total-time"),
            "downtime_ms": st.get("downtime"),
            "transferred_mib": round(ram.get("transferred", 0) / 2**20, 1),
        }
        if status == "completed":
            nbytes = int(args.mem[:-1]) * (1 << 20 if args.mem[-1] in "Mm" else 1 << 10) + (8192 if args.lab_pad else 0)
            qs.cmd("pmemsave", val=0, size=nbytes, filename=str(work / "src.ram"))
            qd.cmd("pmemsave", val=0, size=nbytes, filename=str(work / "dst.ram"))
            time.sleep(0.5)
            diff = compare(work / "src.ram", work / "dst.ram")
            res["pages_differing"] = len(diff)
            res["first"] = [f"{a:#x}:{n}" for a, n in diff[:12]]
            if args.keep_silent and diff:
                res["work"] = str(work)
        return res
    finally:
        for p in (src, dst):
            p.terminate()
            p.wait()
        for f in ("src.ram", "dst.ram"):
            (work / f).unlink(missing_ok=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="/tmp/lpc-cache-mc/guest")
    ap.add_argument("--qemu", default="/usr/bin/qemu-system-x86_64")
    ap.add_argument("--mem", default="128M")
    ap.add_argument("--dirty", type=float, default=24)
    ap.add_argument("--bw", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=4, help="dirty syncs before the cap is lifted")
    ap.add_argument("--downtime", type=int, default=100, help="downtime limit (ms) until --rounds syncs")
    ap.add_argument("--finish", choices=["bandwidth", "downtime"], default="downtime")
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--cmdline", default="")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep-silent", action="store_true")
    ap.add_argument("--lab-pad", action="store_true", help="append the lab's RAM arguments (guest.ram_override_args)")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    image, _ = guest.ensure_image(Path(args.cache), region_mib=64)
    bad = 0
    for i in range(args.runs):
        res = {"label": args.label, "i": i, **one_run(args, image, 49600 + i % 50)}
        bad += bool(res.get("pages_differing"))
        print(json.dumps(res), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(res) + "\n")
    print(f"SUMMARY label={args.label} mem={args.mem} runs_with_lost_writes={bad}/{args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
