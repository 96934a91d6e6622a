"""Inventory and dirty rates read from the hypervisors themselves (through the Hypervisor protocol).

`read_inventory` turns what each host's hypervisor reports into an InventoryChange; `measure_dirty_rates` takes
several short readings per guest and keeps their mean, because one page-sampling reading is a noisy sample (it
can read 0 for a small working set, and varies run to run). Guests that migrate are skipped: measuring them
would disturb the migration.
"""

from __future__ import annotations

import logging
import statistics
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from advisor.domain.cluster import InventoryChange
from advisor.domain.model import DEFAULT_NETWORK_BANDWIDTH_MIB_S, Host, Vm, VmSample
from advisor.execution.hypervisor import GuestDefinition, GuestStats, Hypervisor, HypervisorError

log = logging.getLogger("advisor.telemetry")

T = TypeVar("T")


@dataclass(frozen=True)
class HostConnection:
    """A host the advisor reads and moves guests on: its id in the inventory and how to reach it."""

    host_id: str
    uri: str
    migration_address: str = ""
    network_bandwidth_mib_s: float = DEFAULT_NETWORK_BANDWIDTH_MIB_S
    labels: Mapping[str, str] | None = None
    # The host's QEMU has migration certificates (libvirt does not say so through its API: whoever configured
    # the host does, as the lab does for its daemons).
    migration_tls: bool = False


def read_inventory(hosts: list[HostConnection], connect: Callable[[str], Hypervisor]) -> InventoryChange:
    """Hosts and the guests running on them, as the hypervisors report them. A guest seen paused on one host
    because it is migrating in or out is attributed to the host where it runs. A host offers the networks it
    reports and those its running guests use (a guest attached to a bridge proves the bridge is there, even where
    the daemon cannot list bridges). Disks come with their sizes and whether each is shared; their write rates are
    measured apart, over time (`GuestStatsReader`: a VM sample's disk_write_rate_mib_s)."""
    found_hosts: list[Host] = []
    vms: dict[str, Vm] = {}
    for conn in hosts:
        hypervisor = connect(conn.uri)
        try:
            facts = hypervisor.host_facts()
            running = [g for g in hypervisor.guests() if g.running]
            found_hosts.append(Host(
                id=conn.host_id, cpu_cores=facts.cpu_cores, memory_mib=facts.memory_mib, cpu_model=facts.cpu_model,
                labels=dict(conn.labels or {}), network_bandwidth_mib_s=conn.network_bandwidth_mib_s,
                hypervisor_uri=conn.uri, migration_address=conn.migration_address, migration_tls=conn.migration_tls,
                networks=frozenset(facts.networks).union(*(g.networks for g in running)),
                local_disk_free_mib=facts.local_disk_free_mib,
            ))
            for guest in running:
                vms[guest.name] = Vm(id=guest.name, host_id=conn.host_id, memory_mib=guest.memory_mib,
                                     vcpus=guest.vcpus, networks=frozenset(guest.networks), disks=guest.disks)
        finally:
            hypervisor.close()
    return InventoryChange(hosts=tuple(found_hosts), vms=tuple(vms.values()))


