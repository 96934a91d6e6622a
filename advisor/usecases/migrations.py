"""Migrations: execute a move of an approved recommendation, watch it, abort it; and what an ended migration
changes (the recommendation's state, where the VM runs, the metrics of predicted against actual).

The executor (advisor.execution.executor) runs the migrations; this module tells it where each host is and
listens to it (`MigrationOutcomes` is its ExecutionObserver).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Protocol

from advisor.domain import validation
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import AdvisorError, FailedPrecondition, InvalidArgument, NotFound
from advisor.domain.ids import new_id
from advisor.domain.migration import MigrationRecord, MigrationResult, Phase, Progress
from advisor.domain.model import MigrationCost, MigrationInputs, MoveKind, Technique
from advisor.domain.recommendation import (
    RUNNABLE,
    Cancel,
    Expire,
    MoveEnded,
    MoveState,
    Recommendation,
    RecommendationState,
    Refusal,
    RunAll,
    StartMove,
    transition,
)
from advisor.domain.text import counted
from advisor.execution.executor import HostEndpoint, Watched
from advisor.execution.hypervisor import Hypervisor, MigrationTarget
from advisor.metrics import MIB_BYTES, AdvisorMetrics
from advisor.ml.adaptive_intervals import CellState
from advisor.ml.calibration import RunningErrors
from advisor.usecases.inventory import Inventory
from advisor.usecases.paging import decode_cursor, encode_token, page_size
from advisor.usecases.ports import Clock, Execution, FreshnessCheck, MigrationRecords, NewId
from advisor.usecases.records import apply_event, get_recommendation

log = logging.getLogger("advisor.migrations")
# Recommendations under way looked at after a restart.
MAX_RECONCILED = 5_000
# How long a request waits for a move another request started to reach the executor: 2 s in all.
HANDOVER_POLLS, HANDOVER_POLL_S = 40, 0.05


def endpoints(inventory: Inventory, connect: Callable[[str], Hypervisor]) -> Callable[[str], HostEndpoint]:
    """How the executor reaches a host of the inventory: `connect(uri)` opens a hypervisor connection."""

    def endpoint(host_id: str) -> HostEndpoint:
        with inventory.reading() as cluster:
            host = cluster.hosts.get(host_id)
        if host is None:
            raise NotFound("host_id", "host", host_id)
        if not host.hypervisor_uri:
            raise FailedPrecondition(f"host {host_id!r} has no hypervisor_uri: cannot execute on it")
        uri = host.hypervisor_uri
        return HostEndpoint(lambda: connect(uri), MigrationTarget(uri, host.migration_address, host.migration_tls),
                            host.network_bandwidth_mib_s)

    return endpoint


class Migrations:
    """Execute, retry, run in order, cancel, abort and watch the moves of recommendations.

    A move starts by storing its start (the lifecycle's StartMove, with the operation id it will run as) before
    the executor gets it: whatever ends first, the recommendation always knows the operation of each move, and
    of two requests to start the same move exactly one wins (the other gets that operation back).
    """

    def __init__(self, store: MigrationRecords, executor: Execution | None, clock: Clock,
                 freshness: FreshnessCheck, new_id: NewId = new_id,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """`sleep` waits for a move another request is handing to the executor."""
        self._sleep = sleep
        self._store = store
        self._executor = executor
        self._clock = clock
        self._freshness = freshness
        self._new_id = new_id

    def _require_executor(self) -> Execution:
        if self._executor is None:
            raise FailedPrecondition("execution is not enabled on this advisor (no hypervisor access configured)")
        return self._executor

    def execute(self, rec_id: str, actor: str, move_index: int = 0, *, retry: bool = False) -> MigrationRecord:
        """Start one move of an approved recommendation, or with `retry` a new attempt of a failed or aborted
        one. Idempotent: asked again, a move already started returns its operation. Right before starting, the
        recommendation is checked against the cluster as it is now; one that no longer holds is stored expired
        and the call fails with the reason."""
        executor = self._require_executor()
        rec = get_recommendation(self._store, rec_id, "recommendation_id")
        if not 0 <= move_index < len(rec.moves):
            raise InvalidArgument("move_index", f"recommendation {rec_id} has {counted(len(rec.moves), 'move')} "
                                                f"(got index {move_index})")
        status = rec.status(move_index)
        if status.operation_id and (not retry or status.state is MoveState.RUNNING):
            return self._operation_of(executor, rec_id, move_index, status.operation_id)  # the same operation
        operation_id = self._new_id()
        start = StartMove(move_index, operation_id, retry)
        refused = transition(rec, start, actor, self._clock())
        if isinstance(refused, Refusal):
            raise FailedPrecondition(refused.reason)
        try:
            vm_id = rec.moves[move_index].vm_id
            if vm_id in executor.migrating_vms():  # another recommendation's move of it under way
                raise FailedPrecondition(f"VM {vm_id} is being moved by another operation: one move of a VM at a "
                                         "time; try once it ended")
            reason = self._freshness.expire_if_stale(self._store, rec, move_index)
            if reason is not None:
                raise FailedPrecondition(f"recommendation {rec_id} expired: {reason}")
            stored = apply_event(self._store, rec_id, start, actor, self._clock(), "recommendation_id")
        except FailedPrecondition:
            # refused because another request started this move since it was read: that start is the answer
            raced = self._store.get_recommendation(rec_id)
            now = raced.status(move_index) if raced is not None else status
            if now.state is MoveState.RUNNING and now.operation_id != status.operation_id:
                return self._operation_of(executor, rec_id, move_index, now.operation_id)
            raise
        won = stored.status(move_index)
        if won.operation_id != operation_id:  # another request started it first
            return self._operation_of(executor, rec_id, move_index, won.operation_id)
        try:
            record = executor.submit(rec_id, rec.moves[move_index], actor=actor, move_index=move_index,
                                     attempt=won.attempts, operation_id=operation_id)
        except BaseException:
            self._ended(rec_id, move_index, operation_id, Phase.FAILED)
            raise
        cancelled = self._store.get_recommendation(rec_id)
        if cancelled is not None and cancelled.cancel_requested:  # cancelled while it was handed over: the
            # cancel could not abort an operation the executor did not know yet, so it is aborted here
            asked = next((c for c in reversed(cancelled.history) if c.reason.startswith("cancel: ")), None)
            why = f"recommendation cancelled: {asked.reason.removeprefix('cancel: ')}" if asked else "cancelled"
            with contextlib.suppress(FailedPrecondition):  # the cancel got to it, or it is past aborting
                record = executor.abort(operation_id, why, asked.actor if asked else "")
        return record

    def _operation_of(self, executor: Execution, rec_id: str, move_index: int, operation_id: str) -> MigrationRecord:
        """The operation a move was started as. The request that started it stores the start before it hands the
        operation to the executor: one not there yet is waited for while the move says it runs as it (briefly:
        the hand-over is one call), and one whose hand-over failed says so rather than that it is unknown."""
        for _ in range(HANDOVER_POLLS):
            with contextlib.suppress(NotFound):
                return executor.get(operation_id)
            rec = self._store.get_recommendation(rec_id)
            status = rec.status(move_index) if rec is not None else None
            if status is None or status.operation_id != operation_id or status.state is not MoveState.RUNNING:
                state = status.state if status is not None and status.operation_id == operation_id else "replaced"
                raise FailedPrecondition(f"move {move_index} of recommendation {rec_id} did not start as operation "
                                         f"{operation_id} ({state}): see the recommendation")
            self._sleep(HANDOVER_POLL_S)
        raise FailedPrecondition(f"move {move_index} of recommendation {rec_id} is still being handed over as "
                                 f"operation {operation_id}; ask again")

    def run(self, rec_id: str, actor: str) -> Recommendation:
        """Run the moves of an approved recommendation in order, each once the one before succeeded (the first
        now). The run stops at a failed move (retry it to go on), when cancelled, or when a move no longer
        holds (the recommendation expires)."""
        self._require_executor()
        rec = apply_event(self._store, rec_id, RunAll(), actor, self._clock(), "recommendation_id")
        self.continue_run(rec_id)
        return get_recommendation(self._store, rec.id, "recommendation_id")

    def continue_run(self, rec_id: str) -> None:
        """Start the next move of a run, if the run is to go on."""
        rec = self._store.get_recommendation(rec_id)
        if rec is None or not rec.run_requested_by or rec.cancel_requested or rec.running:
            return
        if rec.state not in RUNNABLE or any(s.state.retryable for s in rec.statuses()):
            return
        waiting = [i for i, s in enumerate(rec.statuses()) if s.state is MoveState.WAITING]
        if not waiting:
            return
        vm_id = rec.moves[waiting[0]].vm_id
        if self._executor is not None and vm_id in self._executor.migrating_vms():
            # another recommendation moves it now: the move no longer holds, and no end of this run would start it
            # later (left executing, the run would wait for nothing)
            with contextlib.suppress(AdvisorError):
                apply_event(self._store, rec_id, Expire(f"VM {vm_id} is being moved by another operation"),
                            "advisor", self._clock())
            return
        try:
            self.execute(rec_id, rec.run_requested_by, waiting[0])
        except AdvisorError as error:  # expired, or changed meanwhile: the recommendation says so
            log.warning("run stopped", extra={"recommendation": rec_id, "move": waiting[0], "reason": str(error)})

    def cancel(self, rec_id: str, actor: str, reason: str) -> Recommendation:
        """Cancel a recommendation: moves not started are dropped; a running pre-copy is aborted, a migration
        already in post-copy finishes (aborting it would lose the guest), and then the state is cancelled."""
        validation.check_text(reason, "reason", 2048)
        if not reason.strip():  # on the record for whoever finds the moves dropped and a pre-copy aborted
            raise InvalidArgument("reason", "is required: say why the recommendation is cancelled")
        rec = apply_event(self._store, rec_id, Cancel(reason), actor, self._clock())
        for status in rec.statuses():
            if status.state is MoveState.RUNNING and self._executor is not None:
                try:
                    self._executor.abort(status.operation_id, f"recommendation cancelled: {reason}", actor)
                except FailedPrecondition as error:  # in post-copy, or ended meanwhile: it finishes
                    log.info("cancel lets a migration finish", extra={"operation": status.operation_id,
                                                                      "why": str(error)})
                except NotFound:  # stored as started, not handed over yet: the start sees the cancel and aborts it
                    log.info("cancel leaves a starting migration to its start", extra={
                        "operation": status.operation_id})
        return get_recommendation(self._store, rec_id)

    def ended(self, record: MigrationRecord) -> None:
        """An operation ended: its move's state follows, and a run goes on with the next move."""
        self._ended(record.recommendation_id, record.move_index, record.operation_id, record.phase)
        if record.phase is Phase.SUCCEEDED:
            self.continue_run(record.recommendation_id)

    def _ended(self, rec_id: str, move_index: int, operation_id: str, phase: Phase) -> None:
        if self._store.get_recommendation(rec_id) is not None:
            apply_event(self._store, rec_id, MoveEnded(move_index, operation_id, phase), "advisor", self._clock())

    def reconcile(self) -> None:
        """After a restart: a move stored as started whose operation never reached the executor failed; one whose
        operation ended while nobody listened gets its state; runs go on."""
        for rec in self._store.list_recommendations(RecommendationState.EXECUTING, MAX_RECONCILED):
            for i, status in enumerate(rec.statuses()):
                if status.state is not MoveState.RUNNING:
                    continue
                record = self._store.get_migration(status.operation_id)
                if record is None:
                    self._ended(rec.id, i, status.operation_id, Phase.FAILED)
                elif record.phase.final:
                    self._ended(rec.id, i, status.operation_id, record.phase)
            self.continue_run(rec.id)

    def operation(self, operation_id: str) -> MigrationRecord:
        validation.check_id(operation_id, "operation_id")
        return self._require_executor().get(operation_id)

    def page(self, running: bool, size: int = 0, token: str = "") -> tuple[list[MigrationRecord], str]:
        """Operations newest first, paged: only those under way (`running`), or all of them (the history)."""
        size = page_size(size, "page_size")
        kind = f"migrations:{'running' if running else 'all'}"
        after = decode_cursor(kind, token)
        found = self._store.list_migrations(running=running, limit=size + 1, after=after)
        if self._executor is not None:  # the live view of those under way
            found = [self._executor.get(r.operation_id) if not r.phase.final else r for r in found]
        last = found[size - 1] if len(found) > size else None
        next_token = encode_token(kind, f"{last.created_at_s!r}|{last.operation_id}") if last else ""
        return found[:size], next_token

    def abort(self, operation_id: str, reason: str, actor: str = "") -> MigrationRecord:
        validation.check_id(operation_id, "operation_id")
        validation.check_text(reason, "reason", 2048)
        return self._require_executor().abort(operation_id, reason, actor)

    def watch(self, operation_id: str, alive: Callable[[], bool] = lambda: True) -> Iterator[Watched]:
        validation.check_id(operation_id, "operation_id")
        return self._require_executor().watch(operation_id, alive=alive)

    def migrating_vms(self) -> frozenset[str]:
        return frozenset() if self._executor is None else self._executor.migrating_vms()


class ProfileLearning(Protocol):
    """Where a completed migration updates its host profile online (advisor.ml.profile_store.OnlineProfiles):
    profiles the learned model knows are left to retraining, calibrated ones learn from each migration."""

    def learn(self, inputs: MigrationInputs, technique: Technique, outcome: MigrationResult) -> None: ...


class IntervalLearning(Protocol):
    """Where an ended migration moves the served intervals toward their coverage target
    (advisor.ml.adaptive_intervals.AdaptiveIntervals): only measured values count. Returns the cells it moved."""

    def observe(self, inputs: MigrationInputs, predicted: MigrationCost, outcome: MigrationResult
                ) -> list[CellState]: ...


class MigrationOutcomes:
    """The executor's observer: exports progress, and when a migration ends, stores what it changed."""

    def __init__(self, store: MigrationRecords, inventory: Inventory, metrics: AdvisorMetrics, clock: Clock,
                 errors: RunningErrors, on_ended: Callable[[MigrationRecord], None],
                 profiles: ProfileLearning | None = None, intervals: IntervalLearning | None = None) -> None:
        """`on_ended(record)` carries an ended migration into the lifecycle (Migrations.ended): its move's state,
        and the next move of a run. `profiles` learns from every completed migration (aborts are censored: what
        they would have cost is unknown); `intervals` from every one too, and replays the stored ones now, in the
        order they ended, so that a restart serves the intervals it served before."""
        self._profiles = profiles
        self._intervals = intervals
        self._store = store
        self._inventory = inventory
        self._metrics = metrics
        self._clock = clock
        self.errors = errors
        self._on_ended = on_ended
        for record in store.outcomes():  # the running error and the adapted intervals survive a restart
            if record.outcome is not None and record.parameters.kind is MoveKind.MIGRATE:
                self.errors.add(record.predicted, record.outcome, record.inputs.host_profile if record.inputs else "")
                self._adapt(record)
        self._export_errors()

    def progress(self, record: MigrationRecord, progress: Progress) -> None:
        m = self._metrics
        m.migration_remaining_bytes.labels(record.vm_id).set(progress.memory_remaining_mib * MIB_BYTES)
        m.migration_dirty_rate.labels(record.vm_id).set(progress.dirty_rate_mib_s * MIB_BYTES)
        m.migration_transfer_rate.labels(record.vm_id).set(progress.transfer_rate_mib_s * MIB_BYTES)
        m.migration_iteration.labels(record.vm_id).set(progress.iteration)

    def finished(self, record: MigrationRecord) -> None:
        self._export(record)
        if record.parameters.kind is MoveKind.MIGRATE:  # a restart is no migration to learn from
            self._store.record_outcome(record)  # training data: what was predicted, from what, and what happened
            self._learn(record)
            self._adapt(record)
        vm = self._inventory.vms().get(record.vm_id)
        if record.phase is Phase.SUCCEEDED and vm is not None and record.target_host_id in self._inventory.hosts():
            self._inventory.apply(InventoryChange(vms=(replace(vm, host_id=record.target_host_id),)))
        self._on_ended(record)

    def _learn(self, record: MigrationRecord) -> None:
        if self._profiles is None or not self._learned(record) or record.inputs is None or record.outcome is None:
            return
        try:
            self._profiles.learn(record.inputs, record.parameters.technique, record.outcome)
        except Exception:  # the outcome is stored: a profile that cannot learn now must not stop the lifecycle
            log.exception("host profile not updated", extra={"operation_id": record.operation_id})

    @staticmethod
    def _learned(record: MigrationRecord) -> bool:
        """Whether the learned models learn from this outcome: a live migration that completed (a cold move's cost
        is its steps, advisor.physics.cold: no model of memory learns from it)."""
        return record.phase is Phase.SUCCEEDED and record.parameters.technique.is_live

    def _adapt(self, record: MigrationRecord) -> None:
        if self._intervals is None or not self._learned(record) or record.inputs is None or record.outcome is None:
            return
        for state in self._intervals.observe(record.inputs, record.predicted, record.outcome):
            c = state.cell
            self._metrics.interval_widening.labels(c.profile, c.technique, c.regime, c.quantity).set(state.widening)

    def _export_errors(self) -> None:
        m = self._metrics
        for e in self.errors.summary():
            model, _, version = e.model.partition(" ")
            labels = (e.technique, e.quantity, model, version, e.profile)
            m.prediction_error.labels(*labels).set(e.median_ape)
            m.prediction_coverage.labels(*labels).set(e.coverage)
            m.prediction_drift.labels(*labels).set(1 if e.drift else 0)

    def _export(self, record: MigrationRecord) -> None:
        m = self._metrics
        restart = record.parameters.kind is MoveKind.RESTART
        technique = MoveKind.RESTART.value if restart else record.parameters.technique.value
        m.migrations.labels(technique, record.phase.value).inc()
        for gauge in (m.migration_remaining_bytes, m.migration_dirty_rate, m.migration_transfer_rate,
                      m.migration_iteration):
            with contextlib.suppress(KeyError):  # never polled, e.g. aborted while queued
                gauge.remove(record.vm_id)
        outcome = record.outcome
        if record.phase is Phase.SUCCEEDED and outcome is not None and not restart:
            if outcome.total_time_ms is not None:
                m.migration_seconds.labels(technique).observe(outcome.total_time_ms / 1000)
            if outcome.downtime_ms is not None:
                m.migration_downtime.labels(technique).observe(outcome.downtime_ms / 1000)
            predicted = record.predicted
            for target, actual, median in (
                ("total_time", outcome.total_time_ms, predicted.total_time_ms.median),
                ("downtime", outcome.downtime_ms, predicted.downtime_ms.median),
                ("transferred", outcome.transferred_mib, predicted.transferred_mib.median),
            ):
                if actual is not None and median > 0 and actual > 0:
                    m.prediction_ratio.labels(target).observe(actual / median)
            before = {(e.technique, e.quantity) for e in self.errors.summary() if e.drift}
            self.errors.add(predicted, outcome, record.inputs.host_profile if record.inputs else "")
            self._export_errors()
            for e in self.errors.summary():
                if e.drift and (e.technique, e.quantity) not in before:
                    log.warning("prediction drift", extra={"technique": e.technique, "quantity": e.quantity,
                                                           "median_ape": round(e.median_ape, 3), "n": e.n,
                                                           "model": e.model})
