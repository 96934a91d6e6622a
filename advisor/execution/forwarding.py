"""Execution on a replica that may not be the leader: the leader's executor runs every migration; any other
replica stores the operation queued, in the shared database, for the leader to take (`Executor.take_queued`), and
answers as the leader would (the operation id, phase queued). Reads of operations come from the database there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from advisor.domain.errors import FailedPrecondition, NotFound
from advisor.domain.migration import MigrationRecord
from advisor.domain.model import Move
from advisor.execution.executor import Executor, MigrationStore, Watched, queued_record
from advisor.execution.monitor import Estimate

WATCH_POLL_S = 0.5  # how often a follower reads a watched operation again


class ReplicaExecution:
    """The migrations use case's executor (advisor.usecases.ports.Execution) on a replica: the local executor
    while this replica leads, the shared queue otherwise."""

    def __init__(self, executor: Executor, store: MigrationStore, leading: Callable[[], bool],
                 leader: Callable[[], str], clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        """`leading()` says whether this replica leads now; `leader()` names the replica that does, for messages."""
        self._executor = executor
        self._store = store
        self._leading = leading
        self._leader = leader
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep

    def submit(self, recommendation_id: str, move: Move, *, actor: str, move_index: int = 0,
               attempt: int = 1, operation_id: str = "") -> MigrationRecord:
        if self._leading():
            return self._executor.submit(recommendation_id, move, actor=actor, move_index=move_index,
                                         attempt=attempt, operation_id=operation_id)
        return self._store.insert_migration(queued_record(recommendation_id, move, actor=actor, move_index=move_index,
                                                          attempt=attempt, operation_id=operation_id,
                                                          now_s=self._clock()))

    def get(self, operation_id: str) -> MigrationRecord:
        if self._leading():
            return self._executor.get(operation_id)
        record = self._store.get_migration(operation_id)
        if record is None:
            raise NotFound("operation_id", "operation", operation_id)
        return record

    def abort(self, operation_id: str, reason: str, actor: str = "") -> MigrationRecord:
        if self._leading():
            return self._executor.abort(operation_id, reason, actor)
        record = self.get(operation_id)  # NotFound first
        if record.phase.final:
            raise FailedPrecondition(f"operation {operation_id} already ended: {record.phase}")
        raise FailedPrecondition(f"this replica does not run migrations: abort operation {operation_id} at the "
                                 f"leader ({self._leader() or 'none elected now'})")

    def watch(self, operation_id: str, *, alive: Callable[[], bool] = lambda: True,
              timeout_s: float = 3600.0) -> Iterator[Watched]:
        if self._leading():
            yield from self._executor.watch(operation_id, alive=alive)
            return
        deadline = self._monotonic() + timeout_s
        last = None
        while True:
            record = self.get(operation_id)
            if record != last:
                yield Watched(record, None, Estimate())
                last = record
            if record.phase.final or self._monotonic() >= deadline or not alive():
                return
            self._sleep(WATCH_POLL_S)

    def migrating_vms(self) -> frozenset[str]:
        if self._leading():
            return self._executor.migrating_vms()
        return frozenset(r.vm_id for r in self._store.unfinished_migrations())
