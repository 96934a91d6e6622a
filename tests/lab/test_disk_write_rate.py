"""A real guest's local disk write rate, read from libvirt's block statistics (`block.N.wr.bytes`) by the advisor's
telemetry over time: the lab's disk writer rewrites part of a file on the guest's local disk at a set rate, synced,
and the advisor's reading must see it (the guest's file system adds its own journal writes, never fewer).

This module brings up a lab of its own (1 host, 1 guest with a disk, no Prometheus) under
$ADVISOR_LAB_TEST_ROOT-writes, and takes it down at its end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from advisor.adapters.libvirt import LibvirtHypervisor
from advisor.lab import Lab
from advisor.lab.disks import set_disk_writer
from advisor.telemetry.hypervisors import GuestStatsReader, HostConnection, read_inventory
from tests.support.lab import TEST_CACHE, TEST_ROOT, needs_the_lab

pytestmark = pytest.mark.integration

GUEST = "vm1"
WRITE_KIB_S = 1024
WINDOW_S = 6.0


@pytest.fixture(scope="module")
def writes_lab() -> Iterator[Lab]:
    needs_the_lab()
    lab = Lab(Path(f"{TEST_ROOT}-writes"), cache=TEST_CACHE, with_prometheus=False,
              progress=lambda line: print(f"[lab] {line}"))
    lab.down()
    try:
        status = lab.up(hosts=1, guests=1, disk_mib=32)
        assert status.healthy, status
        yield lab
    finally:
        lab.down()


def test_the_advisor_reads_a_guest_disk_write_rate_from_libvirt(writes_lab: Lab) -> None:
    hosts = [HostConnection("hv1", writes_lab.uri("hv1"))]
    vm = next(v for v in read_inventory(hosts, LibvirtHypervisor).vms if v.id == GUEST)
    local = {GUEST: frozenset(d.target for d in vm.local_disks)}
    assert local[GUEST] == {"vda"}
    set_disk_writer(writes_lab, GUEST, 4, WRITE_KIB_S)  # 4 MiB of a file rewritten at 1 MiB/s, synced
    reader = GuestStatsReader()
    try:
        time.sleep(2.0)  # the writer under way
        (first,) = [s for s in reader.read(hosts, LibvirtHypervisor, local) if s.vm_id == GUEST]
        time.sleep(WINDOW_S)
        (second,) = [s for s in reader.read(hosts, LibvirtHypervisor, local) if s.vm_id == GUEST]
    finally:
        set_disk_writer(writes_lab, GUEST, 1, 0)  # stopped
    assert first.disk_write_rate_mib_s is None  # one reading of a counter: no rate yet
    rate = second.disk_write_rate_mib_s
    print(f"disk writer at {WRITE_KIB_S / 1024:.2f} MiB/s; libvirt's block statistics read {rate} MiB/s")
    assert rate is not None and 0.5 * WRITE_KIB_S / 1024 <= rate <= 4 * WRITE_KIB_S / 1024
