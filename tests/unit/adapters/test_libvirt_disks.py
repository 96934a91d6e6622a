"""The libvirt adapter's disks: which disks of a definition count, the rule deciding shared or local, a host's free
local space, what a block migration asks of libvirt, and the target's volumes created first (libvirt's storage
calls answered by a small fake: the real ones run in the lab)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import libvirt
import pytest

from advisor.adapters.libvirt import migration_flags, migration_params
from advisor.adapters.libvirt_disks import (
    DiskSource,
    disk_sources,
    guest_disks,
    is_shared,
    local_free_mib,
    prepare_target,
)
from advisor.domain.model import MIB, Disk, MigrationParameters, Technique
from advisor.execution.hypervisor import HypervisorError, MigrationTarget

DISKS = """<domain type='kvm'><name>g</name><devices>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images/g.qcow2'/>
    <target dev='vda' bus='virtio'/></disk>
  <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/vg0/data'/>
    <target dev='vdb' bus='virtio'/></disk>
  <disk type='network' device='disk'><source protocol='rbd' name='pool/g-data'/><target dev='vdc'/></disk>
  <disk type='volume' device='disk'><driver type='raw'/><source pool='nfs-images' volume='g-logs.img'/>
    <target dev='vdd'/></disk>
  <disk type='file' device='disk'><source file='/shared/g-scratch.img'/><shareable/><target dev='vde'/></disk>
  <disk type='file' device='cdrom'><source file='/isos/install.iso'/><target dev='sda'/><readonly/></disk>
  <disk type='file' device='disk'><source file='/images/ro.img'/><target dev='vdf'/><readonly/></disk>
  <disk type='file' device='cdrom'><target dev='sdb'/></disk>
