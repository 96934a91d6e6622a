"""Runs migrations: a queue under concurrency limits, and one thin loop per migration around the pure monitor.

The loop polls the source's job statistics, calls `monitor.step`, applies its actions and sleeps; the blocking
migrate call runs in a thread of its own. Every phase change and action lands on the record's timeline, which is
written through to storage, so a restarted advisor knows what was under way and reconciles it with the hypervisors.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol

from advisor.domain.errors import AdvisorError, FailedPrecondition, NotFound
from advisor.domain.model import MigrationParameters, Move
from advisor.execution import monitor
from advisor.execution.hypervisor import Hypervisor, HypervisorError, MigrationResult, MigrationTarget
from advisor.execution.monitor import MonitorPlan, Phase, Progress
from advisor.execution.records import MigrationRecord, TimelineEntry

log = logging.getLogger("advisor.execution")


@dataclass(frozen=True)
class ConcurrencyLimits:
    """KubeVirt's defaults: at most 5 migrations in the cluster, 2 out of and 2 into any host."""

    per_cluster: int = 5
    per_source: int = 2
    per_target: int = 2


class MigrationStore(Protocol):
    def insert_migration(self, record: MigrationRecord) -> MigrationRecord: ...

    def save_migration(self, record: MigrationRecord) -> None: ...

    def get_migration(self, operation_id: str) -> MigrationRecord | None: ...

    def unfinished_migrations(self) -> list[MigrationRecord]: ...


class ExecutionObserver(Protocol):
    """Told about progress and endings, e.g. to export metrics and update recommendations and inventory."""

    def progress(self, record: MigrationRecord, progress: Progress) -> None: ...

    def finished(self, record: MigrationRecord) -> None: ...


@dataclass(frozen=True)
class HostEndpoint:
    """How to reach one host: its hypervisor (for the source side) and its address as a migration target."""

    hypervisor: Callable[[], Hypervisor]
    target: MigrationTarget


@dataclass(frozen=True)
class MonitorTuning:
    """How patient the monitor is before it judges that pre-copy will not converge (see MonitorPlan)."""

    judge_from_round: int = 3
    stall_rounds: int = 3
    downtime_steps: int = 4


def monitor_plan(p: MigrationParameters, tuning: MonitorTuning = MonitorTuning()) -> MonitorPlan:
    """The monitor's limits from the chosen parameters. Post-copy is allowed exactly when the technique policy
    planned a switch (it plans none for a VM that forbids post-copy)."""
    return MonitorPlan(
        max_downtime_ms=p.max_downtime_ms,
        deadline_ms=p.deadline_ms,
        postcopy_allowed=p.postcopy_after_ms is not None,
        postcopy_after_ms=p.postcopy_after_ms,
        initial_downtime_ms=min(p.max_downtime_ms, max(50.0, p.max_downtime_ms / 3)),
        downtime_steps=tuning.downtime_steps,
        judge_from_round=tuning.judge_from_round,
        stall_rounds=tuning.stall_rounds,
    )


class _Live:
    """In-memory state of one operation: its latest record and progress, and who waits for news."""

    def __init__(self, record: MigrationRecord) -> None:
        self.record = record
        self.progress: Progress | None = None
        self.version = 0
        self.user_abort: str | None = None
        self.changed = threading.Condition()


