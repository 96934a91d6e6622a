"""The small protocols the use cases are given: storage, and the clock and id source as plain callables.

The SQLite adapter (advisor.adapters.sqlite) implements every store here; tests may use it on a temporary file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from advisor.domain.cluster import InventoryChange
from advisor.domain.model import AssessedHosts, Host, HostAssessment, Vm
from advisor.domain.recommendation import Recommendation, RecommendationState

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
