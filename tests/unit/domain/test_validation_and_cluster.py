"""Inventory rules: values are checked field by field; a change is accepted whole or not at all."""

from __future__ import annotations

import math

import pytest

from advisor.domain import validation
from advisor.domain.cluster import Cluster, InventoryChange
from advisor.domain.errors import InvalidArgument, NotFound
from advisor.domain.model import Disk, Host, HostSample, Vm, VmSample

NOW = 1_800_000_000.0


def host(ident: str, **kw: object) -> Host:
    return Host(**{"id": ident, "cpu_cores": 16, "memory_mib": 65536, **kw})  # type: ignore[arg-type]


def vm(ident: str, host_id: str, **kw: object) -> Vm:
    return Vm(**{"id": ident, "host_id": host_id, "memory_mib": 4096, "vcpus": 2, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("address", ["", "10.0.2.17", "fd00::17", "hv-a.migration.example", "hv-a"])
def test_a_migration_address_is_an_ip_address_or_a_host_name(address: str) -> None:
    validation.check_host(host("h", migration_address=address), "h")


@pytest.mark.parametrize(
    ("value", "field", "fragment"),
    [
        (host("h", cpu_cores=0), "h.cpu_cores", "[1, 4096]"),
        (host("h", memory_mib=10**12), "h.memory_mib", "got 1e+12"),
        (host("h", network_bandwidth_mib_s=math.nan), "h.network_bandwidth_mib_s", "finite"),
        (host("h", network_bandwidth_mib_s=-1.0), "h.network_bandwidth_mib_s", "[1,"),
        (host("h", network_bandwidth_mib_s=1e-9), "h.network_bandwidth_mib_s", "[1, 200000]"),
        (host("bad id!"), "h.id", "characters"),
        (host(""), "h.id", "required"),
        (host("h", idle_power_w=300.0, max_power_w=200.0), "h.idle_power_w", "max_power_w"),
        (host("h", labels={"": "x"}), "h.labels['']", "label keys"),
        (host("h", networks=frozenset({"br 0"})), "h.networks[0]", "characters"),
        (host("h", networks=frozenset({""})), "h.networks[0]", "required"),
        (host("h", networks=frozenset(f"vlan-{k}" for k in range(9000))), "h.networks", "at most 8192"),
        (host("h", local_disk_free_mib=-1.0), "h.local_disk_free_mib", "[0,"),
        (host("h", local_disk_free_mib=math.nan), "h.local_disk_free_mib", "finite"),
        # QEMU listens on it and the source connects to it: an address, nothing more
        (host("h", migration_address="a b;rm"), "h.migration_address", "IP address or a host name"),
        (host("h", migration_address="tcp://1.2.3.4"), "h.migration_address", "without port, scheme or path"),
        (host("h", migration_address="1.2.3.4:4444/x?y"), "h.migration_address", "IP address"),
        (host("h", migration_address="x" * 200), "h.migration_address", "..."),
        (host("h", migration_address="-lead.example"), "h.migration_address", "host name"),
    ],
)
def test_bad_host_values_name_their_field(value: Host, field: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validation.check_host(value, "h")
    assert caught.value.field == field
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("sample", "field"),
    [
        (VmSample("v", NOW, cpu_utilization=1.5), "s.cpu_utilization_ratio"),
        (VmSample("v", NOW, dirty_rate_mib_s=-3.0), "s.dirty_rate_mib_s"),
        (VmSample("v", NOW, dirty_rate_mib_s=math.inf), "s.dirty_rate_mib_s"),
        (VmSample("v", NOW, resident_memory_mib=-1.0), "s.resident_memory_mib"),
        (VmSample("v", NOW, resident_memory_mib=math.nan), "s.resident_memory_mib"),
        (VmSample("v", NOW, resident_memory_mib=validation.MAX_RESIDENT_MEMORY_MIB + 1), "s.resident_memory_mib"),
        (VmSample("v", NOW + 3600), "s.time"),
        (VmSample("v", 0.0), "s.time"),
    ],
)
def test_bad_vm_samples_name_their_field(sample: VmSample, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validation.check_vm_sample(sample, "s", NOW)
    assert caught.value.field == field


def disk(target: str = "vda", size: float = 1024.0, used: float = 512.0, **kw: object) -> Disk:
    return Disk(**{"target": target, "size_mib": size, "used_mib": used, "shared": False, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("disks", "field", "fragment"),
    [
        ((disk(target=""),), "v.disks[0].target", "device name such as 'vda'"),
        ((disk(target="../etc/passwd"),), "v.disks[0].target", "device name"),
        ((disk(), disk("vdb"), disk("vda")), "v.disks[2].target", "duplicate of v.disks[0] ('vda')"),
        ((disk(size=0.0),), "v.disks[0].size_mib", "(0,"),
        ((disk(size=math.inf),), "v.disks[0].size_mib", "finite"),
        ((disk(used=2048.0),), "v.disks[0].used_mib", "must not exceed size_mib (2048 > 1024)"),
        ((disk(used=-1.0),), "v.disks[0].used_mib", "[0,"),
        ((disk(write_rate_mib_s=math.nan),), "v.disks[0].write_rate_mib_s", "finite"),
        ((disk(write_rate_mib_s=-2.0),), "v.disks[0].write_rate_mib_s", "[0,"),
        (tuple(disk(f"vd{k}") for k in range(65)), "v.disks", "at most 64 disks"),
    ],
)
def test_bad_disks_name_their_field(disks: tuple[Disk, ...], field: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validation.check_vm(vm("v", "h", disks=disks), "v")
    assert caught.value.field == field
    assert fragment in str(caught.value)


def test_a_vm_local_disk_size_counts_only_its_disks_that_are_not_shared() -> None:
    v = vm("v", "h", disks=(disk("vda", 1024.0), disk("vdb", 4096.0, shared=True), disk("vdc", 10.0, 0.0)))
    validation.check_vm(v, "v")
    assert v.local_disk_size_mib == 1034.0
    assert [d.target for d in v.local_disks] == ["vda", "vdc"]


def test_good_values_pass() -> None:
    validation.check_host(host("hv-1", labels={"rack": "r1"}), "h")
    validation.check_vm(vm("vm-1", "hv-1", anti_affinity_groups=frozenset({"db"})), "v")
    validation.check_host_sample(HostSample("hv-1", NOW, cpu_utilization=0.3), "s", NOW)


def test_cluster_indexes_allocation_and_groups() -> None:
    cluster = Cluster(
        [host("a"), host("b")],
        [vm("x", "a", anti_affinity_groups=frozenset({"db"})), vm("y", "b", anti_affinity_groups=frozenset({"db"}))],
    )
    assert cluster.allocated("a") == (4096, 2)
    assert cluster.anti_affinity_conflicts(cluster.vms["x"]) == {"b": "anti-affinity group 'db': VM y runs there"}
    cluster.apply(InventoryChange(vms=(vm("y", "a", anti_affinity_groups=frozenset({"db"})),)))  # y moves to a
    assert cluster.allocated("a") == (8192, 4)
    assert cluster.allocated("b") == (0, 0)
    cluster.apply(InventoryChange(removed_vm_ids=("x",)))
    assert cluster.vm_ids_on("a") == {"y"}
    assert cluster.anti_affinity_conflicts(cluster.vms["y"]) == {}


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        (InventoryChange(hosts=(host("c"), host("c"))), InvalidArgument, "hosts[1].id"),
        (InventoryChange(vms=(vm("n", "a"), vm("n", "a"))), InvalidArgument, "vms[1].id"),
        (InventoryChange(vms=(vm("n", "nowhere"),)), NotFound, "vms[0].host_id"),
        (InventoryChange(removed_host_ids=("nowhere",)), NotFound, "removed_host_ids[0]"),
        (InventoryChange(removed_vm_ids=("ghost",)), NotFound, "removed_vm_ids[0]"),
        (InventoryChange(removed_host_ids=("a",)), InvalidArgument, "removed_host_ids[0]"),
        (InventoryChange(vms=(vm("n", "b"),), removed_host_ids=("b",)), NotFound, "vms[0].host_id"),
        (InventoryChange(hosts=(host("b"),), removed_host_ids=("b",)), InvalidArgument, "removed_host_ids[0]"),
    ],
)
def test_bad_changes_are_refused_whole(change: InventoryChange, error: type[Exception], field: str) -> None:
    cluster = Cluster([host("a"), host("b")], [vm("x", "a")])
    before = (dict(cluster.hosts), dict(cluster.vms), cluster.allocated("a"))
    with pytest.raises(error) as caught:
        cluster.apply(change)
    assert caught.value.field == field  # type: ignore[attr-defined]
    assert (dict(cluster.hosts), dict(cluster.vms), cluster.allocated("a")) == before


def test_a_vm_using_a_network_no_host_offers_is_refused_with_the_network_named() -> None:
    cluster = Cluster([host("a", networks=frozenset({"br0"})), host("b", networks=frozenset({"br0", "vlan-7"}))])
    with pytest.raises(InvalidArgument) as caught:
        cluster.apply(InventoryChange(vms=(vm("ok", "a"), vm("x", "a", networks=frozenset({"br0", "vlan-9"})))))
    assert caught.value.field == "vms[1].networks"
    assert "unknown network 'vlan-9': no host of the inventory offers it" in str(caught.value)
    assert not cluster.vms
    cluster.apply(InventoryChange(vms=(vm("x", "a", networks=frozenset({"br0", "vlan-7"})),)))  # b offers vlan-7
    assert cluster.unknown_networks(vm("n", "a", networks=frozenset({"vlan-7", "z", "y"}))) == ["y", "z"]
    # a host pushed in the same change counts; one pushed again without it, or removed, no longer does
    cluster.apply(InventoryChange(hosts=(host("c", networks=frozenset({"sriov"})),),
                                  vms=(vm("s", "a", networks=frozenset({"sriov"})),)))
    with pytest.raises(InvalidArgument, match="'vlan-7'"):
        cluster.apply(InventoryChange(hosts=(host("b"),), vms=(vm("y", "a", networks=frozenset({"vlan-7"})),)))
    cluster.apply(InventoryChange(hosts=(host("b"),)))
    assert cluster.unknown_networks(cluster.vms["x"]) == ["vlan-7"]
    with pytest.raises(InvalidArgument, match="'sriov'"):
        cluster.apply(InventoryChange(removed_host_ids=("c",), vms=(vm("s", "a", networks=frozenset({"sriov"})),)))


def test_host_can_be_removed_with_its_vms_moved_away_in_the_same_change() -> None:
    cluster = Cluster([host("a"), host("b")], [vm("x", "a")])
    cluster.apply(InventoryChange(vms=(vm("x", "b"),), removed_host_ids=("a",)))
    assert set(cluster.hosts) == {"b"}
    assert cluster.allocated("b") == (4096, 2)
