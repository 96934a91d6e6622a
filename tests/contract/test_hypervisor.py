"""One contract, two implementations: the fake hypervisor (advisor.adapters.fake_hypervisor) and the libvirt
adapter against the lab's real daemons. What the executor and the telemetry readers rely on is checked here
against both, so that tests using the fake test what production does.

The libvirt half needs the lab (root, libvirtd, QEMU: scripts/setup.sh) and is skipped without it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from advisor.adapters.fake_hypervisor import FakeWorld
from advisor.domain.model import MigrationParameters, Technique
from advisor.execution.hypervisor import Agent, Hypervisor, HypervisorError, MigrationTarget

GUEST = "vm1"


@dataclass
class Bench:
    """One implementation under test: how to reach its two hosts, and how to make a migration slow."""

    connect: Callable[[str], Hypervisor]  # by host name
    target: Callable[[str], MigrationTarget]
    where: Callable[[], str | None]  # the host running GUEST
    slow: Callable[[bool], MigrationParameters]  # True: make the next migration last until aborted; False: undo
    booted: Callable[[], bool]  # whether GUEST (started afresh by a cold move) is up again
    hosts: tuple[str, str] = ("hv1", "hv2")

    def placed(self) -> tuple[str, str]:
        source = self.where()
        assert source in self.hosts, source
        return source, self.hosts[1] if source == self.hosts[0] else self.hosts[0]


QUICK = MigrationParameters(Technique.PRECOPY, 64.0, 300.0, postcopy_after_ms=None, deadline_ms=60_000)


def fake_bench() -> Bench:
    world = FakeWorld(("hv1", "hv2"), migration_s=0.2)
    world.add_guest(GUEST, "hv1", dirty_rate_mib_s=4.0, memory_used_mib=60.0, resident_memory_mib=150.0)

    def slow(on: bool) -> MigrationParameters:
        if on:
            world.release.clear()
        else:
            world.release.set()
        return QUICK

    return Bench(lambda h: world.connect(f"fake://{h}"), lambda h: MigrationTarget(f"fake://{h}"),
                 lambda: world.host_of(GUEST), slow, lambda: True)


def libvirt_bench(lab: object) -> Bench:
    from advisor.adapters.libvirt import LibvirtHypervisor
    from advisor.lab import Lab

    assert isinstance(lab, Lab)
    if not lab.status().healthy:
        lab.up(hosts=2, guests=1)

    def slow(on: bool) -> MigrationParameters:
        # Dirtying faster than a 2 MiB/s link moves: pre-copy cannot end before the abort.
        lab.set_dirty_rate(GUEST, 16 if on else 0)
        return MigrationParameters(Technique.PRECOPY, 2.0, 300.0, postcopy_after_ms=None, deadline_ms=60_000)

    return Bench(lambda h: LibvirtHypervisor(lab.uri(h)), lambda h: MigrationTarget(lab.uri(h), "127.0.0.1"),
                 lambda: lab.host_of(GUEST), slow, lambda: lab.guest_alive(GUEST, within_s=90))


@pytest.fixture(params=["fake", "libvirt"])
def bench(request: pytest.FixtureRequest) -> Iterator[Bench]:
    if request.param == "fake":
        yield fake_bench()
        return
    bench = libvirt_bench(request.getfixturevalue("lab"))
    yield bench
    bench.slow(False)


@pytest.fixture
def hosts(bench: Bench) -> Iterator[dict[str, Hypervisor]]:
    opened = {h: bench.connect(h) for h in bench.hosts}
    yield opened
    for hypervisor in opened.values():
        hypervisor.close()


def running_on(hosts: dict[str, Hypervisor], settle_s: float = 5.0) -> list[str]:
    """Hosts listing GUEST as running; asked again for a moment while a migration tears the source down."""
    deadline = time.monotonic() + settle_s
    while True:
        found = [h for h, hv in hosts.items() if any(g.name == GUEST and g.running for g in hv.guests())]
        if len(found) == 1 or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def test_host_facts_describe_distinct_hosts(hosts: dict[str, Hypervisor]) -> None:
    facts = [hv.host_facts() for hv in hosts.values()]
    assert all(f.cpu_cores >= 1 and f.memory_mib >= 1 and f.uuid for f in facts)
    assert len({f.uuid for f in facts}) == len(facts)


def test_the_guest_runs_on_exactly_one_host(bench: Bench, hosts: dict[str, Hypervisor]) -> None:
    assert running_on(hosts) == [bench.where()]
    (guest,) = [g for g in hosts[bench.placed()[0]].guests() if g.name == GUEST]
    assert guest.memory_mib >= 1 and guest.vcpus >= 1 and guest.uuid and not guest.migrating


def test_guest_stats_count_cpu_time_forward(bench: Bench, hosts: dict[str, Hypervisor]) -> None:
    source = hosts[bench.placed()[0]]
    (first,) = [s for s in source.guest_stats() if s.name == GUEST]
    time.sleep(0.3)
    (second,) = [s for s in source.guest_stats() if s.name == GUEST]
    assert first.vcpus >= 1 and 0 <= first.cpu_time_s <= second.cpu_time_s and second.time_s > first.time_s
    assert first.memory_used_mib is None or first.memory_used_mib > 0
    # QEMU's process holds the guest's touched pages and its own: both do (libvirt's memoryStats rss)
    assert first.resident_memory_mib is not None and first.resident_memory_mib > 0


def test_dirty_rate_of_a_guest_and_of_an_unknown_one(bench: Bench, hosts: dict[str, Hypervisor]) -> None:
    source = hosts[bench.placed()[0]]
    rate = source.measure_dirty_rate(GUEST, 1)
    assert math.isfinite(rate) and rate >= 0
    with pytest.raises(HypervisorError):
        source.measure_dirty_rate("no-such-guest", 1)


def test_no_job_no_progress(bench: Bench, hosts: dict[str, Hypervisor]) -> None:
    source = hosts[bench.placed()[0]]
    assert source.progress(GUEST) is None
    assert source.progress("no-such-guest") is None


def test_a_migration_moves_the_guest_and_back(bench: Bench, hosts: dict[str, Hypervisor]) -> None:
    for _ in range(2):
        source, target = bench.placed()
        result = hosts[source].migrate(GUEST, bench.target(target), QUICK)
        assert result.succeeded, result.error
        assert result.total_time_ms > 0 and result.transferred_mib > 0
        assert running_on(hosts) == [target]
        assert hosts[target].progress(GUEST) is None
        pulse = hosts[target].guest_pulse(GUEST)  # what the runner checks the guest by on its new host
        assert pulse.running and pulse.state == "running" and pulse.agent is not Agent.SILENT
        assert pulse.agent is Agent.ANSWERED or pulse.vcpu_time_s is not None
    with pytest.raises(HypervisorError):
        hosts[bench.placed()[1]].guest_pulse(GUEST)  # not there


def test_an_aborted_migration_leaves_the_guest_on_its_source(bench: Bench, hosts: dict[str, Hypervisor]) -> None:
    source, target = bench.placed()
    params = bench.slow(True)
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(hosts[source].migrate(GUEST, bench.target(target),
                                                                                  params)))
    thread.start()
    deadline = time.monotonic() + 30
    # libvirt reports the job before QEMU starts sending (all figures 0): wait until memory moves.
    while (progress := hosts[source].progress(GUEST)) is None or progress.memory_total_mib == 0:
        assert time.monotonic() < deadline and thread.is_alive(), "the migration never showed progress"
        time.sleep(0.1)
    assert progress.memory_remaining_mib <= progress.memory_total_mib and not progress.in_postcopy
    hosts[source].abort(GUEST)
    thread.join(30)
    bench.slow(False)
    (result,) = outcome
    assert not result.succeeded and result.error  # type: ignore[attr-defined]
    assert running_on(hosts) == [source]


def test_migrating_an_unknown_guest_is_an_unsuccessful_result(bench: Bench, hosts: dict[str, Hypervisor]) -> None:
    source, target = bench.placed()
    result = hosts[source].migrate("no-such-guest", bench.target(target), QUICK)
    assert not result.succeeded and result.error


COLD = MigrationParameters(Technique.COLD, 64.0, 300.0, shutdown_timeout_ms=1000)


def test_a_cold_move_moves_the_guest_and_says_how(bench: Bench, hosts: dict[str, Hypervisor]) -> None:
    source, target = bench.placed()
    result = hosts[source].cold_move(GUEST, bench.target(target), COLD)
    assert result.succeeded, (result.error, result.detail)
    assert result.downtime_ms is not None and 0 < result.downtime_ms <= result.total_time_ms
    assert 0 < result.transferred_mib < 0.1  # its definition
    assert result.detail in ("shut down by itself", "forced off: it did not shut down within 1 s",
                             "forced off: it did not shut down within its timeout")
    assert running_on(hosts) == [target]
    assert hosts[target].progress(GUEST) is None
    assert bench.booted()  # started afresh: up again before the next test talks to it


def test_cold_moving_an_unknown_guest_is_an_unsuccessful_result(bench: Bench, hosts: dict[str, Hypervisor]) -> None:
    source, target = bench.placed()
    result = hosts[source].cold_move("no-such-guest", bench.target(target), COLD)
    assert not result.succeeded and result.error
    assert running_on(hosts) == [source]
