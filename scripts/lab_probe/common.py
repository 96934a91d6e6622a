"""Shared helpers for the lab probes (experiments only: not part of the package).

A probe lab lives under its own short root (default /tmp/lpc) with its own copy of the caches, so that
changing the guest image or qemu.conf here never touches the test suite's lab (/tmp/advisor-lab-test).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt
import libvirt_qemu

from advisor.lab import Lab, daemon, guest
from advisor.lab import lab as lab_mod

GUEST = "vm1"


def quiet(_ctx: object, _err: object) -> None:
    pass


libvirt.registerErrorHandler(quiet, None)
_loop_started = False


def event_loop() -> None:
    global _loop_started
    if _loop_started:
        return
    libvirt.virEventRegisterDefaultImpl()

    def run() -> None:
        while True:
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=run, daemon=True).start()
    _loop_started = True


def make_lab(
    root: Path,
    cache: Path,
    *,
    sandbox: bool | None = None,
    extra_qemu_conf: str = "",
    cmdline_extra: str = "",
    qemu_args: list[str] | None = None,
    monitoring: bool = False,
    ram_pad_kib: int | None = None,
) -> Lab:
    """A Lab whose qemu.conf / domain XML can be varied for an experiment (by patching module globals)."""
    conf = daemon.QEMU_CONF
    if sandbox is not None:
        conf = re.sub(r"^seccomp_sandbox.*\n", "", conf, flags=re.M) + f"seccomp_sandbox = {1 if sandbox else 0}\n"
    daemon.QEMU_CONF = conf + extra_qemu_conf
    if ram_pad_kib is not None and hasattr(guest, "RAM_PAD_KIB"):
        guest.RAM_PAD_KIB = ram_pad_kib  # 0: the guest RAM exactly as asked (QEMU's TCG fast path: the bug)
    if "ksym)" not in guest.INIT:
        # probe-only guest commands: `ksym ADDR` prints the kernel symbol at or below ADDR (16 hex digits, so a
        # string comparison orders them), `kgrep RE` the matching lines of /proc/kallsyms
        guest.INIT = guest.INIT.replace(
            '        ping) echo "GUEST-PONG $a";;\n',
            '        ping) echo "GUEST-PONG $a";;\n'
            '        ksym) awk -v a="$a" \'$1<=a && ($2=="t"||$2=="T") {b=$0} END{print "GUEST-KSYM " a " " b}\' '
            "/proc/kallsyms;;\n"
            '        kgrep) grep -E "$a" /proc/kallsyms | head -20 | sed "s/^/GUEST-KGREP /";;\n',
        )
        assert "ksym)" in guest.INIT
    original = getattr(guest, "_probe_original_domain_xml", guest.domain_xml)
    guest._probe_original_domain_xml = original  # type: ignore[attr-defined]

    def domain_xml(name: str, image: guest.GuestImage, memory_mib: int) -> str:
        xml = original(name, image, memory_mib)
        if cmdline_extra:
            xml = re.sub(r"(<cmdline>[^<]*)</cmdline>", lambda m: f"{m.group(1)} {cmdline_extra}</cmdline>", xml)
        if qemu_args:
            xml = xml.replace(
                "<domain type='qemu'>", "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
            )
            args = "".join(f"<qemu:arg value='{a}'/>" for a in qemu_args)
            xml = xml.replace("</domain>", f"<qemu:commandline>{args}</qemu:commandline>\n</domain>")
        return xml

    guest.domain_xml = domain_xml
    lab_mod.guest.domain_xml = domain_xml
    lab = Lab(root, cache=cache)
    if not monitoring:
        lab._ensure_monitoring = lambda state: None  # type: ignore[method-assign]
    return lab


def hmp(uri: str, cmd: str) -> str:
    conn = libvirt.open(uri)
    try:
        return str(
            libvirt_qemu.qemuMonitorCommand(
                conn.lookupByName(GUEST), cmd, libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
            )
        )
    finally:
        conn.close()


def qmp(uri: str, cmd: dict[str, Any]) -> Any:
    conn = libvirt.open(uri)
    try:
        return json.loads(libvirt_qemu.qemuMonitorCommand(conn.lookupByName(GUEST), json.dumps(cmd), 0))
    finally:
        conn.close()


def qemu_pid(lab: Lab, host: str) -> int | None:
    f = lab.root / "hosts" / host / "run" / "qemu" / f"{GUEST}.pid"
    try:
        return int(f.read_text().strip())
    except (OSError, ValueError):
        return None


def threads(pid: int) -> list[dict[str, str]]:
    out = []
    for task in sorted(Path(f"/proc/{pid}/task").iterdir(), key=lambda p: int(p.name)):
        row = {"tid": task.name}
        for key in ("comm", "wchan", "stack", "syscall"):
            with contextlib.suppress(OSError):
                row[key] = (task / key).read_text().strip()
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            row["state"] = fields[0]
            row["utime"] = fields[11]
            row["stime"] = fields[12]
        out.append(row)
    return out


def last_heartbeat(log: Path | None) -> float | None:
    if log is None:
        return None
    try:
        beats = re.findall(r"GUEST-HEARTBEAT uptime=([0-9.]+)", log.read_text(errors="replace"))
    except OSError:
        return None
    return float(beats[-1]) if beats else None


def tail(path: Path | None, n: int = 15) -> list[str]:
    if path is None:
        return []
    try:
        return path.read_text(errors="replace").splitlines()[-n:]
    except OSError:
        return []


def postcopy_migrate(
    lab: Lab,
    dst: str,
    *,
    bandwidth: int | None,
    switch_after_s: float,
    postcopy_bw: int | None = None,
    preempt: bool = False,
    extra_flags: int = 0,
    extra_params: dict[str, Any] | None = None,
    switch: bool = True,
    downtime_ms: int | None = None,
    timeout_s: float = 180,
) -> dict[str, Any]:
    """One P2P post-copy migration of vm1 to dst, switched after `switch_after_s` of pre-copy."""
    src = lab.host_of(GUEST)
    assert src is not None and src != dst
    flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | extra_flags
    if switch:
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    if preempt:
        flags |= libvirt.VIR_MIGRATE_PARALLEL  # libvirt >= 8.5: POSTCOPY + PARALLEL turns on postcopy-preempt
    params: dict[str, Any] = dict(lab.migration_params())
    if bandwidth:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = bandwidth
    if postcopy_bw:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY] = postcopy_bw
    params.update(extra_params or {})
    result: dict[str, Any] = {"src": src, "dst": dst}
    err: list[str] = []

    def run() -> None:
        conn = libvirt.open(lab.uri(src))
        try:
            conn.lookupByName(GUEST).migrateToURI3(lab.uri(dst), params, flags)
        except libvirt.libvirtError as e:
            err.append(str(e))
        finally:
            conn.close()

    event_loop()
    completed: dict[str, Any] = {}
    ctl = libvirt.open(lab.uri(src))
    dom = ctl.lookupByName(GUEST)
    cb = ctl.domainEventRegisterAny(
        dom, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, lambda _c, _d, p, _o: completed.update(p), None
    )
    started = time.monotonic()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    last: dict[str, Any] = {}
    switched_at = None
    try:
        while t.is_alive() and time.monotonic() - started < timeout_s:
            with contextlib.suppress(libvirt.libvirtError):
                js = dom.jobStats()
                if js.get("type", 0):
                    last = js
            if downtime_ms is not None and last and not result.get("downtime_set"):
                with contextlib.suppress(libvirt.libvirtError):
                    dom.migrateSetMaxDowntime(downtime_ms, 0)
                    result["downtime_set"] = downtime_ms
            if switch and switched_at is None and time.monotonic() - started >= switch_after_s and last:
                try:
                    dom.migrateStartPostCopy(0)
                    switched_at = time.monotonic() - started
                except libvirt.libvirtError as e:
                    result["switch_error"] = str(e)
                    switched_at = -1
            time.sleep(0.2)
    finally:
        t.join(timeout=max(1.0, timeout_s - (time.monotonic() - started)))
        time.sleep(0.3)
        with contextlib.suppress(libvirt.libvirtError):
            ctl.domainEventDeregisterAny(cb)
            ctl.close()
    result.update(
        wall_s=round(time.monotonic() - started, 2),
        switched_at_s=switched_at,
        error=err[0] if err else None,
        hung=t.is_alive(),
        last_stats={
            k: last.get(k)
            for k in (
                "memory_iteration",
                "memory_remaining",
                "memory_processed",
                "memory_postcopy_requests",
                "memory_dirty_rate",
                "auto_converge_throttle",
                "time_elapsed",
            )
        },
        completed={
            k: completed.get(k)
            for k in (
                "time_elapsed",
                "downtime",
                "memory_iteration",
                "memory_postcopy_requests",
                "memory_processed",
                "memory_bps",
                "auto_converge_throttle",
            )
        },
    )
    return result


def diagnose(lab: Lab, host: str) -> dict[str, Any]:
    """What QEMU and the kernel show for a guest that does not print: monitor, threads, logs."""
    uri = lab.uri(host)
    d: dict[str, Any] = {"host": host}
    with contextlib.suppress(libvirt.libvirtError):
        conn = libvirt.open(uri)
        d["state"] = conn.lookupByName(GUEST).state()
        conn.close()
    for cmd in (
        "info status",
        "info cpus",
        "info registers",
        "info migrate",
        "info lapic",
        "info pic",
        "x /20i $pc",
        "x /48gx $rsp",
    ):
        try:
            d[cmd] = hmp(uri, cmd)
        except libvirt.libvirtError as e:
            d[cmd] = f"error: {e}"
    with contextlib.suppress(Exception):
        idt = re.search(r"IDT=\s+([0-9a-f]+)", d["info registers"]).group(1)
        raw = hmp(uri, f"x /2gx 0x{idt}")
        words = [int(w, 16) for w in re.findall(r":\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)", raw)[0]]
        lo, hi = words
        handler = (lo & 0xFFFF) | ((lo >> 48) & 0xFFFF) << 16 | (hi & 0xFFFFFFFF) << 32
        d["idt0_handler"] = f"{handler:016x}"  # asm_exc_divide_error: gives this boot's KASLR offset
    time.sleep(1)
    with contextlib.suppress(libvirt.libvirtError):
        d["info registers (1 s later)"] = hmp(uri, "info registers")
    with contextlib.suppress(libvirt.libvirtError):
        d["query-migrate"] = qmp(uri, {"execute": "query-migrate"})
    pid = qemu_pid(lab, host)
    d["pid"] = pid
    if pid:
        with contextlib.suppress(OSError):
            d["threads"] = threads(pid)
            time.sleep(1)
            d["threads (1 s later)"] = threads(pid)
    log_dir = lab.root / "hosts" / host / "log" / "qemu"
    d["qemu_log_tail"] = tail(log_dir / f"{GUEST}.log", 30)
    d["serial_tail"] = tail(log_dir / f"{GUEST}-serial.log", 8)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        d["dmesg_tail"] = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=5).stdout.splitlines()[-10:]
    return d


def reboot(lab: Lab) -> None:
    host = lab.host_of(GUEST)
    if host is not None:
        with contextlib.suppress(libvirt.libvirtError):
            conn = libvirt.open(lab.uri(host))
            conn.lookupByName(GUEST).destroy()
            conn.close()
    lab.up(hosts=2, guests=1)


def other(host: str) -> str:
    return "hv2" if host == "hv1" else "hv1"


def log(out: Path | None, record: dict[str, Any]) -> None:
    line = json.dumps(record, default=str)
    if out is not None:
        with open(out, "a") as f:
            f.write(line + "\n")
    os.write(1, (json.dumps({k: v for k, v in record.items() if k != "diag"}, default=str)[:600] + "\n").encode())


def loop_args(ap: argparse.ArgumentParser, *, dirty: float, alive_s: float) -> None:
    """The options of a migration loop (`run_loop`); a probe adds those of its own migration."""
    ap.add_argument("--root", default="/tmp/lpc")
    ap.add_argument("--cache", default="/tmp/lpc-cache")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--dirty", type=float, nargs="+", default=[dirty])
    ap.add_argument("--sandbox", choices=["on", "off", "default"], default="default")
    ap.add_argument("--cmdline", default="", help="extra guest kernel arguments")
    ap.add_argument("--qemu-arg", action="append", default=[], help="extra QEMU argument (qemu:commandline)")
    ap.add_argument("--monitoring", action="store_true", help="run Prometheus and the exporters too")
    ap.add_argument("--alive-s", type=float, default=alive_s)
    ap.add_argument("--keep", action="store_true", help="leave the lab up at the end")
    ap.add_argument("--stop-on-silent", action="store_true", help="leave a silent guest as it is and stop")
    ap.add_argument("--reboot-each", action="store_true", help="a freshly booted guest for every migration")
    ap.add_argument("--hog", type=int, default=0, help="busy-loop processes competing for the CPUs")
    ap.add_argument("--ram-pad", type=int, default=None, help="guest.RAM_PAD_KIB for this run (0: no fix)")
    ap.add_argument("--alternate-pad", action="store_true",
                    help="even iterations with the lab's RAM pad (the fix), odd ones without (needs --reboot-each)")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", default=None)


# One migration of the guest: (lab, iteration, source, target) -> what to record; "where" (the host the guest
# runs on afterwards, or None) and "alive" (its heartbeat advanced there) are required.
Migrate = Callable[[Lab, int, str, str], dict[str, Any]]


def run_loop(args: argparse.Namespace, migrate: Migrate, *, settle_s: float = 0.0, summary: str = "") -> int:
    """Bring the lab up and migrate the guest `args.n` times between the two hosts (options of `loop_args`),
    counting the guests silent afterwards; a silent guest is diagnosed and rebooted (or, --stop-on-silent, left
    as it is). Each iteration is one line of --out; the last line printed is a SUMMARY."""
    sandbox = None if args.sandbox == "default" else args.sandbox == "on"
    lab = make_lab(Path(args.root), Path(args.cache), sandbox=sandbox, cmdline_extra=args.cmdline,
                   qemu_args=args.qemu_arg, ram_pad_kib=args.ram_pad, monitoring=args.monitoring)
    out = Path(args.out) if args.out else None
    lab.up(hosts=2, guests=1)
    silent = done = 0
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hog)]
    try:
        for i in range(args.n):
            rate = args.dirty[i % len(args.dirty)]
            pad = None
            if args.alternate_pad:
                pad = 8 if i % 2 == 0 else 0
                guest.RAM_PAD_KIB = pad
            if args.reboot_each or not lab.guest_alive(GUEST, within_s=5):
                reboot(lab)
            lab.set_dirty_rate(GUEST, rate)
            time.sleep(settle_s)
            src = lab.host_of(GUEST)
            assert src is not None
            dst = other(src)
            rec = {"label": args.label, "hog": args.hog, "reboot_each": args.reboot_each, "i": i, "dirty": rate,
                   "bw": args.bw, "sandbox": args.sandbox, "ram_pad": pad if args.alternate_pad else args.ram_pad,
                   "cmdline": args.cmdline, "src": src, "dst": dst, **migrate(lab, i, src, dst)}
            done += 1
            if not rec["alive"] and rec["where"] is not None:
                silent += 1
                rec["diag"] = diagnose(lab, rec["where"])
                log(out, rec)
                if args.stop_on_silent:
                    print(f"stopped on a silent guest on {rec['where']}; lab left up at {args.root}")
                    args.keep = True
                    break
                reboot(lab)
            else:
                log(out, rec)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        print(f"SUMMARY label={args.label} silent={silent}/{done} (see the jsonl for the split by ram_pad) "
              f"dirty={args.dirty} bw={args.bw} sandbox={args.sandbox} cmdline={args.cmdline!r} {summary}")
        if not args.keep:
            lab.down()
    return 0