class Executor:
    def __init__(
        self,
        store: MigrationStore,
        endpoints: Callable[[str], HostEndpoint],
        observer: ExecutionObserver,
        *,
        clock: Callable[[], float] = time.time,
        limits: ConcurrencyLimits = ConcurrencyLimits(),
        tuning: MonitorTuning = MonitorTuning(),
        poll_interval_s: float = 0.5,
    ) -> None:
        self._tuning = tuning
        self._store = store
        self._endpoints = endpoints
        self._observer = observer
        self._clock = clock
        self._limits = limits
        self._poll_s = poll_interval_s
        self._lock = threading.RLock()
        self._live: dict[str, _Live] = {}
        self._queue: deque[str] = deque()
        self._running: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- requests ------------------------------------------------------------------------------------------

    def submit(self, recommendation_id: str, move: Move, *, actor: str, move_index: int = 0) -> MigrationRecord:
        """Queue a move; the same move of the same recommendation submitted again returns its existing operation."""
        record = MigrationRecord(
            operation_id=uuid.uuid4().hex[:12],
            recommendation_id=recommendation_id,
            vm_id=move.vm_id,
            source_host_id=move.source_host_id,
            target_host_id=move.target_host_id,
            parameters=move.parameters,
            predicted=move.predicted_cost,
            created_at_s=self._clock(),
            timeline=(TimelineEntry(0.0, Phase.QUEUED, f"queued by {actor or 'unknown'}"),),
            actor=actor,
            move_index=move_index,
        )
        with self._lock:
            stored = self._store.insert_migration(record)
            if stored.operation_id != record.operation_id:
                return self._live[stored.operation_id].record if stored.operation_id in self._live else stored
            self._live[stored.operation_id] = _Live(stored)
            self._queue.append(stored.operation_id)
            self._schedule()
        return stored

    def get(self, operation_id: str) -> MigrationRecord:
        with self._lock:
            if operation_id in self._live:
                return self._live[operation_id].record
        record = self._store.get_migration(operation_id)
        if record is None:
            raise NotFound("operation_id", "operation", operation_id)
        return record

    def abort(self, operation_id: str, reason: str) -> MigrationRecord:
        with self._lock:
            live = self._live.get(operation_id)
            if live is None:
                record = self.get(operation_id)  # raises NotFound
                raise FailedPrecondition(f"operation {operation_id} already ended: {record.phase}")
            record = live.record
            if record.phase.final:
                raise FailedPrecondition(f"operation {operation_id} already ended: {record.phase}")
            if record.phase is Phase.POSTCOPY:
                raise FailedPrecondition(
                    f"operation {operation_id} is in post-copy: aborting now would lose the guest; it will finish"
                )
            live.user_abort = reason or "aborted on request"
            if operation_id in self._queue:
                self._queue.remove(operation_id)
                self._end(live, MigrationResult(False, error="aborted before it started"), Phase.ABORTED,
                          f"aborted while queued: {live.user_abort}")
            return live.record

    def watch(self, operation_id: str, timeout_s: float = 3600.0) -> Iterator[tuple[MigrationRecord, Progress | None]]:
        """Yield (record, latest progress) at every change until the operation ends (or the timeout)."""
        with self._lock:
            live = self._live.get(operation_id)
        if live is None:
            yield self.get(operation_id), None
            return
        deadline = time.monotonic() + timeout_s
        seen = -1
        while True:
            with live.changed:
                live.changed.wait_for(lambda last=seen: live.version != last,  # type: ignore[misc]
                                      timeout=max(0.0, deadline - time.monotonic()))
                seen = live.version
                record, progress = live.record, live.progress
            yield record, progress
            if record.phase.final or time.monotonic() >= deadline:
                return

    def migrating_vms(self) -> frozenset[str]:
        """VMs with a migration queued or running: not to be measured or moved by anyone else now."""
        with self._lock:
            return frozenset(live.record.vm_id for live in self._live.values())

    # -- scheduling ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Reconcile operations left unfinished by a previous run, then accept work."""
        for record in self._store.unfinished_migrations():
            live = _Live(record)
            with self._lock:
                self._live[record.operation_id] = live
            if record.phase is Phase.QUEUED:
                with self._lock:
                    self._queue.append(record.operation_id)
            else:
                with self._lock:
                    self._running.add(record.operation_id)
                self._spawn(self._reconcile, live)
        with self._lock:
            self._schedule()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop polling. Migrations in flight go on in the hypervisors; the next start reconciles them."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout_s)

    def _busy(self) -> tuple[dict[str, int], dict[str, int]]:
        out: dict[str, int] = {}
        into: dict[str, int] = {}
        for op in self._running:
            r = self._live[op].record
            out[r.source_host_id] = out.get(r.source_host_id, 0) + 1
            into[r.target_host_id] = into.get(r.target_host_id, 0) + 1
        return out, into

    def _schedule(self) -> None:
        """Start queued operations in order while the limits allow; a blocked one does not block the others."""
        out, into = self._busy()
        for op in list(self._queue):
            if len(self._running) >= self._limits.per_cluster:
                return
            r = self._live[op].record
            if out.get(r.source_host_id, 0) >= self._limits.per_source:
                continue
            if into.get(r.target_host_id, 0) >= self._limits.per_target:
                continue
            self._queue.remove(op)
            self._running.add(op)
            out[r.source_host_id] = out.get(r.source_host_id, 0) + 1
            into[r.target_host_id] = into.get(r.target_host_id, 0) + 1
            self._spawn(self._run, self._live[op])

    def _spawn(self, target: Callable[[_Live], None], live: _Live) -> None:
        thread = threading.Thread(target=target, args=(live,), name=f"migration-{live.record.operation_id}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- one migration -------------------------------------------------------------------------------------

    def _note(self, live: _Live, phase: Phase, message: str) -> None:
        record = live.record
        at_ms = (self._clock() - record.created_at_s) * 1000
        live.record = replace(record, phase=phase, timeline=(*record.timeline, TimelineEntry(at_ms, phase, message)))
        self._store.save_migration(live.record)
        log.info("migration", extra={"operation": record.operation_id, "vm": record.vm_id, "phase": phase.value,
                                     "event": message})
        self._publish(live)

    def _publish(self, live: _Live) -> None:
        with live.changed:
            live.version += 1
            live.changed.notify_all()

    def _end(self, live: _Live, result: MigrationResult, phase: Phase, message: str) -> None:
        live.record = replace(live.record, outcome=result, finished_at_s=self._clock())
        self._note(live, phase, message)
        with self._lock:
            self._running.discard(live.record.operation_id)
            self._live.pop(live.record.operation_id, None)
            if not self._stopping.is_set():
                self._schedule()
        try:
            self._observer.finished(live.record)
        except Exception:
            log.exception("observer failed", extra={"operation": live.record.operation_id})

    def _run(self, live: _Live) -> None:
        record = live.record
        try:
            source = self._endpoints(record.source_host_id).hypervisor()
            target = self._endpoints(record.target_host_id).target
        except (HypervisorError, AdvisorError) as error:
            self._end(live, MigrationResult(False, error=str(error)), Phase.FAILED, f"cannot start: {error}")
            return
        plan = monitor_plan(record.parameters, self._tuning)
        state, actions = monitor.start(plan)
        self._note(live, Phase.PRECOPY, f"migrating {record.vm_id} to {record.target_host_id} by "
                                        f"{record.parameters.technique}")
        try:
            self._apply(live, source, actions, state)
        except HypervisorError as error:
            self._note(live, Phase.PRECOPY, f"could not set the initial downtime: {error}")
        outcome: list[MigrationResult] = []
        migrate = threading.Thread(
            target=lambda: outcome.append(source.migrate(record.vm_id, target, record.parameters)),
            name=f"migrate-{record.operation_id}", daemon=True,
        )
        started = time.monotonic()
        migrate.start()
        state = self._watch(live, source, plan, state, started, migrate.is_alive, migrate.join)
        if self._stopping.is_set():
            return  # the migration goes on in the hypervisors; the next start reconciles it
        migrate.join()
        result = outcome[0] if outcome else MigrationResult(False, error="migrate call died")
        self._conclude(live, source, state, result)
        source.close()

    def _watch(
        self,
        live: _Live,
        source: Hypervisor,
        plan: MonitorPlan,
        state: monitor.MonitorState,
        started: float,
        job_alive: Callable[[], bool],
        wait: Callable[[float], None] = time.sleep,
    ) -> monitor.MonitorState:
        """Poll and steer until the job ends. `wait` sleeps between polls, or returns early when the job ends
        (the migrate thread's join), so the end is noticed at once rather than up to a poll later."""
        vm = live.record.vm_id
        while job_alive():
            wait(self._poll_s)
            if not job_alive():
                break
            if self._stopping.is_set():
                return state
            try:
                progress = source.progress(vm)
            except HypervisorError as error:
                log.warning("poll failed", extra={"operation": live.record.operation_id, "error": str(error)})
                progress = None
                if not job_alive():
                    break
            else:
                if progress is None:
                    continue  # the job has not started yet or has just ended
                live.progress = progress
                self._observer.progress(live.record, progress)
            if live.user_abort and not state.abort_requested and state.phase is not Phase.POSTCOPY:
                state = replace(state, abort_requested=True)
                actions: list[monitor.Action] = [monitor.Abort(live.user_abort)]
            else:
                state, actions = monitor.step(state, progress, (time.monotonic() - started) * 1000, plan)
            if state.phase is Phase.POSTCOPY and live.record.phase is not Phase.POSTCOPY:
                self._note(live, Phase.POSTCOPY, "in post-copy: the guest runs on the target")
            try:
                self._apply(live, source, actions, state)
            except HypervisorError as error:
                self._note(live, live.record.phase, f"action failed: {error}")
            self._publish(live)
        return state

    def _apply(
        self, live: _Live, source: Hypervisor, actions: list[monitor.Action], state: monitor.MonitorState
    ) -> None:
        vm = live.record.vm_id
        phase = live.record.phase
        for action in actions:
            match action:
                case monitor.SetDowntime(downtime_ms=ms, reason=why):
                    source.set_max_downtime(vm, ms)
                    self._note(live, phase, why)
                case monitor.StartPostcopy(reason=why):
                    self._note(live, phase, f"switching to post-copy: {why}")
                    source.start_postcopy(vm)
                case monitor.Abort(reason=why):
                    self._note(live, phase, f"aborting: {why}")
                    source.abort(vm)
                case monitor.Note(message=text):
                    self._note(live, phase, text)

    def _conclude(
        self, live: _Live, source: Hypervisor, state: monitor.MonitorState, result: MigrationResult
    ) -> None:
        if self._stopping.is_set() and not live.record.phase.final:
            return  # the next start reconciles
        record = live.record
        where = self._where(record)
        final = monitor.finish(state, result.succeeded, state.abort_requested).phase
        if result.succeeded and not where.startswith("target"):
            final = Phase.FAILED
        if not result.succeeded and live.progress is not None and not result.transferred_mib:
            # After an abort or failure the hypervisor has no completed statistics: keep the last poll.
            p = live.progress
            result = replace(result, transferred_mib=p.transferred_mib, iterations=p.iteration,
                             postcopy_requests=p.postcopy_requests)
        if result.succeeded:
            message = (f"done in {result.total_time_ms / 1000:.1f} s, downtime {result.downtime_ms:.0f} ms, "
                       f"{result.transferred_mib:.0f} MiB; guest runs on {where}")
        else:
            message = f"{final}: {result.error or 'no error given'}; guest runs on {where}"
        self._end(live, result, final, message)

    def _where(self, record: MigrationRecord, settle_s: float = 5.0) -> str:
        """Which host runs the guest now, as checked with both hypervisors. Right after a migration the source
        may still list the guest for a moment while it tears it down: ask again until one host has it."""
        deadline = time.monotonic() + settle_s
        while True:
            found = self._where_once(record)
            if len(found) == 1 or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        if len(found) == 1:
            return found[0]
        return "no host (not found running)" if not found else f"BOTH {' and '.join(found)}"

    def _where_once(self, record: MigrationRecord) -> list[str]:
        found = []
        for label, host_id in (("source", record.source_host_id), ("target", record.target_host_id)):
            try:
                hypervisor = self._endpoints(host_id).hypervisor()
                try:
                    if any(g.name == record.vm_id and g.running for g in hypervisor.guests()):
                        found.append(f"{label} {host_id}")
                finally:
                    hypervisor.close()
            except (HypervisorError, AdvisorError) as error:
                log.warning("cannot check host", extra={"host": host_id, "error": str(error)})
        return found

    def _reconcile(self, live: _Live) -> None:
        """An operation a previous run left under way: follow it to its end if the job still runs, else record
        the state the hypervisors show."""
        record = live.record
        self._note(live, record.phase, "advisor restarted: reconciling with the hypervisors")
        try:
            source = self._endpoints(record.source_host_id).hypervisor()
        except (HypervisorError, AdvisorError) as error:
            self._end(live, MigrationResult(False, error=str(error)), Phase.FAILED, f"cannot reconcile: {error}")
            return
        try:
            if source.progress(record.vm_id) is not None:
                plan = monitor_plan(record.parameters, self._tuning)
                state = monitor.MonitorState(phase=record.phase if record.phase is Phase.POSTCOPY else Phase.PRECOPY)

                def alive() -> bool:
                    try:
                        return source.progress(record.vm_id) is not None
                    except HypervisorError:
                        return False

                state = self._watch(live, source, plan, state, time.monotonic(), alive)
        except HypervisorError:
            pass
        finally:
            source.close()
        if self._stopping.is_set():
            return
        where = self._where(record)
        succeeded = where.startswith("target")
        result = MigrationResult(succeeded, error="" if succeeded else "the migration did not complete",
                                 total_time_ms=0.0)
        if live.progress is not None:
            p = live.progress
            result = replace(result, total_time_ms=p.elapsed_ms, iterations=p.iteration,
                             transferred_mib=p.transferred_mib, postcopy_requests=p.postcopy_requests)
        self._end(live, result, Phase.SUCCEEDED if succeeded else Phase.FAILED,
                  f"reconciled after restart: guest runs on {where}; final figures from the last poll")
