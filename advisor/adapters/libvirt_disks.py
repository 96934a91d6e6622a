"""A guest's disks and a host's local disk space as libvirt reports them, and the target's volumes created before a
block migration.

Which disks count: those the guest writes (`device` disk or lun, not read-only, with a source). CD-ROMs, floppies
and read-only disks are not copied by a block migration (libvirt refuses to mirror them) and are not reported.

Shared or local, the rule: a disk is shared when the source and target reach the same bytes without a copy, i.e.
- its source is on the network (`<disk type='network'>`: RBD, iSCSI, NBD, Gluster...), or it is marked
  `<shareable/>` (libvirt leaves those out of a block migration too), or
- it lies in a storage pool of a shared type (`SHARED_POOL_TYPES`: NFS and other network file systems, RBD,
  iSCSI, multipath, Gluster...): a `type='volume'` disk by its pool's name, a file or block device by the pool whose
  volume it is.
Anything else (a file or device in a `dir`, `fs`, `logical`, `disk` or `zfs` pool, or in no pool) is local.

A host's free local space is what its pool named `default` has available when that pool is of a local type
(libvirt's images directory), else the most any active local pool has; None when it has no local pool or no
storage driver (a lone virtqemud): then no target is judged on it.

Before a block migration the target needs a volume for each local disk: libvirt creates one itself only inside a
pool of the target that holds the disk's directory, so `prepare_target` creates each missing one first, of the same
capacity and format, in that pool or, without one, in a transient directory pool it defines for the moment. A cold
move copies the disks itself while the guest is off (`copy_disks`): each volume downloaded from the source and
uploaded into the target's, through libvirt's storage streams, sparse (holes stay holes: what is sent is the
disk's space in use).
"""

from __future__ import annotations

import contextlib
import os
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import libvirt

from advisor.domain.model import MIB, Disk
from advisor.execution.hypervisor import HypervisorError

SHARED_POOL_TYPES = frozenset({"netfs", "rbd", "iscsi", "iscsi-direct", "gluster", "sheepdog", "vstorage", "mpath"})
LOCAL_POOL_TYPES = frozenset({"dir", "fs", "logical", "disk", "zfs"})
# Formats a volume is created in; anything else is created raw (what libvirt's own pre-creation does too).
VOLUME_FORMATS = frozenset({"raw", "qcow2"})
STREAM_CHUNK_BYTES = 1 << 20
# What virStreamRecvFlags answers, with VIR_STREAM_RECV_STOP_AT_HOLE, where the stream reached a hole.
AT_HOLE = -3


@dataclass(frozen=True)
class DiskSource:
    """One writable disk of a domain definition, as its XML says."""

    target: str
    kind: str  # libvirt's disk type: file, block, volume, network
    path: str  # the file or device ("" for a volume or a network disk)
    pool: str  # a volume's pool and name ("" otherwise)
    volume: str
    format: str  # the driver's type: raw, qcow2...
    shareable: bool


def disk_sources(domain_xml: str) -> list[DiskSource]:
    """The disks the guest writes, in the definition's order."""
    found = []
    for disk in ET.fromstring(domain_xml).iterfind("./devices/disk"):
        source, target = disk.find("source"), disk.find("target")
        if disk.get("device", "disk") not in ("disk", "lun") or disk.find("readonly") is not None:
            continue
        if source is None or target is None or not target.get("dev"):
            continue
        kind = disk.get("type", "file")
        path = source.get("file") or source.get("dev") or ""
        if kind in ("file", "block") and not path:
            continue  # no medium
        driver = disk.find("driver")
        found.append(DiskSource(target.get("dev", ""), kind, path, source.get("pool", ""), source.get("volume", ""),
                                driver.get("type", "raw") if driver is not None else "raw",
                                disk.find("shareable") is not None))
    return found


def is_shared(source: DiskSource, pool_type: str | None) -> bool:
    """The rule of the module docstring, given the type of the pool the disk lies in (None: in none)."""
    return source.kind == "network" or source.shareable or pool_type in SHARED_POOL_TYPES


def _pool_type(pool: Any) -> str:
    return ET.fromstring(pool.XMLDesc(0)).get("type", "")


