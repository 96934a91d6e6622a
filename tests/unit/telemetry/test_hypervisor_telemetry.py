"""Reading inventory, dirty rates and guest stats through the Hypervisor protocol (scripted hosts,
tests.support.scripted)."""

from __future__ import annotations

import logging

import pytest

from advisor.domain.model import Disk
from advisor.execution.hypervisor import GuestFacts, GuestStats, HypervisorError
from advisor.telemetry.hypervisors import GuestStatsReader, HostConnection, measure_dirty_rates, read_inventory
from tests.support.scripted import ScriptedHost


def test_inventory_counts_a_guest_where_it_runs() -> None:
    a = ScriptedHost("a", [GuestFacts("vm1", "u1", 128, 1, True), GuestFacts("vm2", "u2", 256, 2, False, True)], {})
    b = ScriptedHost("b", [GuestFacts("vm2", "u2", 256, 2, True)], {})
    hosts = {"test://a": a, "test://b": b}
    change = read_inventory([HostConnection("a", "test://a", "10.0.0.1", 100.0), HostConnection("b", "test://b")],
                            hosts.__getitem__)  # type: ignore[arg-type]
    first = change.hosts[0]
    assert (first.id, first.cpu_cores, first.migration_address, first.network_bandwidth_mib_s) == (
        "a", 8, "10.0.0.1", 100.0)
    assert {v.id: v.host_id for v in change.vms} == {"vm1": "a", "vm2": "b"}  # vm2 paused on a: migrating in
    assert a.closed == b.closed == 1


def test_a_host_offers_the_networks_it_reports_and_those_its_running_guests_use() -> None:
    a = ScriptedHost("a", [GuestFacts("vm1", "u1", 128, 1, True, networks=("br-lan", "default")),
                           GuestFacts("vm2", "u2", 128, 1, False, True, networks=("br-paused",))], {},
                     networks=("default", "virbr0", "eth0"))
    change = read_inventory([HostConnection("a", "test://a")], {"test://a": a}.__getitem__)  # type: ignore[arg-type]
    assert change.hosts[0].networks == {"default", "virbr0", "eth0", "br-lan"}  # a paused guest proves nothing here
    assert change.vms[0].networks == {"br-lan", "default"}


def test_disks_and_free_local_space_come_with_the_inventory() -> None:
    disks = (Disk("vda", 1024.0, 300.0, shared=False), Disk("vdb", 4096.0, 4096.0, shared=True))
    a = ScriptedHost("a", [GuestFacts("vm1", "u1", 128, 1, True, disks=disks)], {}, local_disk_free_mib=2048.0)
    change = read_inventory([HostConnection("a", "test://a")], {"test://a": a}.__getitem__)  # type: ignore[arg-type]
    assert change.hosts[0].local_disk_free_mib == 2048.0
    assert change.vms[0].disks == disks and change.vms[0].local_disk_size_mib == 1024.0


def test_dirty_rate_is_the_mean_of_readings_and_skips_what_it_must() -> None:
    a = ScriptedHost("a", [GuestFacts("vm1", "u1", 128, 1, True), GuestFacts("vm2", "u2", 128, 1, True),
                           GuestFacts("vm3", "u3", 128, 1, True)], {"vm1": [10.0, 20.0, 30.0], "vm2": [], "vm3": [5.0]})

    def connect(uri: str) -> ScriptedHost:
        if uri == "test://down":
            raise HypervisorError("connection refused")
        return a

    samples = measure_dirty_rates([HostConnection("down", "test://down"), HostConnection("a", "test://a")],
                                  connect, lambda: 1000.0, readings=3, skip=frozenset({"vm3"}))  # type: ignore[arg-type]
    assert [(s.vm_id, s.dirty_rate_mib_s) for s in samples] == [("vm1", pytest.approx(20.0))]


def test_cpu_utilisation_from_consecutive_readings() -> None:
    host = ScriptedHost("a", [], {}, [
        [GuestStats("vm1", 100.0, 50.0, 2, 90.0)],
        [GuestStats("vm1", 110.0, 60.0, 2, 95.0)],   # 10 s of CPU in 10 s over 2 vCPUs: 50%
        [GuestStats("vm1", 120.0, 1.0, 2, 95.0)],    # the guest restarted: no figure from a reset counter
    ])
    reader = GuestStatsReader()
    conn = [HostConnection("a", "test://a")]
    first, second, third = (reader.read(conn, lambda _uri: host)[0] for _ in range(3))  # type: ignore[arg-type, return-value]
    assert (first.cpu_utilization, first.memory_used_mib) == (None, 90.0)
    assert second.cpu_utilization == pytest.approx(0.5)
    assert third.cpu_utilization is None


