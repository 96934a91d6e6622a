"""A restart: the move that brings back, on another host, a guest whose host is down. Not a migration: there is
no job to poll or steer and nothing to copy (its disks are shared), only its last known definition to define and
start on the target, then the same look at the guest as after a migration (guest_check).

Its own phase (RESTARTING) and its own figures: the total time is from the start call to the guest found running
and checked on the target; its downtime is not measured (the guest has been down since its host died, which the
advisor does not know to the second), and it sends nothing. The restart runs to its end once started (a define
and a start take a second or two); an abort asked before it starts is honoured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from advisor.domain.errors import AdvisorError
from advisor.domain.failures import Failure, Side
from advisor.domain.migration import MigrationResult, Phase
from advisor.domain.model import MoveKind
from advisor.execution.background import Steps
from advisor.execution.endings import RESTARTED, said
from advisor.execution.hypervisor import GuestDefinition, HypervisorError, failure_of_error
from advisor.execution.runner import Live, Runner

# A guest's last known definition (None: never read): advisor.usecases.definitions keeps them.
Definitions = Callable[[str], GuestDefinition | None]
DOWNTIME_UNKNOWN = "downtime not measured: the guest has been down since its host died"


class RestartingRunner(Runner):
    """The runner of migrations, which also runs restarts (`restart`) and reconciles them after a restart of the
    advisor (`reconcile`); `definitions` gives each guest's last known definition."""

    def __init__(self, *args: Any, definitions: Definitions | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._definitions = definitions

    def restart(self, live: Live) -> Steps[None]:
        record = live.record
        if live.user_abort:
            self._end(live, MigrationResult(False, error="aborted before it started",
                                            failure=Failure.ABORTED_BY_PERSON), Phase.ABORTED,
                      f"aborted before the restart: {live.user_abort}")
            return
        definition = self._definitions(record.vm_id) if self._definitions is not None else None
        if definition is None:
            self._end(live, MigrationResult(False, error="no definition", failure=Failure.NO_DEFINITION), Phase.FAILED,
                      f"cannot restart {record.vm_id}: the advisor has no definition of it (read from its host's "
                      "hypervisor while that host was up)")
            return
        self.note(live, Phase.RESTARTING, f"restarting {record.vm_id} on {record.target_host_id} from its last "
                                          f"known definition ({record.source_host_id} is down)")
        started = self._monotonic()
        try:
            target = self._endpoints(record.target_host_id).hypervisor()
            try:
                target.restart(record.vm_id, definition)
            finally:
                target.close()
        except (HypervisorError, AdvisorError) as error:
            failure = failure_of_error(error, Side.TARGET)
            self._end(live, MigrationResult(False, error=str(error), failure=failure), Phase.FAILED,
                      f"failed: could not restart it on {record.target_host_id}: {said(record, failure, str(error))}")
            return
        yield from self._restarted(live, started)

    def _restarted(self, live: Live, started: float) -> Steps[None]:
        """After the start call: the guest must run on the target and answer there (its source is down: only the
        target is asked)."""
        record = live.record
        where = f"target {record.target_host_id}"
        verdict = yield from self._check_guest(record)
        elapsed_ms = (self._monotonic() - started) * 1000
        if not verdict.answers:
            self._end(live, MigrationResult(False, error=f"the guest does not answer on its new host: {verdict.how}",
                                            total_time_ms=elapsed_ms, failure=Failure.GUEST_NOT_ANSWERING),
                      Phase.FAILED,
                      f"failed: the guest does not answer on {where} ({verdict.how})")
            return
        self._end(live, MigrationResult(True, total_time_ms=elapsed_ms, transferred_mib=0.0), Phase.SUCCEEDED,
                  f"restarted in {elapsed_ms / 1000:.1f} s (defined, started and checked); {DOWNTIME_UNKNOWN}; "
                  f"guest runs on {where} ({verdict.how})")

    def reconcile(self, live: Live, cause: str = RESTARTED) -> Steps[None]:
        """An operation a previous run left under way; a restart ended as its target shows it now: the guest
        running and answering there, or not (its total time is then from this look)."""
        if live.record.parameters.kind is not MoveKind.RESTART:
            yield from super().reconcile(live, cause)
            return
        self.note(live, live.record.phase, f"{cause}: asking the target whether the restart happened")
        started = self._monotonic()
        yield from self._restarted(live, started)
