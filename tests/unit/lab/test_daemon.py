"""The lab daemons' configuration: pure text from a host's spec."""

from pathlib import Path

from advisor.lab.daemon import MIGRATION_PORT_BASE, HostSpec, host_uuid, qemu_conf


def spec(root: str, name: str) -> HostSpec:
    return HostSpec(name, Path(root) / name, Path(root) / "cache", host_uuid(Path(root), name))


def test_each_host_of_two_labs_gets_its_own_migration_ports() -> None:
    hosts = [spec(root, name) for root in ("/tmp/lab-a", "/tmp/lab-b") for name in ("hv1", "hv2")]
    ranges = [h.migration_ports for h in hosts]
    assert len(set(ranges)) == 4
    for low, high in ranges:
        assert MIGRATION_PORT_BASE <= low < high <= 65535
    assert spec("/tmp/lab-a", "hv1").migration_ports == ranges[0]  # stable for a root


def test_qemu_conf_names_the_hosts_ports() -> None:
    host = spec("/tmp/lab-a", "hv1")
    low, high = host.migration_ports
    conf = qemu_conf(host)
    assert f"migration_port_min = {low}\n" in conf and f"migration_port_max = {high}\n" in conf
    assert "migrate_tls" not in conf
