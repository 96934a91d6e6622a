"""Runs migrations: a queue under concurrency limits (KubeVirt's defaults), one script per migration (runner.py),
each run in the background (background.py: a thread each in production).

Requests come from the migrations use case: submit a move (idempotent: the same move of the same recommendation
returns its existing operation), get, abort, watch. At start, operations a previous run left unfinished are
reconciled with the hypervisors.

Links are shared: a migration that starts while others run out of its source or into its target is given its
share of the links (`share_of_links`, by planning.links.link_share, the rule the plan's schedule prices it by) as its
cap. Its inputs then say that cap, and when that changes the bandwidth its prediction was made at (it shares a link
it was predicted to have to itself, or the reverse), it is predicted again at its share through the predictor the
advice used (`predict`) before it starts, so its predicted-against-actual figures and the monitor's ETA follow.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

from advisor.domain.errors import AdvisorError, FailedPrecondition, NotFound
from advisor.domain.failures import Failure
from advisor.domain.ids import new_id
from advisor.domain.migration import MigrationRecord, MigrationResult, Phase, Progress, TimelineEntry
from advisor.domain.model import MigrationCost, MigrationInputs, Move, MoveKind, Technique
from advisor.domain.transport import TlsMode
from advisor.execution.background import Background, Launch, Steps, ThreadedMigration, Threads
from advisor.execution.endings import RESTARTED
from advisor.execution.hypervisor import public
from advisor.execution.link_shares import share_of_links, shared
from advisor.execution.monitor import Estimate, MonitorTuning
from advisor.execution.ports import ExecutionObserver, MigrationStore
from advisor.execution.restart import Definitions, RestartingRunner
from advisor.execution.runner import HostEndpoint, Live

log = logging.getLogger("advisor.execution")

__all__ = [
    "ConcurrencyLimits",
    "ExecutionObserver",
    "Executor",
    "HostEndpoint",
    "MigrationStore",
    "MonitorTuning",
    "Predict",
    "Watched",
    "queued_record",
    "share_of_links",
]

# The cost of one technique from a migration's inputs, as the advice predicted it (the served predictor, widened
# for a burst): how a migration given a share of its links is predicted again.
Predict = Callable[[MigrationInputs, Technique], MigrationCost]


class Watched(NamedTuple):
    """One view of a watched operation."""

    record: MigrationRecord
    progress: Progress | None
    estimate: Estimate


@dataclass(frozen=True)
class ConcurrencyLimits:
    """KubeVirt's defaults: at most 5 migrations in the cluster, 2 out of and 2 into any host."""

    per_cluster: int = 5
    per_source: int = 2
    per_target: int = 2


def queued_record(recommendation_id: str, move: Move, *, actor: str, move_index: int, attempt: int,
                  operation_id: str, now_s: float) -> MigrationRecord:
    """A move's operation as it is first stored, queued (`operation_id` empty: a new id): by the executor, or by a
    replica that is not the leader, for the leader to take (`Executor.take_queued`)."""
    return MigrationRecord(
        operation_id=operation_id or new_id(),
        recommendation_id=recommendation_id,
        vm_id=move.vm_id,
        source_host_id=move.source_host_id,
        target_host_id=move.target_host_id,
        parameters=move.parameters,
        predicted=move.predicted_cost,
        created_at_s=now_s,
        timeline=(TimelineEntry(0.0, Phase.QUEUED, f"queued by {actor or 'unknown'}"),),
        actor=actor,
        move_index=move_index,
        inputs=move.inputs,
        attempt=attempt,
        predicted_mib_s=None if move.inputs is None else move.inputs.usable_bandwidth_mib_s,
    )


