"""A migration as the advisor sees it: its phase, one poll of its progress, its final figures, and its record.

Values only. The monitor (advisor.execution.monitor) decides on them, the executor fills them in, storage keeps
them and the API shows them; none of those layers owns them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from advisor.domain.failures import Failure, Fault
from advisor.domain.model import MigrationCost, MigrationInputs, MigrationParameters


class Phase(enum.StrEnum):
    QUEUED = "queued"
    PRECOPY = "precopy"
    POSTCOPY = "postcopy"
    # A cold move under way: shutting down, moving the definition, starting on the target (no pre-copy stats).
    COLD = "cold"
    # A restart under way: the guest defined and started on its new host (no migration job, no statistics).
    RESTARTING = "restarting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def final(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED, Phase.ABORTED)


class GuestLocation(enum.Enum):
    """Where a guest runs once its migration ended, as both hosts tell."""

    SOURCE = "source"
    TARGET = "target"
    NOWHERE = "nowhere"
    BOTH = "both"  # both hosts run it: a split brain for an operator to resolve
    # Neither host was found running it and the source (or the target) could not be asked: where it runs is not
    # known (a source whose daemon died goes on running its guests in QEMU).
    SOURCE_UNREACHABLE = "source unreachable"
    TARGET_UNREACHABLE = "target unreachable"

    def describe(self, source_host_id: str, target_host_id: str) -> str:
        """As the timeline says it: "target hv2", "BOTH source hv1 and target hv2"."""
        match self:
            case GuestLocation.SOURCE:
                return f"source {source_host_id}"
            case GuestLocation.TARGET:
                return f"target {target_host_id}"
            case GuestLocation.NOWHERE:
                return "no host (not found running)"
            case GuestLocation.BOTH:
                return f"BOTH source {source_host_id} and target {target_host_id}"
            case GuestLocation.SOURCE_UNREACHABLE:
                return f"an unknown host (source {source_host_id} unreachable)"
            case GuestLocation.TARGET_UNREACHABLE:
                return f"an unknown host (target {target_host_id} unreachable)"


@dataclass(frozen=True)
class Progress:
    """One poll of the job statistics. Rates in MiB/s, memory in MiB."""

    elapsed_ms: float
    memory_total_mib: float
    memory_remaining_mib: float
    dirty_rate_mib_s: float
    transfer_rate_mib_s: float
    iteration: int
    in_postcopy: bool = False
    expected_downtime_ms: float = 0.0
    autoconverge_throttle_pct: float = 0.0
    postcopy_requests: int = 0
    # Memory sent so far, all rounds together.
    transferred_mib: float = 0.0
    # The local disks' mirror (a block migration; 0 without one): their total, what is left to copy (what the
    # guest wrote since included), and the rate the mirror copies at.
    disk_total_mib: float = 0.0
    disk_remaining_mib: float = 0.0
    disk_rate_mib_s: float = 0.0

    @property
    def mirroring(self) -> bool:
        """The local disks are being copied and memory has not started: libvirt moves memory once they are in
        sync."""
        return self.disk_total_mib > 0 and self.iteration == 0 and not self.in_postcopy


@dataclass(frozen=True)
class MigrationResult:
    """The final figures of a migration, from the hypervisor's completion event (or the last poll)."""

    succeeded: bool
    error: str = ""
    # None: not measured (a move that never started, a migration reconciled after a restart without a reading;
    # downtime: any job that did not complete), never taken as 0
    total_time_ms: float | None = None
    downtime_ms: float | None = None
    transferred_mib: float | None = None
    iterations: int = 0
    postcopy_requests: int = 0
    # The advisor's own words on how it went, safe to show where `error` (the hypervisor's words) is not: for a cold
    # move, whether the guest was forced off, and where a failure left it ("defined on the source, running").
    detail: str = ""
    # What the hypervisor adapter made of `error`, and whether it lay between the host called and its peer (see
    # failures.failure_of); then why the move failed, as shown (None while it has not, or if it succeeded).
    fault: Fault | None = None
    fault_peer: bool = False
    failure: Failure | None = None


@dataclass(frozen=True)
class TimelineEntry:
    at_ms: float  # since the operation was created
    phase: Phase
    message: str


@dataclass(frozen=True)
class MigrationRecord:
    """What is kept of every migration: the plan, the prediction, the timeline of phases, the outcome."""

    operation_id: str
    recommendation_id: str
    vm_id: str
    source_host_id: str
    target_host_id: str
    parameters: MigrationParameters
    predicted: MigrationCost
    created_at_s: float
    phase: Phase = Phase.QUEUED
    timeline: tuple[TimelineEntry, ...] = field(default_factory=tuple)
    outcome: MigrationResult | None = None
    finished_at_s: float | None = None
    actor: str = ""
    # Which move of the recommendation this operation runs (0 for a single-VM recommendation).
    move_index: int = 0
    # What the prediction was made from (training joins it with the outcome).
    inputs: MigrationInputs | None = None
    # 1 for the first execution of the move, 2 for its first retry, ...
    attempt: int = 1
    # The bandwidth (MiB/s) `predicted` was made at: the usable bandwidth of the inputs it was predicted from, at
    # the share of the links the executor gave it once it was predicted again; None where no inputs say.
    predicted_mib_s: float | None = None

    @property
    def message(self) -> str:
        return self.timeline[-1].message if self.timeline else ""
