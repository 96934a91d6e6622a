"""Disks on the wire: a VM's disks and a host's free local space go out and come back as they were; unset means
unknown, not zero."""

from __future__ import annotations

from advisor.api import convert
from advisor.api.v1 import advisor_pb2 as pb
from advisor.domain.model import Disk, Host, Vm


def test_disks_and_free_space_survive_the_wire() -> None:
    disks = (Disk("vda", 4096.0, 1500.0, shared=False, write_rate_mib_s=2.5), Disk("vdb", 8192.0, 0.0, shared=True))
    vm = Vm("v", "a", 512, 1, disks=disks)
    assert convert.vm_from_pb(pb.Vm.FromString(convert.vm_to_pb(vm).SerializeToString())) == vm
    host = Host("a", 8, 1024, local_disk_free_mib=0.0)
    assert convert.host_from_pb(convert.host_to_pb(host)).local_disk_free_mib == 0.0  # zero free is known
    assert convert.host_from_pb(pb.Host(id="b", cpu_cores=1, memory_mib=1)).local_disk_free_mib is None


def test_a_disk_without_a_measured_write_rate_has_none() -> None:
    disk = convert.disk_from_pb(pb.Disk(target="vda", size_mib=100, used_mib=10))
    assert disk == Disk("vda", 100.0, 10.0, shared=False, write_rate_mib_s=None)
