"""The lab guest's disk as its definition and its commands carry it (pure: no daemon)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from advisor.adapters.libvirt_disks import disk_sources
from advisor.lab import guest
from advisor.lab.disks import image_path
from advisor.lab.integrity import DISK

IMAGE = guest.GuestImage(Path("/cache/vmlinuz"), Path("/cache/initrd.gz"))


def test_a_guest_with_a_disk_sees_its_raw_file_as_vda_and_one_without_has_none() -> None:
    xml = guest.domain_xml("vm1", IMAGE, 128, image_path("vm1"))
    assert [(d.target, d.kind, d.path, d.format) for d in disk_sources(xml)] == [
        ("vda", "file", "/var/lib/libvirt/images/vm1.img", "raw")]
    assert ET.fromstring(guest.domain_xml("vm1", IMAGE, 128)).find("./devices/disk") is None


def test_the_disk_writer_command() -> None:
    assert guest.disk_command(7, 8, 256) == b"disk 7 8 256\n"
    assert guest.disk_command(8, 8, 0) == b"disk 8 8 0\n"  # stops it
    with pytest.raises(ValueError, match="at least 1 MiB"):
        guest.disk_command(9, 0, 256)


def test_the_guest_loads_the_disk_driver_and_mounts_its_disk_where_the_seals_look() -> None:
    script = guest.init_script(64)
    assert "virtio_blk" in script and f"mount -t ext4 /dev/vda {DISK}" in script
