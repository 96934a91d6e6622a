"""Local disks for the lab's guests (`advisor lab up --disk-mib N`): each guest gets a qcow2 file on its home host,
which it formats on first boot and mounts at /mnt/disk (guest.INIT), where the integrity seals look
(advisor.lab.integrity.DISK) and where `set_disk_writer` has it rewrite part of a file.

Each daemon sees its own /var/lib/libvirt (a bind mount in its namespace, advisor.lab.daemon), so the same path
names another file on each host, as on real hosts: a block migration copies the disk from one to the other. Every
host gets a `default` directory pool over /var/lib/libvirt/images, from which the advisor reads its free local
space (advisor.adapters.libvirt_disks) and in which libvirt could create a migrated disk's volume itself.
"""

from __future__ import annotations

import subprocess
import time
from typing import Protocol

from advisor.lab import guest, virt
from advisor.lab.daemon import HostSpec

IMAGES = "/var/lib/libvirt/images"
POOL = "default"


def image_path(guest_name: str) -> str:
    """The guest's disk as its host's daemon (and QEMU) see it."""
    return f"{IMAGES}/{guest_name}.qcow2"


def ensure_pool(spec: HostSpec) -> None:
    """The host's `default` directory pool over its images directory, started (the daemon's state is fresh each
    time it is recreated, so the pool is created for the daemon's life)."""
    (spec.directory / "lib" / "images").mkdir(parents=True, exist_ok=True)
    with virt.connection(spec.uri) as conn:
        try:
            pool = conn.storagePoolLookupByName(POOL)
        except virt.Error:
            conn.storagePoolCreateXML(f"<pool type='dir'><name>{POOL}</name><target><path>{IMAGES}</path>"
                                      "</target></pool>", 0)
            return
        if not pool.isActive():
            pool.create(0)


def prepare(spec: HostSpec, guest_name: str, disk_mib: int) -> str:
    """The disk of a guest about to start on `spec` ('' for none): its pool, and its qcow2 file of `disk_mib` MiB
    created where missing; returns the path the guest's definition names."""
    if disk_mib <= 0:
        return ""
    ensure_pool(spec)
    on_host = spec.directory / "lib" / "images" / f"{guest_name}.qcow2"
    if not on_host.exists():
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(on_host), f"{disk_mib}M"], check=True,
                       capture_output=True, timeout=60)
        with virt.connection(spec.uri) as conn:
            conn.storagePoolLookupByName(POOL).refresh(0)
    return image_path(guest_name)


class Commands(Protocol):
    """What sends a command to a guest (the Lab)."""

    def send(self, guest_name: str, command: bytes, ack: str) -> None: ...


def set_disk_writer(lab: Commands, guest_name: str, mib: int, kib_s: int) -> None:
    """Have the guest rewrite the first `mib` MiB of a file on its disk at `kib_s` KiB/s, synced (0 stops it)."""
    seq = time.time_ns() // 1_000_000 % 1_000_000_000
    lab.send(guest_name, guest.disk_command(seq, mib, kib_s), f"GUEST-DISK seq={seq} ")
