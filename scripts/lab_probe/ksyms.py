"""Name the guest kernel functions at addresses seen in a silent guest, whatever that boot's KASLR offset was.

Boots the probe guest image in plain QEMU, asks its /proc/kallsyms (probe-only `kgrep`/`ksym` commands), and maps
each (idt0_handler, rip) pair, where idt0_handler is IDT entry 0 (asm_exc_divide_error) read from the silent guest.

    .venv/bin/python scripts/lab_probe/ksyms.py ffffffffbd600990:ffffffffbd418710 ...
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("PROBE_TREE", str(Path(__file__).resolve().parents[2])))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import memcompare

from advisor.lab import guest


def ask(q: memcompare.QMP, serial: Path, line: str, tag: str) -> list[str]:
    before = len(serial.read_text(errors="replace"))
    fd = os.open(memcompare.pty_of(q), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        os.write(fd, (line + "\n").encode())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = serial.read_text(errors="replace")[before:]
            if tag in new and new.rstrip().endswith(tuple("0123456789abcdefghijklmnopqrstuvwxyz]_")):
                time.sleep(1)
                return [x for x in serial.read_text(errors="replace")[before:].splitlines() if tag in x]
            time.sleep(0.2)
    finally:
        os.close(fd)
    return []


def main() -> int:
    common.make_lab(Path("/tmp/lpc"), Path("/tmp/lpc-cache"))  # only for its INIT patch
    image, _ = guest.ensure_image(Path("/tmp/lpc-cache/guest"), region_mib=64)
    work = Path(tempfile.mkdtemp(prefix="ksyms-", dir="/tmp"))
    p, q = memcompare.start(work, "k", image, "128M", [], "/usr/bin/qemu-system-x86_64", "")
    try:
        serial = work / "k.serial"
        while "GUEST-READY" not in serial.read_text(errors="replace"):
            time.sleep(0.2)
        base = ask(q, serial, "kgrep [tT].asm_exc_divide_error$", "GUEST-KGREP")
        here = int(base[0].split()[1], 16)  # "GUEST-KGREP <addr> T asm_exc_divide_error"
        print("this boot: asm_exc_divide_error", base)
        for pair in sys.argv[1:]:
            idt0, rip = (int(x, 16) for x in pair.split(":"))
            local = here + (rip - idt0)
            sym = ask(q, serial, f"ksym {local:016x}", "GUEST-KSYM")
            name = sym[0].split()[-1] if sym else "?"
            start = int(sym[0].split()[2], 16) if sym else local
            print(f"rip {rip:016x} (idt0 {idt0:016x}) -> {name}+{local - start:#x}   {sym}")
    finally:
        p.terminate()
        p.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
