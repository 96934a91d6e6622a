"""What the advisor needs from a hypervisor host, named for intent. The libvirt adapter implements it; tests of
pure logic can use a fake, but migrations are only claimed to work against real libvirt daemons (the lab)."""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from advisor.domain.errors import AdvisorError
from advisor.domain.failures import Failure, Fault, Side, failure_of
from advisor.domain.migration import MigrationResult, Progress
from advisor.domain.model import Disk, MigrationParameters


class HypervisorError(Exception):
    """A hypervisor call failed; the message carries the hypervisor's own words, `fault` what the adapter made of
    them, `peer` whether it lay between the host called and the other host (failures.failure_of)."""

    def __init__(self, message: str, fault: Fault = Fault.OTHER, *, peer: bool = False) -> None:
        super().__init__(message)
        self.fault = fault
        self.peer = peer


class UriRefused(HypervisorError):
    """The advisor refused to connect to a URI its allow-list does not name; nothing was contacted, and the
    words are the advisor's own."""


@dataclass(frozen=True)
class HostFacts:
    uuid: str
    hostname: str
    cpu_cores: int
    memory_mib: int
    cpu_model: str
    # Networks the host offers its guests as the hypervisor reports them (its active networks, their bridges and
    # its active interfaces), by name.
    networks: tuple[str, ...] = ()
    # Free space for guests' local disks (its local storage pools); None: not known.
    local_disk_free_mib: float | None = None


@dataclass(frozen=True)
class GuestFacts:
    name: str
    uuid: str
    memory_mib: int
    vcpus: int
    running: bool
    # True while the guest is paused on this host because it moved on in post-copy or is being migrated in.
    migrating: bool = False
    # Networks its interfaces use, by name (a libvirt network, a bridge, a host interface for macvtap).
    networks: tuple[str, ...] = ()
    # The disks it writes, with their sizes and whether each is shared (the write rate is not read here).
    disks: tuple[Disk, ...] = ()


class Agent(enum.Enum):
    """What a guest's agent said to a ping: it has none (no agent channel), it answered, or it did not."""

    NONE = "none"
    ANSWERED = "answered"
    SILENT = "silent"


@dataclass(frozen=True)
class GuestPulse:
    """One look at a guest on a host: whether it runs (and its state in words), its vCPUs' cumulative time (None:
    not reported), and its guest agent's answer to a ping, with the hypervisor's words when it did not answer."""

    running: bool
    state: str
    vcpu_time_s: float | None
    agent: Agent = Agent.NONE
    agent_error: str = ""


@dataclass(frozen=True)
class GuestStats:
    """Cumulative CPU time, current memory use, cumulative disk writes and the resident memory of its QEMU process
    of a running guest, read at `time_s`."""

    name: str
    time_s: float
    cpu_time_s: float
    vcpus: int
    # Memory the guest uses as a migration sees it (balloon: current - usable, RAM less MemAvailable), if reported.
    memory_used_mib: float | None
    # MiB written to each disk since the guest started, by its device name ("vda"), where the hypervisor counts it.
    disk_written_mib: Mapping[str, float] = field(default_factory=dict)
    # MiB resident in the guest's QEMU process (libvirt's memoryStats `rss`), if reported (None: not, never 0).
    resident_memory_mib: float | None = None


@dataclass(frozen=True)
class GuestDefinition:
    """What a guest is made of, as its hypervisor defines it (libvirt's domain XML, migratable: without what only
    its current host knows), and whether it is defined for good (persistent) or only while it runs (transient):
    enough to define and start it on another host that reaches its disks."""

    xml: str
    persistent: bool


@dataclass(frozen=True)
class MigrationTarget:
    """Where a guest goes: the target's hypervisor URI, the address its QEMU listens on for the memory
    stream (empty: the hypervisor picks), and whether the host offers TLS for migration (Host.migration_tls)."""

    uri: str
    migration_address: str = ""
    tls: bool = False


class Hypervisor(Protocol):
    """One hypervisor host."""

    @property
    def uri(self) -> str: ...

    def host_facts(self) -> HostFacts: ...

    def guests(self) -> list[GuestFacts]: ...

    def guest_stats(self) -> list[GuestStats]:
        """CPU time and memory use of every running guest, in one call."""
        ...

    def measure_dirty_rate(self, guest: str, seconds: int = 1) -> float:
        """MiB/s the guest dirtied over `seconds`; refuses while the guest migrates (it would disturb it)."""
        ...

    def migrate(self, guest: str, target: MigrationTarget, parameters: MigrationParameters) -> MigrationResult:
        """Run a live migration to the end (blocking); steer it meanwhile from another thread."""
        ...

    def cold_move(self, guest: str, target: MigrationTarget, parameters: MigrationParameters) -> MigrationResult:
        """Move a guest cold, to the end (blocking): define it on the target from this host's definition, shut it
        down (forced off after `parameters.shutdown_timeout_ms`), copy its disks that are not shared (none today),
        remove its definition here and start it there. Downtime is from the shutdown until it runs on the
        target; the data, its definition. A failure leaves the guest defined on one host, started again where it
        ran when it can be, and the result's `detail` says which ("the source", "the target") and how it is."""
        ...

    def progress(self, guest: str) -> Progress | None:
        """The running migration's progress; None when no migration job runs."""
        ...

    def guest_pulse(self, guest: str) -> GuestPulse:
        """Look at a guest here once: its state, its vCPU time, and a ping of its guest agent where it has one
        (bounded by a few seconds)."""
        ...

    def definition(self, guest: str) -> GuestDefinition:
        """The guest's definition as this host has it, to restart it elsewhere if this host dies."""
        ...

    def restart(self, guest: str, definition: GuestDefinition) -> None:
        """Define the guest here from `definition` (as persistent or transient as it was) and start it: a restart
        of a guest whose host is down, not a migration. Refuses a guest already defined and running here."""
        ...

    def set_max_downtime(self, guest: str, downtime_ms: float) -> None: ...

    def set_max_speed(self, guest: str, mib_s: float) -> None: ...

    def start_postcopy(self, guest: str) -> None: ...

    def abort(self, guest: str) -> None: ...

    def close(self) -> None: ...


log = logging.getLogger("advisor.execution")


def failure_of_error(error: Exception, called: Side) -> Failure:
    """The class of an error met calling the `called` host's hypervisor (or refusing to)."""
    if isinstance(error, AdvisorError | UriRefused):
        return Failure.REFUSED_BY_ADVISOR
    if isinstance(error, HypervisorError):
        return failure_of(error.fault, called, peer=error.peer)
    return Failure.HYPERVISOR_ERROR


def incident(error: str) -> str:
    """Log a hypervisor's words under a new incident id, which is returned for the reader."""
    ident = uuid.uuid4().hex[:8]
    log.warning("hypervisor error", extra={"incident": ident, "error": error})
    return ident


def public(error: Exception) -> str:
    """What a client may read of an error. The advisor's own errors say what they say; a hypervisor's words can
    carry what the caller must not see (a file's first line from a crafted URI, addresses, paths), so they stay
    in the log under an incident id that the client gets instead."""
    if isinstance(error, AdvisorError | UriRefused):
        return str(error)
    what = error.fault.words if isinstance(error, HypervisorError) else Fault.OTHER.words
    return f"{what} (incident {incident(str(error))}; details in the advisor's log)"
