"""Known data inside a lab guest, sealed by its SHA-256 before a move and checked inside the guest after it.

`seal(lab, guest, mib)` has the guest fill a file with random data and hash it; `seal(lab, guest)` has it hash
the same file again. A move that changed a byte of it gives another digest. Memory: the file is in the guest's
tmpfs (/dev/shm), i.e. in guest RAM, which every technique must carry across. Disk: a lab guest with a disk of
its own (`advisor lab up --disk-mib`, advisor.lab.disks) mounts it at `DISK`, and the same seal there checks it (the
guest syncs after writing, and drops its page cache before hashing again, so the disk is read): tests/lab/
test_disks.py.
"""

from __future__ import annotations

import re
import time

from advisor.lab.lab import Lab, LabError

MEMORY = "/dev/shm"
DISK = "/mnt/disk"
_DIGEST = re.compile(r"GUEST-SEAL seq=(\d+) sha256=([0-9a-f]*)")


def seal_command(seq: int, mib: int, directory: str) -> bytes:
    """`seal SEQ MIB DIR` (guest.INIT); MIB 0 hashes the file again without writing it."""
    if mib < 0 or not re.fullmatch(r"/[A-Za-z0-9_./-]*", directory):
        raise ValueError(f"a seal needs MiB >= 0 and a plain absolute directory (got {mib}, {directory!r})")
    return f"seal {seq} {mib} {directory}\n".encode()


def seal(lab: Lab, guest_name: str, mib: int = 0, directory: str = MEMORY) -> str:
    """The SHA-256 the guest computes of its sealed file, after filling it with `mib` MiB of random data first
    (0: the file as it is)."""
    seq = time.time_ns() // 1_000_000 % 1_000_000_000
    lab.send(guest_name, seal_command(seq, mib, directory), f"GUEST-SEAL seq={seq} ")
    for match in _DIGEST.finditer(lab.guest_console(guest_name)):
        if int(match.group(1)) == seq and len(match.group(2)) == 64:
            return match.group(2)
    raise LabError(f"guest {guest_name} could not hash {directory}/advisor-seal")
