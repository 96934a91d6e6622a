"""A fake hypervisor for tests: every host of one `FakeWorld` shares where each guest runs.

It honours the same contract as the libvirt adapter (tests/contract runs one suite against both): guests run on
exactly one host, a migration moves a guest when it succeeds and leaves it on the source when aborted, progress
is None when no job runs, an unknown guest is an error for measurements and an unsuccessful result for a
migration. A guest answers its guest agent's ping unless a test makes it silent (`FakeGuest.answers`), and uses
the networks a test gives it, on hosts offering the world's `networks`. A cold move (`cold_move`) has no job
statistics (progress None), like libvirt's. Migrations are scripted: each takes
`migration_s` seconds, or waits for `release` when the world is gated, so a test decides when they end. Time is
the world's `clock`: a test may give it a fake one and start migrations with `launch`, which does not block, in
place of the blocking `migrate`. Claims about real migrations are only made against the lab.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from advisor.domain.failures import Fault
from advisor.domain.migration import MigrationResult, Progress
from advisor.domain.model import MigrationParameters, Technique
from advisor.execution.hypervisor import (
    Agent,
    GuestDefinition,
    GuestFacts,
    GuestPulse,
    GuestStats,
    HostFacts,
    Hypervisor,
    HypervisorError,
    MigrationTarget,
)

SCHEME = "fake://"


@dataclass
class FakeGuest:
    name: str
    host: str
    memory_mib: int = 128
    vcpus: int = 1
    dirty_rate_mib_s: float = 0.0
    cpu_ratio: float = 0.5
    memory_used_mib: float | None = None
    # MiB resident in its QEMU process (guest pages touched plus QEMU's own), as libvirt's `rss`; None: not reported
    resident_memory_mib: float | None = None
    # False: the guest runs but its agent does not answer (a guest hung after its migration).
    answers: bool = True
    networks: tuple[str, ...] = ()
    # MiB/s the guest writes to each of its disks, by device name (counted since the world started)
    disk_write_rate_mib_s: dict[str, float] = field(default_factory=dict)


@dataclass
class _Job:
    started: float
    total_mib: float
    postcopy: bool = False
    aborted: bool = False
    cold: bool = False


class FakeWorld:
    """Hosts and guests; knobs tests turn: `release` (gated worlds), `fail_polls`, `migration_s`,
    `refuse_postcopy` (how many switches to post-copy to refuse, as QEMU does before the job is under way),
    `ignore_shutdown` (guests ignore the power button: a cold move forces them off), `fail_cold_start` (a cold
    move's start on the target fails: the guest is started again on its source), `kill` (a host dies); what
    happened:
    `calls`, `running`, `most_running`."""

    def __init__(self, hosts: tuple[str, ...] = ("a", "b"), *, gated: bool = False, migration_s: float = 0.05,
                 cpu_cores: int = 4, memory_mib: int = 4096, cpu_model: str = "m", networks: tuple[str, ...] = (),
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.hosts = hosts
        self.clock, self.sleep = clock, sleep
        self.cpu_cores, self.memory_mib, self.cpu_model = cpu_cores, memory_mib, cpu_model
        self.networks = networks
        self.guests: dict[str, FakeGuest] = {}
        self.release = threading.Event()
        if not gated:
            self.release.set()
        self.migration_s = migration_s
        self.fail_polls = False
        self.refuse_postcopy = 0
        self.ignore_shutdown = False
        self.fail_cold_start = False
        self.down: set[str] = set()  # hosts that died (`kill`): nobody connects to them
        self.calls: list[str] = []
        self.running = 0
        self.most_running = 0
        self.lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._started = time.monotonic()

    def add_guest(self, name: str, host: str, **facts: object) -> FakeGuest:
        if host not in self.hosts:
            raise ValueError(f"no host {host!r} in this world")
        guest = FakeGuest(name, host, **facts)  # type: ignore[arg-type]
        with self.lock:
            self.guests[name] = guest
        return guest

    def host_of(self, guest: str) -> str | None:
        with self.lock:
            found = self.guests.get(guest)
            return None if found is None else found.host

    def connect(self, uri: str) -> FakeHypervisor:
        """The factory the advisor is given (`connect(uri)`), for URIs `fake://HOST`."""
        host = uri.removeprefix(SCHEME)
        if not uri.startswith(SCHEME) or host not in self.hosts:
            raise HypervisorError(f"cannot connect to {uri}: no such fake host")
        if host in self.down:
            raise HypervisorError(f"cannot connect to {uri}: Connection refused", Fault.UNREACHABLE)
        return FakeHypervisor(self, host)

    def kill(self, host: str) -> None:
        """The host dies with its guests: its hypervisor no longer answers, its guests run nowhere until restarted."""
        with self.lock:
            self.down.add(host)

    def launch(self, source: Hypervisor, guest: str, target: MigrationTarget,
               parameters: MigrationParameters) -> FakeMigration:
        """The executor's `launch`: start migrating `guest` off `source` without a thread (see FakeMigration)."""
        return self.connect(source.uri).start_migration(guest, target, parameters)

    def cold_result(self, guest: str, destination: str, elapsed_ms: float) -> MigrationResult:
        """How a cold move ends (the caller holds the lock): the guest runs on `destination`, or again on its
        source when the world fails the start there."""
        if self.fail_cold_start:
            return MigrationResult(False, error="start on the target: internal error: fake", total_time_ms=elapsed_ms,
                                   detail="started again on the source")
        self.guests[guest].host = destination
        forced = "forced off: it did not shut down within its timeout" if self.ignore_shutdown else ""
        return MigrationResult(True, total_time_ms=elapsed_ms, downtime_ms=elapsed_ms, transferred_mib=0.004,
                               detail=forced or "shut down by itself")


class FakeHypervisor:
    def __init__(self, world: FakeWorld, host: str) -> None:
        self.world = world
        self.host = host

    @property
    def uri(self) -> str:
        return SCHEME + self.host

    def _guest(self, name: str) -> FakeGuest:
        guest = self.world.guests.get(name)
        if guest is None or guest.host != self.host:
            raise HypervisorError(f"guest {name!r} on {self.uri}: Domain not found")
        return guest

    def host_facts(self) -> HostFacts:
        w = self.world
        return HostFacts(f"uuid-{self.host}", self.host, w.cpu_cores, w.memory_mib, w.cpu_model, w.networks)

    def guests(self) -> list[GuestFacts]:
        with self.world.lock:
            return [GuestFacts(g.name, f"uuid-{g.name}", g.memory_mib, g.vcpus, True, networks=g.networks)
                    for g in self.world.guests.values() if g.host == self.host]

    def definition(self, guest: str) -> GuestDefinition:
        with self.world.lock:
            found = self._guest(guest)
            return GuestDefinition(f"<domain><name>{found.name}</name><memory unit='MiB'>{found.memory_mib}</memory>"
                                   "</domain>", True)

    def restart(self, guest: str, definition: GuestDefinition) -> None:
        with self.world.lock:
            found = self.world.guests.get(guest)
            if found is None or f"<name>{guest}</name>" not in definition.xml:
                raise HypervisorError(f"restart {guest!r} on {self.uri}: not a definition of it")
            if found.host == self.host:
                raise HypervisorError(f"guest {guest!r} already runs on {self.uri}")
            if found.host not in self.world.down:  # libvirt would start a second copy on the same disks
                raise HypervisorError(f"fake: {guest!r} still runs on {found.host}, which is up")
            self.world.calls.append(f"restart {guest}")
            found.host = self.host

    def guest_pulse(self, guest: str) -> GuestPulse:
        with self.world.lock:
            found = self._guest(guest)
            self.world.calls.append(f"pulse {guest}")
            cpu_s = found.cpu_ratio * found.vcpus * (time.monotonic() - self.world._started)
            if found.answers:
                return GuestPulse(True, "running", cpu_s, Agent.ANSWERED)
            return GuestPulse(True, "running", cpu_s, Agent.SILENT, "Guest agent is not responding")

    def guest_stats(self) -> list[GuestStats]:
        now = time.time()
        age = time.monotonic() - self.world._started
        with self.world.lock:
            return [GuestStats(g.name, now, g.cpu_ratio * g.vcpus * age, g.vcpus, g.memory_used_mib,
                               {disk: rate * age for disk, rate in g.disk_write_rate_mib_s.items()},
                               g.resident_memory_mib)
                    for g in self.world.guests.values() if g.host == self.host]

    def measure_dirty_rate(self, guest: str, seconds: int = 1) -> float:
        with self.world.lock:
            found = self._guest(guest)
            if guest in self.world._jobs:
                raise HypervisorError(f"guest {guest!r} has a job running (migrating?): not measuring now")
            return found.dirty_rate_mib_s

    def migrate(self, guest: str, target: MigrationTarget, parameters: MigrationParameters) -> MigrationResult:
        job = self.start_migration(guest, target, parameters)
        while job.running():
            job.wait(0.005)
        return job.result()

    def start_migration(self, guest: str, target: MigrationTarget, parameters: MigrationParameters) -> FakeMigration:
        w = self.world
        with w.lock:
            try:
                found = self._guest(guest)
            except HypervisorError as error:
                return FakeMigration(w, guest, MigrationResult(False, error=str(error)))
            destination = target.uri.removeprefix(SCHEME)
            if destination not in w.hosts or destination == self.host:
                refused = MigrationResult(False, error=f"cannot migrate {guest!r} to {target.uri}")
                return FakeMigration(w, guest, refused)
            cold = parameters.technique is Technique.COLD
            w._jobs[guest] = _Job(w.clock(), float(found.memory_mib), cold=cold)
            w.running += 1
            w.most_running = max(w.most_running, w.running)
            w.calls.append(f"{'cold move' if cold else 'migrate'} {guest}")
        return FakeMigration(w, guest, destination=destination)

    def cold_move(self, guest: str, target: MigrationTarget, parameters: MigrationParameters) -> MigrationResult:
        return self.migrate(guest, target, parameters)

    def progress(self, guest: str) -> Progress | None:
        if self.world.fail_polls:
            raise HypervisorError("connection reset", Fault.CONNECTION_LOST)
        with self.world.lock:
            job = self.world._jobs.get(guest)
            if job is None or job.cold:
                return None
            elapsed_s = self.world.clock() - job.started
            done = min(1.0, elapsed_s / max(self.world.migration_s, 1e-6))
            remaining = job.total_mib * (1.0 - done) / 2
            return Progress(elapsed_s * 1000, job.total_mib, remaining, 1.0, 100.0, 1, in_postcopy=job.postcopy,
                            transferred_mib=job.total_mib - remaining)

    def set_max_downtime(self, guest: str, downtime_ms: float) -> None:
        self.world.calls.append(f"downtime {downtime_ms:.0f}")

    def set_max_speed(self, guest: str, mib_s: float) -> None:
        self.world.calls.append(f"speed {mib_s:.0f}")

    def start_postcopy(self, guest: str) -> None:
        with self.world.lock:
            job = self.world._jobs.get(guest)
            if job is None:
                raise HypervisorError(f"switch {guest!r} to post-copy: no migration job")
            if self.world.refuse_postcopy > 0:
                self.world.refuse_postcopy -= 1
                raise HypervisorError(f"switch {guest!r} to post-copy: not yet (the job is not under way)",
                                      Fault.REFUSED)
            job.postcopy = True
            self.world.calls.append("postcopy")

    def abort(self, guest: str) -> None:
        with self.world.lock:
            job = self.world._jobs.get(guest)
            self.world.calls.append(f"abort {guest}")
            if job is None:
                raise HypervisorError(f"abort the job of {guest!r}: no job")
            job.aborted = True

    def close(self) -> None: ...


class FakeMigration:
    """One migration in a fake world. It runs until aborted, or until the world lets it end (`release`) and
    `migration_s` has passed on the world's clock; asking for its result ends it: the guest moves if it succeeded."""

    def __init__(self, world: FakeWorld, guest: str, ended: MigrationResult | None = None, *,
                 destination: str = "") -> None:
        self._world, self._guest, self._ended, self._destination = world, guest, ended, destination

    def running(self) -> bool:
        w = self._world
        with w.lock:
            job = w._jobs.get(self._guest)
            if self._ended is not None or job is None or job.aborted:
                return False
            return not (w.release.is_set() and w.clock() - job.started >= w.migration_s)

    def wait(self, seconds: float) -> None:
        self._world.sleep(seconds)

    def result(self) -> MigrationResult:
        if self._ended is not None:
            return self._ended
        w = self._world
        with w.lock:
            job = w._jobs.pop(self._guest)
            w.running -= 1
            elapsed_ms = (w.clock() - job.started) * 1000
            if job.aborted:
                self._ended = MigrationResult(False, error="operation aborted: canceled by client",
                                              total_time_ms=elapsed_ms, fault=Fault.CANCELLED)
            elif job.cold:
                self._ended = w.cold_result(self._guest, self._destination, elapsed_ms)
            else:
                w.guests[self._guest].host = self._destination
                self._ended = MigrationResult(True, total_time_ms=elapsed_ms, downtime_ms=20.0,
                                              transferred_mib=job.total_mib, iterations=1 if job.postcopy else 3,
                                              postcopy_requests=4 if job.postcopy else 0)
        return self._ended