def test_the_resident_memory_of_qemu_comes_with_every_reading() -> None:
    host = ScriptedHost("a", [], {}, [[GuestStats("vm1", 100.0, 50.0, 2, 90.0, resident_memory_mib=210.0),
                                       GuestStats("vm2", 100.0, 50.0, 2, 90.0)]])
    samples = GuestStatsReader().read([HostConnection("a", "test://a")], lambda _uri: host)  # type: ignore[arg-type, return-value]
    assert [(s.vm_id, s.resident_memory_mib) for s in samples] == [("vm1", 210.0), ("vm2", None)]


def test_a_longer_window_reads_as_the_working_set_rewritten_in_it() -> None:
    a = ScriptedHost("a", [GuestFacts("vm1", "u1", 128, 1, True)], {"vm1": [3.0]})
    samples = measure_dirty_rates([HostConnection("a", "test://a")], lambda _uri: a, lambda: 1000.0,  # type: ignore[arg-type,return-value]
                                  readings=1, seconds=4, as_working_set=True)
    assert [(s.vm_id, s.working_set_mib, s.dirty_rate_mib_s) for s in samples] == [("vm1", 12.0, None)]


def test_the_local_disks_write_rate_from_consecutive_block_statistics() -> None:
    """Summed over the disks a move copies (vda, vdb), never the shared one (vdc); unknown, never 0, until two
    readings count every local disk, and again after a counter went back (the guest restarted)."""
    host = ScriptedHost("a", [], {}, [
        [GuestStats("vm1", 100.0, 1.0, 1, None, {"vda": 100.0, "vdb": 50.0, "vdc": 0.0})],
        [GuestStats("vm1", 110.0, 2.0, 1, None, {"vda": 130.0, "vdb": 70.0, "vdc": 900.0})],  # 3 + 2 MiB/s
        [GuestStats("vm1", 120.0, 3.0, 1, None, {"vda": 130.0, "vdb": 70.0})],  # idle: 0 measured
        [GuestStats("vm1", 130.0, 1.0, 1, None, {"vda": 1.0, "vdb": 0.0})],  # restarted: no figure
        [GuestStats("vm1", 140.0, 2.0, 1, None, {"vda": 9.0, "vdc": 900.0})],  # vdb not counted: unknown
    ])
    reader = GuestStatsReader()
    conn = [HostConnection("a", "test://a")]
    local = {"vm1": frozenset({"vda", "vdb"})}
    rates = [reader.read(conn, lambda _uri: host, local)[0].disk_write_rate_mib_s  # type: ignore[arg-type, return-value]
             for _ in range(5)]
    assert rates == [None, pytest.approx(5.0), 0.0, None, None]


def test_a_guest_without_local_disks_has_no_disk_write_rate() -> None:
    host = ScriptedHost("a", [], {}, [[GuestStats("vm1", 100.0, 1.0, 1, None, {"vda": 1.0})],
                                      [GuestStats("vm1", 110.0, 2.0, 1, None, {"vda": 99.0})]])
    reader = GuestStatsReader()
    conn = [HostConnection("a", "test://a")]
    assert [reader.read(conn, lambda _uri: host)[0].disk_write_rate_mib_s  # type: ignore[arg-type, return-value]
            for _ in range(2)] == [None, None]


def test_a_host_down_is_logged_when_it_fails_and_when_it_answers_again(caplog: pytest.LogCaptureFixture) -> None:
    up = ScriptedHost("flaky", [GuestFacts("vm1", "u1", 128, 1, True)], {"vm1": [1.0] * 10}, [[]] * 10)
    down = True

    def connect(uri: str) -> ScriptedHost:
        if down:
            raise HypervisorError("Connection refused")
        return up

    hosts = [HostConnection("flaky-host", "test://flaky")]
    caplog.set_level(logging.DEBUG, logger="advisor.telemetry")
    for _ in range(3):  # three rounds, each reading dirty rates and guest stats
        measure_dirty_rates(hosts, connect, lambda: 0.0, readings=1)  # type: ignore[arg-type]
        GuestStatsReader().read(hosts, connect)  # type: ignore[arg-type]
    down = False
    measure_dirty_rates(hosts, connect, lambda: 0.0, readings=1)  # type: ignore[arg-type]
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert said == [("WARNING", "host not reachable for dirty rates"), ("INFO", "host answers again")]
