"""Runs migrations: a queue under concurrency limits (KubeVirt's defaults), one script per migration (runner.py),
each run in the background (background.py: a thread each in production).

Requests come from the migrations use case: submit a move (idempotent: the same move of the same recommendation
returns its existing operation), get, abort, watch. At start, operations a previous run left unfinished are
reconciled with the hypervisors.

Links are shared: a migration that starts while others run out of its source or into its target is given its
share of the link (`bandwidth_share`), the bandwidth the plan priced it at (planning.engine.schedule); the
monitor's ETA follows the transfer rate that cap yields.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

from advisor.domain.errors import FailedPrecondition, NotFound
from advisor.domain.ids import new_id
from advisor.domain.migration import MigrationRecord, MigrationResult, Phase, Progress, TimelineEntry
from advisor.domain.model import MigrationParameters, Move
from advisor.execution.background import Background, Launch, Steps, ThreadedMigration, Threads
from advisor.execution.monitor import Estimate
from advisor.execution.runner import (
    ExecutionObserver,
    HostEndpoint,
    Live,
    MigrationStore,
    MonitorTuning,
    Runner,
)

log = logging.getLogger("advisor.execution")

__all__ = [
    "ConcurrencyLimits",
    "ExecutionObserver",
    "Executor",
    "HostEndpoint",
    "MigrationStore",
    "MonitorTuning",
    "Watched",
    "bandwidth_share",
]


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


def bandwidth_share(bandwidth_mib_s: float, source: str, target: str, running: Iterable[tuple[str, str]]) -> float:
    """The bandwidth a migration from `source` to `target` gets when it starts beside the `running` ones (source,
    target pairs): its link (`bandwidth_mib_s`, the pair's as planned) over the most migrations that then share its
    source's or its target's link, itself included. Those running keep what they started with."""
    pairs = list(running)
    sharing = max(1 + sum(s == source for s, _ in pairs), 1 + sum(t == target for _, t in pairs))
    return bandwidth_mib_s / sharing


def _shared(parameters: MigrationParameters, share: float) -> MigrationParameters:
    """`parameters` at `share` of their bandwidth, post-copy's cap included (it was predicted at the same)."""
    scale = share / parameters.bandwidth_mib_s if parameters.bandwidth_mib_s > 0 else 1.0
    return replace(parameters, bandwidth_mib_s=parameters.bandwidth_mib_s * scale,
                   postcopy_bandwidth_mib_s=parameters.postcopy_bandwidth_mib_s * scale)


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
    ) -> None:
        """`clock` stamps records (seconds since the epoch), `monotonic` measures waits; `background` runs each
        migration's script (by default a thread each, pausing with time.sleep), `launch` starts a migrate call."""
        self._store = store
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
        self._runner = Runner(store, endpoints, observer, clock=clock, monotonic=monotonic, launch=launch,
                              tuning=tuning, poll_interval_s=poll_interval_s, stopping=self._stopping,
                              on_end=self._end)

    # -- requests ------------------------------------------------------------------------------------------

    def submit(self, recommendation_id: str, move: Move, *, actor: str, move_index: int = 0,
               attempt: int = 1, operation_id: str = "") -> MigrationRecord:
        """Queue a move as `operation_id` (a new id if empty); the same attempt of the same move submitted again
        returns its existing operation."""
        record = MigrationRecord(
            operation_id=operation_id or new_id(),
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
            inputs=move.inputs,
            attempt=attempt,
        )
        with self._lock:
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
            live.user_abort = (reason or "aborted on request") + (f" (by {actor})" if actor else "")
            if operation_id in self._queue:
                self._queue.remove(operation_id)
                self._end(live, MigrationResult(False, error="aborted before it started"), Phase.ABORTED,
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
        """VMs with a migration queued or running: not to be measured or moved by anyone else now."""
        with self._lock:
            return frozenset(live.record.vm_id for live in self._live.values())

    # -- scheduling ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Reconcile operations left unfinished by a previous run, then accept work."""
        for record in self._store.unfinished_migrations():
            live = Live(record)
            with self._lock:
                self._live[record.operation_id] = live
            if record.phase is Phase.QUEUED:
                with self._lock:
                    self._queue.append(record.operation_id)
            else:
                with self._lock:
                    self._running.add(record.operation_id)
                self._spawn(self._runner.reconcile, live)
        with self._lock:
            self._schedule()

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
            if out.get(r.source_host_id, 0) >= self._limits.per_source:
                continue
            if into.get(r.target_host_id, 0) >= self._limits.per_target:
                continue
            self._queue.remove(op)
            live = self._live[op]
            running = [(self._live[o].record.source_host_id, self._live[o].record.target_host_id)
                       for o in self._running]
            share = bandwidth_share(r.parameters.bandwidth_mib_s, r.source_host_id, r.target_host_id, running)
            if share < r.parameters.bandwidth_mib_s:  # the link is shared: this one gets its part
                live.record = r = replace(r, parameters=_shared(r.parameters, share))
            if r.inputs is not None and r.inputs.max_bandwidth_mib_s != share:
                # its inputs say the cap it runs at, since they are what the outcome is learned from (a plan may
                # have priced it at a share of a link it then has to itself)
                live.record = replace(r, inputs=replace(r.inputs, max_bandwidth_mib_s=share,
                                                        bandwidth_mib_s=min(r.inputs.bandwidth_mib_s, share)))
            self._running.add(op)
            out[r.source_host_id] = out.get(r.source_host_id, 0) + 1
            into[r.target_host_id] = into.get(r.target_host_id, 0) + 1
            self._spawn(self._runner.run, live)

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
