"""Migrations: execute a move of an approved recommendation, watch it, abort it; and what an ended migration
changes (the recommendation's state, where the VM runs, the metrics of predicted against actual).

The executor (advisor.execution.executor) runs the migrations; this module tells it where each host is and
listens to it (`MigrationOutcomes` is its ExecutionObserver).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Protocol

from advisor.domain import validation
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from advisor.domain.migration import MigrationRecord, Phase, Progress
from advisor.domain.recommendation import MovesEnded, Refusal, StartMove, transition
from advisor.execution.executor import Executor, HostEndpoint, MigrationStore, Watched
from advisor.execution.hypervisor import Hypervisor, MigrationTarget
from advisor.metrics import AdvisorMetrics
from advisor.ml.calibration import RunningErrors
from advisor.usecases.inventory import Inventory
from advisor.usecases.ports import Clock, RecommendationStore
from advisor.usecases.review import apply_event, get_recommendation

log = logging.getLogger("advisor.migrations")


class MigrationRecords(MigrationStore, RecommendationStore, Protocol):
    """What this module needs of storage: migrations and recommendations."""

    def migrations_of(self, recommendation_id: str) -> list[MigrationRecord]: ...

    def record_outcome(self, record: MigrationRecord) -> None: ...

    def outcomes(self, since_s: float = 0.0) -> list[MigrationRecord]: ...


def endpoints(inventory: Inventory, connect: Callable[[str], Hypervisor]) -> Callable[[str], HostEndpoint]:
    """How the executor reaches a host of the inventory: `connect(uri)` opens a hypervisor connection."""

    def endpoint(host_id: str) -> HostEndpoint:
        host = inventory.hosts().get(host_id)
        if host is None:
            raise NotFound("host_id", "host", host_id)
        if not host.hypervisor_uri:
            raise FailedPrecondition(f"host {host_id!r} has no hypervisor_uri: cannot execute on it")
        uri = host.hypervisor_uri
        return HostEndpoint(lambda: connect(uri), MigrationTarget(uri, host.migration_address))

    return endpoint


class Migrations:
    def __init__(self, store: MigrationRecords, executor: Executor | None, clock: Clock) -> None:
        self._store = store
        self._executor = executor
        self._clock = clock

    def _require_executor(self) -> Executor:
        if self._executor is None:
            raise FailedPrecondition("execution is not enabled on this advisor (no hypervisor access configured)")
        return self._executor

    def execute(self, rec_id: str, actor: str, move_index: int = 0) -> MigrationRecord:
        """Start one move of an approved recommendation. Idempotent: a second call returns the same operation."""
        executor = self._require_executor()
        rec = get_recommendation(self._store, rec_id, "recommendation_id")
        checked = transition(rec, StartMove(move_index), actor, self._clock())
        if isinstance(checked, Refusal):
            raise FailedPrecondition(checked.reason)
        if not 0 <= move_index < len(rec.moves):
            raise InvalidArgument("move_index", f"recommendation {rec_id} has {len(rec.moves)} move(s) "
                                                f"(got index {move_index})")
        record = executor.submit(rec.id, rec.moves[move_index], actor=actor, move_index=move_index)
        apply_event(self._store, rec.id, StartMove(move_index), actor, self._clock(), "recommendation_id")
        return record

    def operation(self, operation_id: str) -> MigrationRecord:
        validation.check_id(operation_id, "operation_id")
        return self._require_executor().get(operation_id)

    def abort(self, operation_id: str, reason: str, actor: str = "") -> MigrationRecord:
        validation.check_id(operation_id, "operation_id")
        validation.check_text(reason, "reason", 2048)
        return self._require_executor().abort(operation_id, reason, actor)

    def watch(self, operation_id: str, alive: Callable[[], bool] = lambda: True) -> Iterator[Watched]:
        validation.check_id(operation_id, "operation_id")
        return self._require_executor().watch(operation_id, alive=alive)

    def migrating_vms(self) -> frozenset[str]:
        return frozenset() if self._executor is None else self._executor.migrating_vms()


class MigrationOutcomes:
    """The executor's observer: exports progress, and when a migration ends, stores what it changed."""

    def __init__(self, store: MigrationRecords, inventory: Inventory, metrics: AdvisorMetrics, clock: Clock,
                 errors: RunningErrors | None = None) -> None:
        self._store = store
        self._inventory = inventory
        self._metrics = metrics
        self._clock = clock
        self.errors = errors or RunningErrors()
        for record in store.outcomes():  # the running error survives a restart
            if record.outcome is not None:
                self.errors.add(record.predicted, record.outcome)
        self._export_errors()

    def progress(self, record: MigrationRecord, progress: Progress) -> None:
        m = self._metrics
        m.migration_remaining_mib.labels(record.vm_id).set(progress.memory_remaining_mib)
        m.migration_dirty_rate.labels(record.vm_id).set(progress.dirty_rate_mib_s)
        m.migration_transfer_rate.labels(record.vm_id).set(progress.transfer_rate_mib_s)
        m.migration_iteration.labels(record.vm_id).set(progress.iteration)

    def finished(self, record: MigrationRecord) -> None:
        self._export(record)
        self._store.record_outcome(record)  # training data: what was predicted, from what, and what happened
        if self._store.get_recommendation(record.recommendation_id) is not None:

            def ended() -> MovesEnded:  # read again on every attempt: another move may end meanwhile
                phases = {op.move_index: op.phase for op in self._store.migrations_of(record.recommendation_id)}
                return MovesEnded({**phases, record.move_index: record.phase})

            apply_event(self._store, record.recommendation_id, ended, "advisor", self._clock())
        vm = self._inventory.vms().get(record.vm_id)
        if record.phase is Phase.SUCCEEDED and vm is not None and record.target_host_id in self._inventory.hosts():
            self._inventory.apply(InventoryChange(vms=(replace(vm, host_id=record.target_host_id),)))

    def _export_errors(self) -> None:
        m = self._metrics
        for e in self.errors.summary():
            m.prediction_error.labels(e.technique, e.quantity).set(e.median_ape)
            m.prediction_coverage.labels(e.technique, e.quantity).set(e.coverage)
            m.prediction_drift.labels(e.technique, e.quantity).set(1 if e.drift else 0)

    def _export(self, record: MigrationRecord) -> None:
        m = self._metrics
        technique = record.parameters.technique.value
        m.migrations.labels(technique, record.phase.value).inc()
        for gauge in (m.migration_remaining_mib, m.migration_dirty_rate, m.migration_transfer_rate,
                      m.migration_iteration):
            with contextlib.suppress(KeyError):  # never polled, e.g. aborted while queued
                gauge.remove(record.vm_id)
        outcome = record.outcome
        if record.phase is Phase.SUCCEEDED and outcome is not None:
            m.migration_seconds.labels(technique).observe(outcome.total_time_ms / 1000)
            predicted = record.predicted
            for target, actual, median in (
                ("total_time", outcome.total_time_ms, predicted.total_time_ms.median),
                ("downtime", outcome.downtime_ms, predicted.downtime_ms.median),
                ("transferred", outcome.transferred_mib, predicted.transferred_mib.median),
            ):
                if median > 0 and actual > 0:
                    m.prediction_ratio.labels(target).observe(actual / median)
            before = {(e.technique, e.quantity) for e in self.errors.summary() if e.drift}
            self.errors.add(predicted, outcome)
            self._export_errors()
            for e in self.errors.summary():
                if e.drift and (e.technique, e.quantity) not in before:
                    log.warning("prediction drift", extra={"technique": e.technique, "quantity": e.quantity,
                                                           "median_ape": round(e.median_ape, 3), "n": e.n,
                                                           "model": e.model})