class _Troubles:
    """The error each host's hypervisor last failed with: a host down for hours is logged as a warning when it
    fails, when the cause changes and (info) when it answers again, not for every purpose of every round."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, str] = {}

    def failed(self, host_id: str, message: str, error: str) -> None:
        with self._lock:
            known = self._last.get(host_id) == error
            self._last[host_id] = error
        log.log(logging.DEBUG if known else logging.WARNING, message, extra={"host": host_id, "error": error})

    def answered(self, host_id: str) -> None:
        with self._lock:
            was = self._last.pop(host_id, None)
        if was is not None:
            log.info("host answers again", extra={"host": host_id, "error": was})


_troubles = _Troubles()


def answering(
    hosts: list[HostConnection], connect: Callable[[str], Hypervisor], purpose: str, read: Callable[[Hypervisor], T]
) -> Iterator[tuple[HostConnection, Hypervisor, T]]:
    """Each host's hypervisor in turn with its answer to `read`, closed once the caller is done with it; a host
    that cannot be reached or does not answer is logged and passed over, so that the others are still read."""
    for conn in hosts:
        try:
            hypervisor = connect(conn.uri)
        except HypervisorError as error:
            _troubles.failed(conn.host_id, f"host not reachable for {purpose}", str(error))
            continue
        try:
            try:
                answer = read(hypervisor)
            except HypervisorError as error:
                _troubles.failed(conn.host_id, f"host not answering for {purpose}", str(error))
                continue
            _troubles.answered(conn.host_id)
            yield conn, hypervisor, answer
        finally:
            hypervisor.close()


def measure_dirty_rates(
    hosts: list[HostConnection],
    connect: Callable[[str], Hypervisor],
    clock: Callable[[], float],
    *,
    readings: int = 3,
    seconds: int = 1,
    skip: frozenset[str] = frozenset(),
    reached: set[str] | None = None,
    as_working_set: bool = False,
) -> list[VmSample]:
    """One sample per running guest: the mean of `readings` page-sampling measurements of `seconds` each (or,
    `as_working_set`, what the guest rewrote over the window: the rate times `seconds`, as `working_set_mib`).
    A host that cannot be reached is logged and passed over; the others are still measured. The ids of the hosts
    that answered are added to `reached`."""
    samples = []
    for conn, hypervisor, guests in answering(hosts, connect, "dirty rates", lambda h: h.guests()):
        if reached is not None:
            reached.add(conn.host_id)
        for guest in guests:
            if not guest.running or guest.name in skip:
                continue
            values = []
            for _ in range(readings):
                try:
                    values.append(hypervisor.measure_dirty_rate(guest.name, seconds))
                except HypervisorError as error:
                    log.info("dirty rate not measured", extra={"vm": guest.name, "error": str(error)})
                    break
            if values and as_working_set:
                samples.append(VmSample(guest.name, clock(), working_set_mib=statistics.fmean(values) * seconds))
            elif values:
                samples.append(VmSample(guest.name, clock(), dirty_rate_mib_s=statistics.fmean(values)))
    return samples


class GuestStatsReader:
    """CPU utilisation, memory use, the resident memory of their QEMU process and the write rate of local disks of
    guests, from consecutive readings of their cumulative CPU time and disk writes (libvirt's block statistics).

    Keeps the previous reading per guest; the first reading of a guest gives its memory figures only. A guest's
    disk write rate is the sum over the local disks `local_disks` names for it (those a move copies); it is unknown
    (None, never 0) until two readings count every one of them."""

    def __init__(self) -> None:
        self._previous: dict[str, GuestStats] = {}

    def read(self, hosts: list[HostConnection], connect: Callable[[str], Hypervisor],
             local_disks: Mapping[str, Collection[str]] | None = None) -> list[VmSample]:
        samples = []
        for _, _, current in answering(hosts, connect, "guest stats", lambda h: h.guest_stats()):
            for stats in current:
                before = self._previous.get(stats.name)
                self._previous[stats.name] = stats
                cpu = written = None
                if before is not None and stats.time_s > before.time_s and stats.cpu_time_s >= before.cpu_time_s:
                    busy = (stats.cpu_time_s - before.cpu_time_s) / (stats.time_s - before.time_s)
                    cpu = min(1.0, busy / max(1, stats.vcpus))  # a counter reset (restart) gives no figure
                if before is not None and stats.time_s > before.time_s:
                    written = _write_rate(before, stats, (local_disks or {}).get(stats.name, ()))
                samples.append(VmSample(stats.name, stats.time_s, cpu_utilization=cpu,
                                        memory_used_mib=stats.memory_used_mib, disk_write_rate_mib_s=written,
                                        resident_memory_mib=stats.resident_memory_mib))
        return samples


def _write_rate(before: GuestStats, now: GuestStats, disks: Collection[str]) -> float | None:
    """MiB/s written to `disks` between two readings; None when there is none, or one of them was not counted in
    both readings or its counter went back (the guest restarted)."""
    rates = []
    for disk in disks:
        was, is_ = before.disk_written_mib.get(disk), now.disk_written_mib.get(disk)
        if was is None or is_ is None or is_ < was:
            return None
        rates.append((is_ - was) / (now.time_s - before.time_s))
    return sum(rates) if rates else None


def read_definitions(hosts: list[HostConnection], connect: Callable[[str], Hypervisor]
                     ) -> list[tuple[str, str, GuestDefinition]]:
    """(guest, host id, definition) of every guest running on the hosts that answer (not those migrating: their
    definition is their source's until they land)."""
    found = []
    for conn, hypervisor, guests in answering(hosts, connect, "definitions", lambda h: h.guests()):
        for guest in guests:
            if not guest.running or guest.migrating:
                continue
            try:
                found.append((guest.name, conn.host_id, hypervisor.definition(guest.name)))
            except HypervisorError as error:
                log.info("definition not read", extra={"vm": guest.name, "error": str(error)})
    return found