def pool_type_of(conn: Any, source: DiskSource) -> str | None:
    """The type of the pool holding the disk, or None (in no pool, or no storage driver to ask)."""
    if source.kind not in ("file", "block", "volume"):
        return None
    try:
        if source.kind == "volume":
            return _pool_type(conn.storagePoolLookupByName(source.pool))
        return _pool_type(conn.storageVolLookupByPath(source.path).storagePoolLookupByVolume())
    except libvirt.libvirtError:
        return None


def guest_disks(conn: Any, dom: Any, domain_xml: str) -> tuple[Disk, ...]:
    """The domain's writable disks with their sizes (libvirt's block info: capacity and allocation) and whether each
    is shared; the write rate is not measured here (one reading of a counter gives no rate: `written_mib` is the
    counter, advisor.telemetry.hypervisors.GuestStatsReader the rate)."""
    disks = []
    for source in disk_sources(domain_xml):
        try:
            capacity, allocation, _ = dom.blockInfo(source.target)
        except libvirt.libvirtError:
            continue  # a disk QEMU does not open (yet): nothing to copy
        disks.append(Disk(source.target, capacity / MIB, min(allocation, capacity) / MIB,
                          is_shared(source, pool_type_of(conn, source))))
    return tuple(disks)


def written_mib(stats: Mapping[str, Any]) -> dict[str, float]:
    """MiB written to each disk since the guest started, by device name, from a domain's block statistics
    (`block.<n>.name`, `block.<n>.wr.bytes`: what virDomainBlockStats counts); a disk without a count is left out."""
    found = {}
    for k in range(int(stats.get("block.count", 0))):
        name, written = stats.get(f"block.{k}.name"), stats.get(f"block.{k}.wr.bytes")
        if name and written is not None:
            found[str(name)] = float(written) / MIB
    return found


def local_free_mib(conn: Any) -> float | None:
    """The host's free local disk space (module docstring), or None."""
    try:
        pools = conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)
    except libvirt.libvirtError:
        return None
    free: dict[str, float] = {}
    for pool in pools:
        with contextlib.suppress(libvirt.libvirtError):
            if _pool_type(pool) in LOCAL_POOL_TYPES:
                free[pool.name()] = pool.info()[3] / MIB
    if not free:
        return None
    return free.get("default", max(free.values()))


def volume_xml(name: str, capacity_bytes: int, disk_format: str) -> str:
    fmt = disk_format if disk_format in VOLUME_FORMATS else "raw"
    return (f"<volume><name>{escape(name)}</name><capacity unit='bytes'>{capacity_bytes}</capacity>"
            f"<target><format type='{fmt}'/></target></volume>")


def directory_pool_xml(name: str, directory: str) -> str:
    return f"<pool type='dir'><name>{escape(name)}</name><target><path>{escape(directory)}</path></target></pool>"


def prepare_target(target: Any, sources: list[DiskSource], capacities: dict[str, int]) -> list[str]:
    """Create on the target connection a volume for each of `sources` (local disks to copy) that it lacks, of the
    capacity given by target device in `capacities` and the disk's format; returns the paths or names created.
    Raises HypervisorError for a disk whose volume cannot be created (a block device must exist there already)."""
    created = []
    for source in sources:
        try:
            if source.kind == "volume":
                pool = target.storagePoolLookupByName(source.pool)
                if source.volume not in pool.listVolumes():
                    pool.createXML(volume_xml(source.volume, capacities[source.target], source.format), 0)
                    created.append(f"{source.pool}/{source.volume}")
            elif source.kind == "file":
                if _create_file(target, source, capacities[source.target]):
                    created.append(source.path)
            else:
                with contextlib.suppress(libvirt.libvirtError):
                    target.storageVolLookupByPath(source.path)
                    continue
                raise HypervisorError(f"disk {source.target} is the {source.kind} device {source.path}: it cannot be "
                                      "created on the target, where it must exist already")
        except libvirt.libvirtError as e:
            raise HypervisorError(f"create disk {source.target} on the target: {e.get_error_message()}") from None
    return created


