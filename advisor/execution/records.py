"""What is kept of every migration: the plan, the prediction, the timeline of phases, the outcome."""

from __future__ import annotations

from dataclasses import dataclass, field

from advisor.domain.model import MigrationCost, MigrationParameters
from advisor.execution.hypervisor import MigrationResult
from advisor.execution.monitor import Phase


@dataclass(frozen=True)
class TimelineEntry:
    at_ms: float  # since the operation was created
    phase: Phase
    message: str


@dataclass(frozen=True)
class MigrationRecord:
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

    @property
    def message(self) -> str:
        return self.timeline[-1].message if self.timeline else ""