class Executor:
    def __init__(
        self,
        store: MigrationStore,
        endpoints: Callable[[str], HostEndpoint],
        observer: ExecutionObserver,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        background: Background | None = None,
        launch: Launch = ThreadedMigration,
        limits: ConcurrencyLimits = ConcurrencyLimits(),
        tuning: MonitorTuning = MonitorTuning(),  # noqa: B008 - frozen, so one shared default is safe
        poll_interval_s: float = 0.5,
        predict: Predict | None = None,
        tls: TlsMode = TlsMode.OFF,
        definitions: Definitions | None = None,
    ) -> None:
        """`clock` stamps records (seconds since the epoch), `monotonic` measures waits; `background` runs each
        migration's script (by default a thread each, pausing with time.sleep), `launch` starts a migrate call;
        `predict` predicts a migration again at the share of the links it is given (None: it keeps its prediction);
        `tls` is the setting migration_tls (the runner decides each migration's transport by it); `definitions`
        gives the guests' last known definitions, which restarts need (advisor.execution.restart)."""
        self._store = store
        self._endpoints = endpoints
        self._predict = predict
        self._observer = observer
        self._clock = clock
        self._monotonic = monotonic
        self._background = background or Threads()
        self._limits = limits
        self._lock = threading.RLock()
        self._live: dict[str, Live] = {}
        self._queue: deque[str] = deque()
        self._running: set[str] = set()
        self._stopping = threading.Event()
        self._runner = RestartingRunner(store, endpoints, observer, clock=clock, monotonic=monotonic, launch=launch,
                                        tuning=tuning, poll_interval_s=poll_interval_s, stopping=self._stopping,
                                        on_end=self._end, tls=tls, definitions=definitions)

    # -- requests ------------------------------------------------------------------------------------------

    def submit(self, recommendation_id: str, move: Move, *, actor: str, move_index: int = 0,
               attempt: int = 1, operation_id: str = "") -> MigrationRecord:
        """Queue a move as `operation_id` (a new id if empty); the same attempt of the same move submitted again
        returns its existing operation."""
        record = queued_record(recommendation_id, move, actor=actor, move_index=move_index, attempt=attempt,
                               operation_id=operation_id, now_s=self._clock())
        with self._lock:
            # one move of a VM at a time: a second would migrate a guest already leaving its source
            busy = next((self._live[o].record for o in (*self._running, *self._queue)
                         if self._live[o].record.vm_id == move.vm_id), None)
            if busy is not None and (busy.recommendation_id, busy.move_index, busy.attempt) != (
                    recommendation_id, move_index, attempt):
                raise FailedPrecondition(f"VM {move.vm_id} is being moved by operation {busy.operation_id} "
                                         f"(recommendation {busy.recommendation_id}): try once it ended")
            stored = self._store.insert_migration(record)
            if stored.operation_id != record.operation_id:
                return self._live[stored.operation_id].record if stored.operation_id in self._live else stored
            self._live[stored.operation_id] = Live(stored)
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

    def abort(self, operation_id: str, reason: str, actor: str = "") -> MigrationRecord:
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
            if record.phase is Phase.COLD:
                raise FailedPrecondition(
                    f"operation {operation_id} is a cold move under way: it runs to its end (each step leaves the "
                    "guest defined on one host; stopping between them would leave it off)"
                )
            if record.phase is Phase.RESTARTING:
                raise FailedPrecondition(f"operation {operation_id} is a restart under way: it runs to its end")
            if live.user_abort:  # asked already: the timeline keeps who asked first, whose abort it is
                return live.record
            live.user_abort = (reason or "aborted on request") + (f" (by {actor})" if actor else "")
            if operation_id in self._queue:
                self._queue.remove(operation_id)
                self._end(live, MigrationResult(False, error="aborted before it started",
                                                failure=Failure.ABORTED_BY_PERSON), Phase.ABORTED,
                          f"aborted while queued: {live.user_abort}")
            return live.record

    def watch(
        self, operation_id: str, timeout_s: float = 3600.0, alive: Callable[[], bool] = lambda: True
    ) -> Iterator[Watched]:
        """Yield the record, latest progress and estimate at every change until the operation ends, the timeout
        passes, or `alive()` says the watcher went away (checked every second, so a gone client frees its place)."""
        with self._lock:
            live = self._live.get(operation_id)
        if live is None:
            yield Watched(self.get(operation_id), None, Estimate())
            return
        deadline = self._monotonic() + timeout_s
        seen = -1
        while True:
            with live.changed:
                while live.version == seen and self._monotonic() < deadline:
                    if not alive():
                        return
                    self._background.wait(live.changed, min(1.0, max(0.0, deadline - self._monotonic())))
                seen = live.version
                record, progress, expected = live.record, live.progress, live.estimate
            yield Watched(record, progress, expected)
            if record.phase.final or self._monotonic() >= deadline:
                return

    def migrating_vms(self) -> frozenset[str]:
        """VMs with a migration queued or running: not to be measured or moved by anyone else now. One that has
        ended is not, while its observer acts on its end (a run may go on with a move of the same VM)."""
        with self._lock:
            return frozenset(self._live[o].record.vm_id for o in (*self._running, *self._queue))

    # -- scheduling ----------------------------------------------------------------------------------------

    def start(self, cause: str = RESTARTED) -> None:
        """Reconcile operations left unfinished by a previous run (`cause`: why this one follows them, said on
        their timelines), then accept work. Started again after `stop` (the lead lost, then won back), it goes on
        from what is stored, as any new leader would: what the term before left in memory is dropped, but for the
        watchers and abort requests of the operations still under way."""
        unfinished = self._store.unfinished_migrations()
        with self._lock:
            self._stopping.clear()  # else every script would leave its operation at once, stuck as it is
            known, self._live = self._live, {}
            self._queue.clear()
            self._running.clear()
        for record in unfinished:
            live = known.get(record.operation_id) or Live(record)
            live.record = record
            with self._lock:
                self._live[record.operation_id] = live
            if record.phase is Phase.QUEUED:
                with self._lock:
                    self._queue.append(record.operation_id)
            else:
                with self._lock:
                    self._running.add(record.operation_id)
                self._spawn(lambda found: self._runner.reconcile(found, cause), live)
        with self._lock:
            self._schedule()

    def take_queued(self) -> list[str]:
        """Queue the operations other replicas stored queued for the leader (this executor's), in the order they
        were stored; return their ids. Read under the lock: an operation of this executor is either still known
        to it or already stored ended, so none is taken twice."""
        with self._lock:
            taken = [r for r in self._store.unfinished_migrations()
                     if r.phase is Phase.QUEUED and r.operation_id not in self._live]
            for record in taken:
                self._live[record.operation_id] = Live(record)
                self._queue.append(record.operation_id)
            if taken and not self._stopping.is_set():
                self._schedule()
        return [r.operation_id for r in taken]

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop polling. Migrations in flight go on in the hypervisors; the next start reconciles them."""
        self._stopping.set()
        self._background.join(timeout_s)

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
            restart = r.parameters.kind is MoveKind.RESTART  # its source is down: it takes no link nor slot there
            if not restart and out.get(r.source_host_id, 0) >= self._limits.per_source:
                continue
            if into.get(r.target_host_id, 0) >= self._limits.per_target:
                continue
            self._queue.remove(op)
            live = self._live[op]
            running = [(self._live[o].record.source_host_id, self._live[o].record.target_host_id)
                       for o in self._running]
            share = share_of_links(r.parameters.bandwidth_mib_s, r.source_host_id, r.target_host_id, running,
                                   self._link)
            # the link is shared: this one gets its part
            if share < (r.parameters.bandwidth_mib_s or math.inf) and not restart:
                live.record = r = replace(r, parameters=shared(r.parameters, share))
            if r.inputs is not None and math.isfinite(share) and r.inputs.max_bandwidth_mib_s != share:
                # its inputs say the cap it runs at, since they are what the outcome is learned from (a plan may
                # have priced it at a share of a link it then has to itself)
                live.record = replace(r, inputs=replace(r.inputs, max_bandwidth_mib_s=share,
                                                        bandwidth_mib_s=min(r.inputs.bandwidth_mib_s, share)))
            self._running.add(op)
            out[r.source_host_id] = out.get(r.source_host_id, 0) + 1
            into[r.target_host_id] = into.get(r.target_host_id, 0) + 1
            self._spawn(self._started, live)

    def _link(self, host_id: str) -> float | None:
        """A host's migration bandwidth; None when it cannot be told (its migration fails when it starts)."""
        try:
            return self._endpoints(host_id).bandwidth_mib_s
        except AdvisorError:
            return None

    def _started(self, live: Live) -> Steps[None]:
        """A migration's script: predicted again at the bandwidth it is given where that changed, then run; a
        restart's own script."""
        if live.record.parameters.kind is MoveKind.RESTART:
            yield from self._runner.restart(live)
            return
        self._repredict(live)
        yield from self._runner.run(live)

    def _repredict(self, live: Live) -> None:
        """When a migration's inputs say another bandwidth than its prediction was made at (it was given a share of
        its links, or the whole link where a plan priced a share), its prediction is made again from them, with
        the technique it runs, outside the executor's lock; if that fails it keeps the one it has, and says so."""
        r = live.record
        if self._predict is None or r.inputs is None:
            return
        at, was = r.inputs.usable_bandwidth_mib_s, r.predicted_mib_s
        if was is not None and math.isclose(at, was):
            return
        before = f" at {was:.1f} MiB/s" if was is not None else ""
        try:
            cost = self._predict(r.inputs, r.parameters.technique)
        except Exception as error:  # a failed prediction must not stop the migration
            log.warning("cannot predict again", extra={"operation": r.operation_id, "error": str(error)})
            self._runner.note(live, r.phase, f"keeps its prediction made{before}: cannot predict it at "
                                             f"{at:.1f} MiB/s ({public(error)})")
            return
        live.record = replace(r, predicted=cost, predicted_mib_s=at)
        self._runner.note(live, r.phase, (
            f"predicted again at {at:.1f} MiB/s, the bandwidth it is given: total "
            f"{cost.total_time_ms.median / 1000:.1f} s, downtime {cost.downtime_ms.median:.0f} ms (was "
            f"{r.predicted.total_time_ms.median / 1000:.1f} s and {r.predicted.downtime_ms.median:.0f} ms{before})"))

    def _spawn(self, script: Callable[[Live], Steps[None]], live: Live) -> None:
        self._background.spawn(script(live), f"migration-{live.record.operation_id}")

    # -- one migration -------------------------------------------------------------------------------------

    def _end(self, live: Live, result: MigrationResult, phase: Phase, message: str) -> None:
        """Store the final record, let the observer act on it, and only then tell the watchers: whoever sees a
        migration ended also sees what it changed (its recommendation's state, where the VM runs)."""
        final = self._runner.saved(replace(live.record, outcome=result, finished_at_s=self._clock()), phase, message)
        with self._lock:
            self._running.discard(final.operation_id)
            if not self._stopping.is_set():
                self._schedule()
        try:
            self._observer.finished(final)
        except Exception:
            log.exception("observer failed", extra={"operation": final.operation_id})
        live.record = final
        with self._lock:
            self._live.pop(final.operation_id, None)
        self._runner.publish(live)