</devices></domain>"""


def test_the_disks_counted_are_those_the_guest_writes() -> None:
    found = disk_sources(DISKS)
    assert [d.target for d in found] == ["vda", "vdb", "vdc", "vdd", "vde"]
    assert found[0] == DiskSource("vda", "file", "/var/lib/libvirt/images/g.qcow2", "", "", "qcow2", False)
    assert (found[1].kind, found[1].path) == ("block", "/dev/vg0/data")
    assert (found[3].pool, found[3].volume) == ("nfs-images", "g-logs.img")
    assert found[4].shareable


@pytest.mark.parametrize(("target", "pool_type", "shared"), [
    ("vda", "dir", False),  # a file in the images directory
    ("vda", None, False),  # a file in no pool
    ("vda", "netfs", True),  # a file on an NFS pool
    ("vdb", "logical", False),  # an LVM volume of the host
    ("vdb", "iscsi", True),  # a LUN of a SAN
    ("vdc", None, True),  # RBD: on the network
    ("vdd", "netfs", True),
    ("vdd", "dir", False),
    ("vde", None, True),  # shareable: libvirt copies none of those
])
def test_the_rule_for_shared_disks(target: str, pool_type: str | None, shared: bool) -> None:
    source = next(d for d in disk_sources(DISKS) if d.target == target)
    assert is_shared(source, pool_type) == shared


class FakePool:
    def __init__(self, name: str, kind: str, path: str = "", available_mib: float = 0.0,
                 volumes: tuple[str, ...] = ()) -> None:
        self._name, self.kind, self.path, self.available = name, kind, path, available_mib * MIB
        self.volumes: dict[str, str] = dict.fromkeys(volumes, "")
        self.destroyed = False

    def name(self) -> str:
        return self._name

    def XMLDesc(self, _flags: int) -> str:  # noqa: N802 - libvirt's name
        return f"<pool type='{self.kind}'><name>{self._name}</name></pool>"

    def info(self) -> list[float]:
        return [1, 0, 0, self.available]

    def refresh(self, _flags: int) -> None:
        pass

    def listVolumes(self) -> list[str]:  # noqa: N802
        return list(self.volumes)

    def createXML(self, xml: str, _flags: int) -> None:  # noqa: N802
        root = ET.fromstring(xml)
        self.volumes[root.findtext("name") or ""] = xml

    def destroy(self) -> None:
        self.destroyed = True


def _missing() -> libvirt.libvirtError:
    return libvirt.libvirtError("not found")


class FakeConn:
    """The storage calls the adapter makes, over a few pools; a path is in the pool whose directory holds it."""

    def __init__(self, *pools: FakePool, storage: bool = True) -> None:
        self.pools = list(pools)
        self.storage = storage

    def listAllStoragePools(self, _flags: int) -> list[FakePool]:  # noqa: N802
        if not self.storage:
            raise libvirt.libvirtError("this function is not supported by the connection driver")
        return self.pools

    def storagePoolLookupByName(self, name: str) -> FakePool:  # noqa: N802
        for pool in self.pools:
            if pool.name() == name:
                return pool
        raise _missing()

    def storagePoolLookupByTargetPath(self, path: str) -> FakePool:  # noqa: N802
        for pool in self.pools:
            if pool.path and pool.path == path:
                return pool
        raise _missing()

    def storageVolLookupByPath(self, path: str) -> Any:  # noqa: N802
        directory, name = path.rsplit("/", 1)
        pool = self.storagePoolLookupByTargetPath(directory)
        if name not in pool.volumes:
            raise _missing()
        return type("Vol", (), {"storagePoolLookupByVolume": lambda _self: pool})()

    def storagePoolCreateXML(self, xml: str, flags: int) -> FakePool:  # noqa: N802
        assert flags == libvirt.VIR_STORAGE_POOL_CREATE_WITH_BUILD
        root = ET.fromstring(xml)
        pool = FakePool(root.findtext("name") or "", root.get("type", ""), root.findtext("target/path") or "")
        self.pools.append(pool)
        return pool


@pytest.mark.parametrize(("pools", "free"), [
    ((FakePool("default", "dir", available_mib=5000), FakePool("big", "logical", available_mib=9000)), 5000.0),
    ((FakePool("big", "logical", available_mib=9000), FakePool("small", "dir", available_mib=100)), 9000.0),
    ((FakePool("default", "netfs", available_mib=5000), FakePool("vg", "logical", available_mib=70)), 70.0),
    ((FakePool("ceph", "rbd", available_mib=10**6),), None),  # shared only: no local space to speak of
    ((), None),
])
def test_a_host_free_local_space_is_its_default_pool_or_its_roomiest_local_one(pools: tuple[FakePool, ...],
                                                                                free: float | None) -> None:
    assert local_free_mib(FakeConn(*pools)) == free


def test_a_daemon_without_a_storage_driver_has_its_free_space_unknown() -> None:
    assert local_free_mib(FakeConn(storage=False)) is None


def test_a_guest_disks_carry_their_sizes_and_whether_each_is_shared() -> None:
    conn = FakeConn(FakePool("images", "dir", "/var/lib/libvirt/images", volumes=("g.qcow2",)),
                    FakePool("nfs-images", "netfs", "/mnt/nfs", volumes=("g-logs.img",)))
    sizes = {"vda": (10 * 1024 * MIB, 3 * 1024 * MIB), "vdb": (2048 * MIB, 2048 * MIB), "vdc": (100 * MIB, 0),
             "vdd": (64 * MIB, 80 * MIB)}

    class Dom:
        def blockInfo(self, target: str) -> list[int]:  # noqa: N802
            if target not in sizes:
                raise libvirt.libvirtError("no such disk")
            return [*sizes[target], 0]

    assert guest_disks(conn, Dom(), DISKS) == (
        Disk("vda", 10240.0, 3072.0, False), Disk("vdb", 2048.0, 2048.0, False), Disk("vdc", 100.0, 0.0, True),
        Disk("vdd", 64.0, 64.0, True),  # allocation beyond capacity (metadata) is capped at it
    )  # vde: QEMU does not report it, nothing to copy


def test_the_target_volumes_are_created_first_in_its_pool_or_a_transient_one() -> None:
    images = FakePool("images", "dir", "/var/lib/libvirt/images")
    target = FakeConn(images, FakePool("nfs-images", "netfs", "/mnt/nfs"))
    vda, vdb = disk_sources(DISKS)[:2]
    elsewhere = DiskSource("vdg", "file", "/srv/guests/g-extra.img", "", "", "vmdk", False)
    there = DiskSource("vdh", "file", "/var/lib/libvirt/images/g-old.img", "", "", "raw", False)
    images.volumes["g-old.img"] = ""
    created = prepare_target(target, [vda, elsewhere, there], {"vda": 10 * MIB, "vdg": 5 * MIB, "vdh": MIB})
    assert created == [vda.path, elsewhere.path]  # g-old.img was there already
    volume = ET.fromstring(images.volumes["g.qcow2"])
    assert (volume.findtext("capacity"), volume.find("target/format").get("type")) == (str(10 * MIB), "qcow2")
    transient = target.pools[-1]
    assert transient.path == "/srv/guests" and transient.destroyed  # the file stays, the pool goes
    assert ET.fromstring(transient.volumes["g-extra.img"]).find("target/format").get("type") == "raw"
    with pytest.raises(HypervisorError, match="vdb is the block device /dev/vg0/data: it cannot be created"):
        prepare_target(target, [vdb], {"vdb": MIB})


def test_a_block_migration_asks_libvirt_for_the_local_disks_only() -> None:
    params = MigrationParameters(Technique.PRECOPY, 32.0, 300.0, migrate_disks=("vda", "vdb"))
    flags = migration_flags(params, persistent=True)
    assert flags & libvirt.VIR_MIGRATE_NON_SHARED_DISK and not flags & libvirt.VIR_MIGRATE_NON_SHARED_INC
    assert migration_params(params, MigrationTarget("qemu+tcp://b/system"))[
        libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] == ["vda", "vdb"]
    shared = MigrationParameters(Technique.PRECOPY, 32.0, 300.0)
    assert not migration_flags(shared, persistent=True) & libvirt.VIR_MIGRATE_NON_SHARED_DISK
    assert libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS not in migration_params(shared, MigrationTarget("x"))


@pytest.mark.parametrize(("address", "uri"), [("10.0.2.17", "tcp://10.0.2.17"), ("fd00::17", "tcp://[fd00::17]"),
                                              ("hv-b.example", "tcp://hv-b.example")])
def test_the_migration_uri_carries_the_target_s_address(address: str, uri: str) -> None:
    params = migration_params(MigrationParameters(Technique.PRECOPY, 32.0, 300.0),
                              MigrationTarget("qemu+tcp://b/system", migration_address=address))
    assert params[libvirt.VIR_MIGRATE_PARAM_URI] == uri
    assert params[libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS] == address
