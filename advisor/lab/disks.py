"""Local disks for the lab's guests (`advisor lab up --disk-mib N`): each guest gets a raw file on its home host
(sparse: created by libvirt's storage driver, which needs no qemu-img for raw),
which it formats on first boot and mounts at /mnt/disk (guest.INIT), where the integrity seals look
(advisor.lab.integrity.DISK) and where `set_disk_writer` has it rewrite part of a file.

Each daemon sees its own /var/lib/libvirt (a bind mount in its namespace, advisor.lab.daemon), so the same path
names another file on each host, as on real hosts: a block migration copies the disk from one to the other. Every
host gets a `default` directory pool over /var/lib/libvirt/images, from which the advisor reads its free local
space (advisor.adapters.libvirt_disks) and in which libvirt could create a migrated disk's volume itself.
"""

from __future__ import annotations

import time
from typing import Protocol

from advisor.lab import guest, virt
from advisor.lab.daemon import HostSpec

IMAGES = "/var/lib/libvirt/images"
POOL = "default"


def image_path(guest_name: str) -> str:
    """The guest's disk as its host's daemon (and QEMU) see it."""
    return f"{IMAGES}/{guest_name}.img"


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
    """The disk of a guest about to start on `spec` ('' for none): its pool, and its raw file of `disk_mib` MiB
    created where missing; returns the path the guest's definition names."""
    if disk_mib <= 0:
        return ""
    ensure_pool(spec)
    with virt.connection(spec.uri) as conn:
        pool = conn.storagePoolLookupByName(POOL)
        pool.refresh(0)
        name = image_path(guest_name).rsplit("/", 1)[1]
        if name not in pool.listVolumes():
            pool.createXML(f"<volume><name>{name}</name><capacity unit='MiB'>{disk_mib}</capacity>"
                           "<allocation>0</allocation><target><format type='raw'/></target></volume>", 0)
    return image_path(guest_name)


class Commands(Protocol):
    """What sends a command to a guest (the Lab)."""

    def send(self, guest_name: str, command: bytes, ack: str) -> None: ...


def set_disk_writer(lab: Commands, guest_name: str, mib: int, kib_s: int) -> None:
    """Have the guest rewrite the first `mib` MiB of a file on its disk at `kib_s` KiB/s, synced (0 stops it)."""
    seq = time.time_ns() // 1_000_000 % 1_000_000_000
    lab.send(guest_name, guest.disk_command(seq, mib, kib_s), f"GUEST-DISK seq={seq} ")
