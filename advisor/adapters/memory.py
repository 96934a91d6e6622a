"""Everything the use cases are given, in memory: the stores of advisor.usecases.ports (and of the executor), a
clock that moves only when told, and ids counted from 1.

It keeps what SQLite keeps and answers as it does (tests/contract/test_stores.py runs the same tests on both), so
tests of the use cases run as values: no database, no threads, no sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from advisor.domain.assessments import AssessedHosts, HostAssessment
from advisor.domain.automation import ClusterAutomation
from advisor.domain.cluster import InventoryChange
from advisor.domain.migration import MigrationRecord, Phase
from advisor.domain.model import Host, Vm
from advisor.domain.recommendation import OPEN, OpenRecommendation, Recommendation, RecommendationState

# Operations that moved or may still move their VM.
_MOVING = frozenset(p for p in Phase if p not in (Phase.FAILED, Phase.ABORTED))


def _newest_first(created_at_s: float, ident: str, after: tuple[float, str] | None) -> bool:
    """Whether an item comes after `after` in a newest-first listing ordered by (time, id)."""
    return after is None or (created_at_s, ident) < after


class MemoryStore:
    """Inventory, recommendations with their assessments, migrations, outcomes and automation settings."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, Host] = {}
        self._vms: dict[str, Vm] = {}
        self._recommendations: dict[str, Recommendation] = {}
        self._assessments: dict[tuple[str, int], list[HostAssessment]] = {}
        self._migrations: dict[str, MigrationRecord] = {}
        self._outcomes: dict[str, MigrationRecord] = {}
        self._automation: dict[str, ClusterAutomation] = {}

    # -- inventory -----------------------------------------------------------------------------------------

    def load_inventory(self) -> tuple[list[Host], list[Vm]]:
        with self._lock:
            return sorted(self._hosts.values(), key=lambda h: h.id), sorted(self._vms.values(), key=lambda v: v.id)

    def apply_inventory(self, change: InventoryChange) -> None:
        with self._lock:
            for vm_id in change.removed_vm_ids:
                self._vms.pop(vm_id, None)
            for host_id in change.removed_host_ids:
                self._hosts.pop(host_id, None)
            self._hosts.update((h.id, h) for h in change.hosts)
            self._vms.update((v.id, v) for v in change.vms)

    # -- recommendations -----------------------------------------------------------------------------------

    def add_recommendation(
        self, rec: Recommendation, assessments: Mapping[int, Sequence[HostAssessment] | AssessedHosts] | None = None
    ) -> None:
        with self._lock:
            if rec.id in self._recommendations:
                raise ValueError(f"recommendation {rec.id!r} is already stored")
            self._recommendations[rec.id] = replace(rec, revision=0)
            for index, found in (assessments or {}).items():
                self._assessments[(rec.id, index)] = found.rows() if isinstance(found, AssessedHosts) else list(found)

    def list_assessments(self, rec_id: str, move_index: int) -> list[HostAssessment] | None:
        with self._lock:
            found = self._assessments.get((rec_id, move_index))
        return None if found is None else list(found)

    def replace_recommendation(self, before: Recommendation, after: Recommendation) -> Recommendation | None:
        with self._lock:
            stored = self._recommendations.get(before.id)
            if stored is None or stored.revision != before.revision:
                return None
            self._recommendations[before.id] = replace(after, revision=before.revision + 1)
            return self._recommendations[before.id]

    def get_recommendation(self, rec_id: str) -> Recommendation | None:
        with self._lock:
            return self._recommendations.get(rec_id)

    def list_recommendations(
        self, state: RecommendationState | None, limit: int, after: tuple[float, str] | None = None
    ) -> list[Recommendation]:
        with self._lock:
            found = [r for r in self._recommendations.values()
                     if (state is None or r.state is state) and _newest_first(r.created_at_s, r.id, after)]
        found.sort(key=lambda r: (r.created_at_s, r.id), reverse=True)
        return found[:limit]

    def review_backlog(self) -> dict[tuple[str, int], int]:
        """How many recommendations wait for a person, by state (proposed or approved) and priority."""
        backlog: dict[tuple[str, int], int] = {}
        with self._lock:
            for r in self._recommendations.values():
                if r.state in (RecommendationState.PROPOSED, RecommendationState.APPROVED):
                    key = (r.state.value, r.priority.level)
                    backlog[key] = backlog.get(key, 0) + 1
        return backlog

    def open_recommendations(self, vm_ids: Collection[str]) -> list[OpenRecommendation]:
        wanted = set(vm_ids)
        with self._lock:
            found = [OpenRecommendation.of(r, moved) for r in self._recommendations.values()
                     if r.state in OPEN and (moved := frozenset(m.vm_id for m in r.moves) & wanted)]
        return sorted(found, key=lambda r: (r.created_at_s, r.id))

    def moved_since(self, since_s: float) -> set[str]:
        with self._lock:
            return {r.vm_id for r in self._migrations.values() if r.created_at_s >= since_s and r.phase in _MOVING}

    # -- migrations ----------------------------------------------------------------------------------------

    def insert_migration(self, record: MigrationRecord) -> MigrationRecord:
        with self._lock:
            for stored in self._migrations.values():
                if (stored.recommendation_id, stored.move_index, stored.attempt) == (
                        record.recommendation_id, record.move_index, record.attempt):
                    return stored
            self._migrations[record.operation_id] = record
        return record

    def save_migration(self, record: MigrationRecord) -> None:
        with self._lock:
            if record.operation_id in self._migrations:
                self._migrations[record.operation_id] = record

    def get_migration(self, operation_id: str) -> MigrationRecord | None:
        with self._lock:
            return self._migrations.get(operation_id)

    def unfinished_migrations(self) -> list[MigrationRecord]:
        with self._lock:
            return sorted((r for r in self._migrations.values() if not r.phase.final), key=lambda r: r.created_at_s)

    def list_migrations(self, *, running: bool, limit: int,
                        after: tuple[float, str] | None = None) -> list[MigrationRecord]:
        with self._lock:
            found = [r for r in self._migrations.values() if (not running or not r.phase.final)
                     and _newest_first(r.created_at_s, r.operation_id, after)]
        found.sort(key=lambda r: (r.created_at_s, r.operation_id), reverse=True)
        return found[:limit]

    def recent_migrations(self, since_s: float, limit: int) -> list[MigrationRecord]:
        with self._lock:
            found = [r for r in self._migrations.values() if r.created_at_s >= since_s and r.phase in _MOVING]
        found.sort(key=lambda r: r.created_at_s, reverse=True)
        return found[:limit]

    def migrations_of(self, recommendation_id: str) -> list[MigrationRecord]:
        with self._lock:
            found = [r for r in self._migrations.values() if r.recommendation_id == recommendation_id]
        return sorted(found, key=lambda r: (r.move_index, r.attempt))

    def record_outcome(self, record: MigrationRecord) -> None:
        with self._lock:
            self._outcomes[record.operation_id] = record

    def outcomes(self, since_s: float = 0.0) -> list[MigrationRecord]:
        with self._lock:
            found = [r for r in self._outcomes.values() if (r.finished_at_s or 0.0) >= since_s]
        return sorted(found, key=lambda r: r.finished_at_s or 0.0)

    # -- automation ----------------------------------------------------------------------------------------

    def automation(self) -> list[ClusterAutomation]:
        with self._lock:
            return sorted(self._automation.values(), key=lambda s: s.cluster)

    def set_automation(self, setting: ClusterAutomation) -> None:
        with self._lock:
            self._automation[setting.cluster] = setting


class ManualClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now_s: float = 1_767_225_600.0) -> None:  # 2026-01-01
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class CountingIds:
    """Ids `prefix1`, `prefix2`, ... in the order they are asked for: predictable in tests."""

    def __init__(self, prefix: str = "id") -> None:
        self._prefix = prefix
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            self._count += 1
            return f"{self._prefix}{self._count}"
