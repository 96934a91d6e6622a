"""Immutable values shared by every layer.

Units are in the names: memory in MiB, rates in MiB/s, durations in ms, CPU utilisation as a ratio in [0, 1].
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from advisor.domain.assessments import HostAssessment

PAGE_SIZE_BYTES = 4096
MIB = 1 << 20
# QEMU's own default allowed downtime, and the one the shared SNU data was measured with.
DEFAULT_MAX_DOWNTIME_MS = 300.0
# 1 Gbit/s, the most common migration network, when a host does not say.
DEFAULT_NETWORK_BANDWIDTH_MIB_S = 1000 / 8 * 1e6 / MIB
_NO_NAMES: frozenset[str] = frozenset()  # the empty set of names every VM without any shares


class Technique(enum.StrEnum):
    """Migration techniques: the live ones named as in the shared SNU data set, and cold migration (shut the
    guest down, move its definition, start it on the target: the whole move is downtime)."""

    PRECOPY = "precopy"
    PRECOPY_AUTOCONVERGE = "precopy_autoconverge"
    PRECOPY_XBZRLE = "precopy_xbzrle"
    PRECOPY_COMPRESS = "precopy_compress"
    POSTCOPY = "postcopy"
    COLD = "cold"

    @property
    def is_live(self) -> bool:
        return self is not Technique.COLD

    @property
    def is_precopy(self) -> bool:
        return self not in (Technique.POSTCOPY, Technique.COLD)


@dataclass(frozen=True)
class Host:
    id: str
    cpu_cores: int
    memory_mib: int
    cpu_model: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    in_maintenance: bool = False
    # Bandwidth of the host's migration network; the slower end of a pair bounds a migration.
    network_bandwidth_mib_s: float = DEFAULT_NETWORK_BANDWIDTH_MIB_S
    hypervisor_uri: str = ""
    migration_address: str = ""
    idle_power_w: float = 0.0
    max_power_w: float = 0.0
    # The host's hypervisor can carry migration data over TLS (its QEMU has the migration certificates, as
    # libvirt's qemu.conf `migrate_tls_x509_cert_dir` gives them): it may be either end of an encrypted migration.
    migration_tls: bool = False
    # Networks offered to guests, by name (libvirt networks, bridges, VLANs, SR-IOV pools): a VM moves only to a
    # host offering every network it uses.
    networks: frozenset[str] = frozenset()
    # Free space where the host keeps local disks (its default storage pool or images directory); None: unknown,
    # then a target is not judged on it.
    local_disk_free_mib: float | None = None


@dataclass(frozen=True)
class Disk:
    """One of a VM's disks. A shared disk (network or cluster storage every host reaches) stays where it is when the
    VM moves; a local one (a file or volume on its host) is copied with it, by libvirt's block migration for a live
    move and while the guest is off for a cold one."""

    # The guest's device name, as libvirt's `<target dev=...>` gives it ("vda", "sdb"): what `migrate_disks` names.
    target: str
    # Its virtual size (what the guest sees) and the space its blocks take on the host (what a copy sends).
    size_mib: float
    used_mib: float
    shared: bool
    # MiB/s the guest writes to it, as measured (blocks rewritten during a copy are sent again); None: not measured.
    write_rate_mib_s: float | None = None


@dataclass(frozen=True, slots=True)
class Vm:
    id: str
    host_id: str
    memory_mib: int
    vcpus: int
    labels: Mapping[str, str] = field(default_factory=dict)
    # VMs sharing an affinity group prefer one host; sharing an anti-affinity group, they must be on distinct hosts.
    affinity_groups: frozenset[str] = frozenset()
    anti_affinity_groups: frozenset[str] = frozenset()
    # CPU model the guest was started with; "" means any host will do.
    cpu_model: str = ""
    # Devices such as VFIO pass-through forbid post-copy; so may the owner.
    postcopy_allowed: bool = True
    # Networks its interfaces use, by the names hosts offer them under (Host.networks).
    networks: frozenset[str] = frozenset()
    # Its disks; none listed means every disk is shared (what the advisor assumed before disks were reported).
    disks: tuple[Disk, ...] = ()

    def __post_init__(self) -> None:  # hundreds of thousands are kept: a host's VMs share its id's string (issue 17)
        object.__setattr__(self, "host_id", sys.intern(self.host_id))
        for name in ("affinity_groups", "anti_affinity_groups", "networks"):
            if not getattr(self, name):
                object.__setattr__(self, name, _NO_NAMES)

    @property
    def local_disks(self) -> tuple[Disk, ...]:
        return tuple(d for d in self.disks if not d.shared)

    @property
    def local_disk_size_mib(self) -> float:
        """Space its local disks may take on a target: their virtual size (a copied thin disk grows up to it)."""
        return sum(d.size_mib for d in self.local_disks)


# A VM's label by which an SRE forbids post-copy for it (planning.technique prices and forbids post-copy).
POSTCOPY_LABEL = "advisor.postcopy"
POSTCOPY_FORBIDDEN = "forbidden"


def label_forbids_postcopy(vm_labels: Mapping[str, str]) -> bool:
    return vm_labels.get(POSTCOPY_LABEL) == POSTCOPY_FORBIDDEN


# A VM's label by which an SRE asks for a technique (only cold is honoured: `advisor.technique=cold`, e.g. for a
# guest whose devices forbid live migration).
TECHNIQUE_LABEL = "advisor.technique"


def label_asks_cold(vm_labels: Mapping[str, str]) -> bool:
    return vm_labels.get(TECHNIQUE_LABEL) == Technique.COLD.value


@dataclass(frozen=True, slots=True)
class HostSample:
    host_id: str
    time_s: float
    cpu_utilization: float | None = None
    memory_used_mib: float | None = None
    network_rx_mib_s: float | None = None
    network_tx_mib_s: float | None = None
    power_w: float | None = None
    load_per_cpu: float | None = None  # runnable threads per CPU (1-minute load / CPUs): past 1, threads wait


@dataclass(frozen=True, slots=True)
class VmSample:
    vm_id: str
    time_s: float
    # Fraction of the VM's own vCPUs in use.
    cpu_utilization: float | None = None
    memory_used_mib: float | None = None
    dirty_rate_mib_s: float | None = None
    # MiB the guest rewrote over a longer page-sampling window (several seconds): a lower bound of its writable
    # working set, which decides whether pre-copy can converge.
    working_set_mib: float | None = None
    # MiB/s it writes to its local disks (summed), from the hypervisor's block statistics: what a disk mirror sends
    # again while it copies them. Newer than (and preferred to) the inventory's Disk.write_rate_mib_s.
    disk_write_rate_mib_s: float | None = None
    # MiB resident in the guest's QEMU process on its host (libvirt's memoryStats `rss`): the guest pages it touched
    # plus QEMU's own, from which the first pass is estimated (MigrationInputs.resident_memory_mib).
    resident_memory_mib: float | None = None


@dataclass(frozen=True)
class Interval:
    """A predicted quantity: its median and the bounds of its interval (p10 and p90 for the learned models)."""

    low: float
    median: float
    high: float

    def __post_init__(self) -> None:
        if not self.low <= self.median <= self.high:
            raise ValueError(f"interval out of order: {self.low} <= {self.median} <= {self.high}")

    @staticmethod
    def exact(value: float) -> Interval:
        return Interval(value, value, value)


@dataclass(frozen=True)
class ModelRef:
    """Which model made a prediction. `fallback_reason` is set when a better model was wanted but refused."""

    name: str
    version: str
    interval_kind: str = ""
    fallback_reason: str = ""


@dataclass(frozen=True)
class MigrationInputs:
    """What a cost prediction is made from; every field is something production can observe."""

    memory_mib: float
    dirty_rate_mib_s: float
    bandwidth_mib_s: float
    max_bandwidth_mib_s: float
    max_downtime_ms: float = 300.0
    dirty_rate_source: str = ""  # where the dirty rate came from, e.g. "request override"
    # A burst the guest may reach during the migration (the p90 of the dirty-rate forecast), if one is expected.
    burst_dirty_rate_mib_s: float | None = None
    # False when nothing measured the dirty rate, or the measurement was blind (a busy guest read ~0: see
    # advisor.physics.measurement): it is then a pessimistic assumption, not an observation.
    dirty_rate_known: bool = True
    # True when a busy guest's reading is at page sampling's floor (advisor.physics.at_floor_dirty_rate): measured,
    # but the physics takes it as blind.
    dirty_rate_at_floor: bool = False
    # The VM's configured memory, when known; memory_mib is what is copied (memory in use where measured, since
    # QEMU skips zero pages), and memory_source says which.
    memory_configured_mib: float | None = None
    memory_source: str = ""
    # MiB the guest rewrites over a longer window (page sampling over several seconds): a measure of its
    # writable working set, which decides whether pre-copy can converge; None when not measured.
    working_set_mib: float | None = None
    # MiB of guest memory measured as non-zero or touched before the migration (what QEMU's first pass sends);
    # None when not measured, then the first pass is estimated from memory_mib (advisor.physics.first_pass_mib).
    nonzero_memory_mib: float | None = None
    # MiB resident in the guest's QEMU process (libvirt's memoryStats `rss`): the guest pages it touched, freed ones
    # included, plus QEMU's own; None when not measured (advisor.physics.first_pass_mib reads it).
    resident_memory_mib: float | None = None
    deadline_ms: float = 0.0  # the migration must end within this (0: none); convergence is predicted within it
    # Which hosts the prediction is for ("snu", "lab", ...; "" the model's default): the learned models are
    # calibrated per host profile.
    host_profile: str = ""
    # What bandwidth_mib_s is: the link's speed less the traffic the hosts' samples show on it, or the link's
    # speed where no sample says, or the request's figure.
    bandwidth_source: str = ""
    # The VM's local disks, copied with it (advisor.physics.disk): MiB their blocks take (what the copy sends),
    # their size (the most blocks the guest can rewrite), and the MiB/s the guest writes to them (None: not
    # measured). 0 MiB: every disk is shared, nothing copied.
    local_disk_used_mib: float = 0.0
    local_disk_size_mib: float = 0.0
    disk_write_rate_mib_s: float | None = None
    # Runnable threads per CPU on the busier host (None: not measured): past 1 the migration waits for cores.
    load_per_cpu: float | None = None

    @property
    def usable_bandwidth_mib_s(self) -> float:
        return min(self.bandwidth_mib_s, self.max_bandwidth_mib_s)


@dataclass(frozen=True)
class MigrationCost:
    technique: Technique
    total_time_ms: Interval
    downtime_ms: Interval
    transferred_mib: Interval
    # Whether the migration is expected to finish within the allowed downtime (and the deadline, when one is
    # given) by itself. Post-copy ends once every page is sent: False for it only when a deadline is shorter than
    # that one pass.
    converges: bool
    model: ModelRef
    notes: tuple[str, ...] = ()
    # The probability of that, where a model predicts one (None: only the yes/no above is known).
    converge_probability: float | None = None


class PlanGoal(enum.StrEnum):
    """What a cluster plan is for; a drain also names its host (apart, not in the goal)."""

    REBALANCE = "rebalance"
    CONSOLIDATE = "consolidate"
    DRAIN = "drain"
    # Restart elsewhere the VMs of a host that is down (advisor.planning.engine.evacuate).
    EVACUATE = "evacuate"

    @property
    def names_host(self) -> bool:
        return self in (PlanGoal.DRAIN, PlanGoal.EVACUATE)

    def label(self, host_id: str) -> str:
        """The goal as a recommendation shows it: "drain:<host>" for a drain, "evacuate:<host>"."""
        return f"{self}:{host_id}" if self.names_host else str(self)


@dataclass(frozen=True)
class Objective:
    """What the operator wants from a migration: limits rather than knobs.

    `max_downtime_ms` is always a limit, enforced on the technique and on every planned move (unset in a request
    means QEMU's default, 300 ms; a limit must be above 0). `deadline_ms` 0 means no deadline."""

    max_downtime_ms: float = DEFAULT_MAX_DOWNTIME_MS
    deadline_ms: float = 0.0
    minimize_transferred: bool = False


class MoveKind(enum.StrEnum):
    """What a move does: migrate a running guest, or restart on another host a guest whose host is down (its
    definition defined and started there; nothing is copied, its storage must be shared)."""

    MIGRATE = "migrate"
    RESTART = "restart"


@dataclass(frozen=True)
class MigrationParameters:
    technique: Technique  # a restart's is cold's (its last steps), and `kind` says it is not a migration
    bandwidth_mib_s: float
    max_downtime_ms: float
    # Switch a pre-copy to post-copy after this long; None never switches.
    postcopy_after_ms: float | None = None
    # Abort (or, once in post-copy, let finish) after this long; 0 means no deadline.
    deadline_ms: float = 0.0
    autoconverge_initial_pct: int = 20
    autoconverge_increment_pct: int = 10
    compression_threads: int = 0
    # Speed cap once in post-copy (0: none). Set to the bandwidth the post-copy cost was predicted at, so that
    # what runs is what was predicted.
    postcopy_bandwidth_mib_s: float = 0.0
    # Carry the migration data over TLS (libvirt's VIR_MIGRATE_TLS): both hosts must offer it (Host.migration_tls).
    tls: bool = False
    # Cold migration: how long the guest is given to shut down by itself before it is forced off (0: live).
    shutdown_timeout_ms: float = 0.0
    kind: MoveKind = MoveKind.MIGRATE
    # The VM's local disks (their target names) that move with it: copied by libvirt's block migration (an NBD
    # mirror) for a live move, while the guest is off for a cold one. Empty: every disk is shared.
    migrate_disks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Move:
    vm_id: str
    source_host_id: str
    target_host_id: str
    parameters: MigrationParameters
    predicted_cost: MigrationCost
    reasons: tuple[str, ...]
    # The chosen target and the best other eligible hosts (the full list of every host assessed is stored apart
    # and paged through ListHostAssessments); the rejected hosts counted by filter: (filter, hosts, an example).
    assessments: tuple[HostAssessment, ...] = ()
    rejection_counts: tuple[tuple[str, int, str], ...] = ()
    hosts_assessed: int = 0
    # What the predicted cost was made from: kept so that the outcome can be learned from.
    inputs: MigrationInputs | None = None


@dataclass(frozen=True)
class DirtyRateForecast:
    """The dirty rate expected over the next `horizon_s` seconds (MiB/s), as a forecaster predicts it.

    `mean_mib_s` is the forecast mean over the horizon, `p90_mib_s` its 90th percentile (bursts), `interval` an
    (about 80 %) interval for the mean. Ordered: low <= mean <= high and mean <= p90.
    """

    mean_mib_s: float
    p90_mib_s: float
    interval: tuple[float, float]
    samples_used: int
    window_s: float
    model: ModelRef
    horizon_s: float

    def describe(self) -> str:
        text = (f"dirty rate {self.mean_mib_s:.1f} MiB/s (p90 {self.p90_mib_s:.1f}) forecast by "
                f"{self.model.name} {self.model.version} from {self.samples_used} samples over "
                f"{self.window_s:.0f} s")
        if self.model.fallback_reason:
            text += f" (fallback: {self.model.fallback_reason})"
        return text