@contextlib.contextmanager
def _pool_holding(conn: Any, directory: str) -> Iterator[Any]:
    """The connection's pool over `directory`, refreshed: its own, or a transient directory pool defined for the
    moment (and destroyed after: a directory pool's files stay, only the pool goes)."""
    try:
        pool, transient = conn.storagePoolLookupByTargetPath(directory), False
    except libvirt.libvirtError:
        pool = conn.storagePoolCreateXML(
            directory_pool_xml(f"advisor-disks-{zlib.crc32(directory.encode()):08x}", directory),
            libvirt.VIR_STORAGE_POOL_CREATE_WITH_BUILD)
        transient = True
    try:
        pool.refresh(0)
        yield pool
    finally:
        if transient:
            with contextlib.suppress(libvirt.libvirtError):
                pool.destroy()


def _create_file(target: Any, source: DiskSource, capacity_bytes: int) -> bool:
    """Create the file disk in the target's pool holding its directory; False when it exists there already."""
    directory, name = os.path.split(source.path)
    with _pool_holding(target, directory) as pool:
        if name in pool.listVolumes():
            return False
        pool.createXML(volume_xml(name, capacity_bytes, source.format), 0)
        return True


@contextlib.contextmanager
def _volume(conn: Any, source: DiskSource) -> Iterator[Any]:
    """The storage volume of a file or volume disk on `conn`."""
    if source.kind == "volume":
        yield conn.storagePoolLookupByName(source.pool).storageVolLookupByName(source.volume)
        return
    if source.kind != "file":
        raise HypervisorError(f"disk {source.target} is a {source.kind} disk: only files and volumes are copied")
    directory, name = os.path.split(source.path)
    with _pool_holding(conn, directory) as pool:
        yield pool.storageVolLookupByName(name)


def copy_disks(source: Any, target: Any, disks: list[DiskSource]) -> int:
    """Copy the disks, whose guest is off, byte for byte from the source connection's volumes to the target's
    (created first, of the same capacity and format); returns the bytes copied. Raises HypervisorError."""
    copied = 0
    try:
        for disk in disks:
            with _volume(source, disk) as there:
                prepare_target(target, [disk], {disk.target: int(there.info()[1])})
                with _volume(target, disk) as here:
                    copied += _stream(source, there, target, here)
    except libvirt.libvirtError as e:
        raise HypervisorError(f"copy the disks to the target: {e.get_error_message()}") from None
    return copied


def _stream(source: Any, there: Any, target: Any, here: Any) -> int:
    """One volume's bytes from `there` (on `source`) into `here` (on `target`), as a sparse stream: its holes (the
    blocks a thin disk never wrote) are passed on as holes, not sent as zeros; returns the data bytes sent."""
    down, up = source.newStream(0), target.newStream(0)
    there.download(down, 0, 0, libvirt.VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)
    here.upload(up, 0, 0, libvirt.VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM)
    sent = 0
    try:
        while True:
            chunk = down.recvFlags(STREAM_CHUNK_BYTES, libvirt.VIR_STREAM_RECV_STOP_AT_HOLE)
            if chunk == AT_HOLE:
                up.sendHole(down.recvHole(0), 0)
                continue
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[up.send(view.tobytes()):]
            sent += len(chunk)
        down.finish()
        up.finish()
    except BaseException:
        for stream in (down, up):
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
        raise
    return sent


def prepare_block_migration(dom: Any, target_uri: str, migrate_disks: tuple[str, ...]) -> list[str]:
    """Before a block migration of `dom`'s disks `migrate_disks` to `target_uri`: their volumes created there
    (`prepare_target`); returns what was created. Raises HypervisorError naming a disk the definition lacks."""
    sources = {s.target: s for s in disk_sources(dom.XMLDesc(0))}
    missing = [t for t in migrate_disks if t not in sources]
    if missing:
        raise HypervisorError(f"no writable disk {', '.join(missing)} in the guest's definition to copy")
    try:
        capacities = {t: int(dom.blockInfo(t)[0]) for t in migrate_disks}
        target = libvirt.open(target_uri)
    except libvirt.libvirtError as e:
        raise HypervisorError(f"prepare the disks' copy: {e.get_error_message()}") from None
    try:
        return prepare_target(target, [sources[t] for t in migrate_disks], capacities)
    finally:
        target.close()
