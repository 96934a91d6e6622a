"""The small protocols the use cases are given: storage, the executor, the freshness check, and the clock and
id source as plain callables.

The SQLite adapter (advisor.adapters.sqlite) implements every store here, the memory adapter
(advisor.adapters.memory) too, for tests of the use cases as values.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Protocol

from advisor.domain.assessments import AssessedHosts, HostAssessment
from advisor.domain.automation import ClusterAutomation
from advisor.domain.cluster import InventoryChange
from advisor.domain.migration import MigrationRecord
from advisor.domain.model import Host, Move, Vm
from advisor.domain.recommendation import OpenRecommendation, Recommendation, RecommendationState
from advisor.execution.executor import MigrationStore, Watched

Clock = Callable[[], float]
NewId = Callable[[], str]


class InventoryStore(Protocol):
    def load_inventory(self) -> tuple[list[Host], list[Vm]]: ...

    def apply_inventory(self, change: InventoryChange) -> None:
        """Persist a whole change in one transaction."""
        ...


class RecommendationStore(Protocol):
    def add_recommendation(
        self, rec: Recommendation, assessments: Mapping[int, Sequence[HostAssessment] | AssessedHosts] | None = None
    ) -> None:
        """Store a new recommendation (revision 0), with the full list of hosts assessed for each move."""
        ...

    def list_assessments(self, rec_id: str, move_index: int) -> list[HostAssessment] | None:
        """Every host assessed for one move, in rank order; None when none is stored."""
        ...

    def replace_recommendation(self, before: Recommendation, after: Recommendation) -> Recommendation | None:
        """Compare-and-set: store `after` only if the stored revision is still `before.revision`; return it as
        stored (its revision bumped), or None when another writer got there first."""
        ...

    def get_recommendation(self, rec_id: str) -> Recommendation | None: ...

    def list_recommendations(
        self, state: RecommendationState | None, limit: int, after: tuple[float, str] | None = None
    ) -> list[Recommendation]:
        """Newest first; `after` is the (created_at_s, id) of the last item of the previous page."""
        ...

    def moved_since(self, since_s: float) -> set[str]:
        """VMs whose migration succeeded or is under way since `since_s`."""
        ...

    def open_recommendations(self, vm_ids: Collection[str]) -> list[OpenRecommendation]:
        """The open recommendations (proposed or approved) with a move of any of `vm_ids`, oldest first, each
        with those of `vm_ids` it moves."""
        ...


class AutomationStore(Protocol):
    def automation(self) -> list[ClusterAutomation]: ...

    def set_automation(self, setting: ClusterAutomation) -> None: ...


class MigrationRecords(MigrationStore, RecommendationStore, Protocol):
    """What the migrations use case needs of storage: migrations and recommendations."""

    def migrations_of(self, recommendation_id: str) -> list[MigrationRecord]: ...

    def record_outcome(self, record: MigrationRecord) -> None: ...

    def outcomes(self, since_s: float = 0.0) -> list[MigrationRecord]: ...

    def get_migration(self, operation_id: str) -> MigrationRecord | None: ...

    def list_migrations(self, *, running: bool, limit: int,
                        after: tuple[float, str] | None = None) -> list[MigrationRecord]: ...


class Execution(Protocol):
    """What the migrations use case asks of the executor (advisor.execution.executor.Executor)."""

    def submit(self, recommendation_id: str, move: Move, *, actor: str, move_index: int = 0,
               attempt: int = 1, operation_id: str = "") -> MigrationRecord: ...

    def get(self, operation_id: str) -> MigrationRecord: ...

    def abort(self, operation_id: str, reason: str, actor: str = "") -> MigrationRecord: ...

    def watch(self, operation_id: str, *, alive: Callable[[], bool]) -> Iterator[Watched]: ...

    def migrating_vms(self) -> frozenset[str]: ...


class FreshnessCheck(Protocol):
    """Whether a recommendation still holds (advisor.usecases.lifecycle.Freshness)."""

    def next_move(self, rec: Recommendation) -> int | None:
        """The move that would start next, or None."""
        ...

    def expire_if_stale(self, store: RecommendationStore, rec: Recommendation, index: int) -> str | None:
        """When move `index` no longer holds, store the recommendation expired and say why; None if it holds."""
        ...
