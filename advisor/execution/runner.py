"""One migration, from start to end: the thin loop around the pure monitor.

The loop polls the source's job statistics, calls `monitor.step`, applies its actions and pauses; the blocking
migrate call runs on its own (`launch`). Each operation is a script of steps that yields wherever it waits
(background.py): it reads only the clocks it is given and never sleeps itself. Every phase change and action
lands on the record's timeline, which is written through to storage, so a restarted advisor knows what was under
way and reconciles it with the hypervisors.
The executor (executor.py) decides when a migration may start and is told when it ends (`on_end`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from advisor.domain.errors import AdvisorError, FailedPrecondition
from advisor.domain.failures import Failure, Fault, Side
from advisor.domain.migration import GuestLocation, MigrationRecord, MigrationResult, Phase, Progress, TimelineEntry
from advisor.domain.model import Technique
from advisor.domain.transport import TlsMode, decide
from advisor.execution import endings, guest_check, monitor
from advisor.execution.background import Launch, MigrationJob, Pause, Steps
from advisor.execution.endings import RESTARTED, concluded, located, mib, reconciled, said, seconds
from advisor.execution.guest_check import GuestVerdict
from advisor.execution.hypervisor import (
    GuestPulse,
    Hypervisor,
    HypervisorError,
    MigrationTarget,
    failure_of_error,
    public,
)
from advisor.execution.monitor import MonitorPlan, MonitorTuning, monitor_plan
from advisor.execution.ports import ExecutionObserver, MigrationStore

log = logging.getLogger("advisor.execution")
# How long a refused switch to post-copy is asked again, once a poll, from the first refusal: QEMU refuses it until
# its job is under way, which took over a second on a loaded machine.
POSTCOPY_RETRY_S = 10.0
# How long a guest may take to leave its source after a migration, and how often both hosts are asked meanwhile.
SETTLE_S = 5.0
SETTLE_POLL_S = 0.2
# Between the two looks at a guest on its new host when the first does not settle whether it answers.
GUEST_CHECK_S = 2.0


@dataclass(frozen=True)
class HostEndpoint:
    """How to reach one host: its hypervisor (for the source side) and its address as a migration target; and its
    migration bandwidth, the link its migrations share (None: not known)."""

    hypervisor: Callable[[], Hypervisor]
    target: MigrationTarget
    bandwidth_mib_s: float | None = None


class Live:
    """In-memory state of one operation: its latest record and progress, and who waits for news."""

    def __init__(self, record: MigrationRecord) -> None:
        self.record = record
        self.progress: Progress | None = None
        self.estimate = monitor.Estimate()
        self.version = 0
        self.user_abort: str | None = None
        self.changed = threading.Condition()


EndCallback = Callable[[Live, MigrationResult, Phase, str], None]


class Runner:
    """Writes each operation as a script of steps (`run`, `reconcile`); `stopping` makes every script leave the
    hypervisors alone. `clock` stamps the timeline (epoch seconds), `monotonic` measures elapsed time; `tls` (setting
    migration_tls) decides from the hosts' TLS at a migration's start whether it is encrypted, or refuses it."""

    def __init__(
        self,
        store: MigrationStore,
        endpoints: Callable[[str], HostEndpoint],
        observer: ExecutionObserver,
        *,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        launch: Launch,
        tuning: MonitorTuning,
        poll_interval_s: float,
        stopping: threading.Event,
        on_end: EndCallback,
        tls: TlsMode = TlsMode.OFF,
    ) -> None:
        self._store = store
        self._endpoints = endpoints
        self._observer = observer
        self._clock = clock
        self._monotonic = monotonic
        self._launch = launch
        self._tuning = tuning
        self._poll_s = poll_interval_s
        self._stopping = stopping
        self._end = on_end
        self._tls = tls

    def note(self, live: Live, phase: Phase, message: str) -> None:
        live.record = self.saved(live.record, phase, message)
        self.publish(live)

    def saved(self, record: MigrationRecord, phase: Phase, message: str) -> MigrationRecord:
        """`record` in `phase` with `message` on its timeline, as stored."""
        at_ms = (self._clock() - record.created_at_s) * 1000
        record = replace(record, phase=phase, timeline=(*record.timeline, TimelineEntry(at_ms, phase, message)))
        self._store.save_migration(record)
        log.info("migration", extra={"operation": record.operation_id, "vm": record.vm_id, "phase": phase.value,
                                     "event": message})
        return record

    def publish(self, live: Live) -> None:
        with live.changed:
            live.version += 1
            live.changed.notify_all()

    def run(self, live: Live) -> Steps[None]:
        record = live.record
        if live.user_abort:  # aborted once scheduled, before its script ran: it never starts (a cold move would
            # otherwise shut the guest down after the abort was granted)
            self._end(live, MigrationResult(False, error="aborted before it started",
                                            failure=Failure.ABORTED_BY_PERSON), Phase.ABORTED,
                      f"aborted before it started: {live.user_abort}")
            return
        try:
            source_end, target_end = self._endpoints(record.source_host_id), self._endpoints(record.target_host_id)
            carried = decide(self._tls, [h for h, end in ((record.source_host_id, source_end),
                                                          (record.target_host_id, target_end)) if not end.target.tls])
            if carried.refusal:
                raise FailedPrecondition(f"refused: {carried.refusal}")
            source, target = source_end.hypervisor(), target_end.target
        except (HypervisorError, AdvisorError) as error:
            failure = failure_of_error(error, Side.SOURCE)
            why = public(error) if failure is Failure.REFUSED_BY_ADVISOR else said(record, failure, str(error))
            self._end(live, MigrationResult(False, error=str(error), failure=failure), Phase.FAILED,
                      f"cannot start: {why}")
            return
        if carried.tls != record.parameters.tls:  # the hosts' TLS changed since the move was planned
            live.record = record = replace(record, parameters=replace(record.parameters, tls=carried.tls))
        if record.parameters.technique is Technique.COLD:
            yield from self._cold(live, source, target)
            return
        plan = monitor_plan(record.parameters, self._tuning, record.predicted, record.predicted_mib_s)
        state, actions = monitor.start(plan)
        live.estimate = state.estimate
        self.note(live, Phase.PRECOPY, f"migrating {record.vm_id} to {record.target_host_id} by "
                                        f"{record.parameters.technique}; {carried.reason}")
        try:
            self._apply(live, source, actions, state)
        except HypervisorError as error:
            self.note(live, Phase.PRECOPY, f"could not set the initial downtime: {public(error)}")
        started = self._monotonic()
        job = self._launch(source, record.vm_id, target, record.parameters)
        state = yield from self._watch(live, source, plan, state, started, job.running, job)
        if self._stopping.is_set():
            return  # the migration goes on in the hypervisors; the next start reconciles it
        yield from self._conclude(live, state, job.result())
        source.close()

    def _cold(self, live: Live, source: Hypervisor, target: MigrationTarget) -> Steps[None]:
        """A cold move: no job statistics to poll and nothing to steer, only its end to wait for. It runs to its
        end (the executor refuses to abort it: each step leaves the guest defined on one host)."""
        record = live.record
        timeout_s = record.parameters.shutdown_timeout_ms / 1000
        self.note(live, Phase.COLD, f"moving {record.vm_id} cold to {record.target_host_id}: shutting it down "
                                     f"(forced off after {timeout_s:.0f} s), then starting it there")
        job = self._launch(source, record.vm_id, target, record.parameters)
        while job.running():
            yield Pause(self._poll_s, job)
            if self._stopping.is_set():
                return  # the move goes on in its thread; the next start reconciles it
        yield from self._conclude(live, monitor.MonitorState(phase=Phase.COLD), job.result())
        source.close()

    def _watch(
        self,
        live: Live,
        source: Hypervisor,
        plan: MonitorPlan,
        state: monitor.MonitorState,
        started: float,
        job_alive: Callable[[], bool],
        job: MigrationJob | None = None,
    ) -> Steps[monitor.MonitorState]:
        """Poll and steer until the job ends. The pause between polls ends early when `job` (the migrate call, if
        this script started it) ends, so the end is noticed at once rather than up to a poll later."""
        vm = live.record.vm_id
        retry_until: float | None = None  # set at the first refusal of a switch to post-copy
        while job_alive():
            yield Pause(self._poll_s, job)
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
            if self._stopping.is_set():  # it stopped during the poll (a leader deposed): it acts on nothing now
                return state
            if live.user_abort and not state.abort_requested and state.phase is not Phase.POSTCOPY:
                state = replace(state, abort_requested=True, abort_cause=Failure.ABORTED_BY_PERSON)
                actions: list[monitor.Action] = [monitor.Abort(live.user_abort, by_person=True)]
            else:
                state, actions = monitor.step(state, progress, (self._monotonic() - started) * 1000, plan)
            live.estimate = state.estimate
            try:
                self._apply(live, source, actions, state)
            except HypervisorError as error:
                # A switch to post-copy refused (QEMU takes it only once the job is under way) is asked again at
                # each poll for POSTCOPY_RETRY_S: the monitor decided it, and a planned post-copy must not quietly
                # run as a pre-copy. A refusal asked again is expected, not an error on the timeline.
                switch = (state.postcopy_requested and state.phase is not Phase.POSTCOPY
                          and any(isinstance(a, monitor.StartPostcopy) for a in actions))
                retry_until = retry_until or (self._monotonic() + POSTCOPY_RETRY_S if switch else None)
                retried = switch and self._monotonic() < (retry_until or 0.0)
                if retried:
                    state = replace(state, postcopy_requested=False)
                if retried and error.fault is Fault.REFUSED:
                    log.info("post-copy switch refused, asking again", extra={
                        "operation": live.record.operation_id, "error": str(error)})
                else:
                    self.note(live, live.record.phase, f"action failed: {public(error)}")
            self.publish(live)
        return state

    def _apply(
        self, live: Live, source: Hypervisor, actions: list[monitor.Action], state: monitor.MonitorState
    ) -> None:
        vm = live.record.vm_id
        # The monitor says when the guest went over to post-copy (a Note among these actions).
        phase = Phase.POSTCOPY if state.phase is Phase.POSTCOPY else live.record.phase
        for action in actions:
            match action:
                case monitor.SetDowntime(downtime_ms=ms, reason=why):
                    source.set_max_downtime(vm, ms)
                    self.note(live, phase, why)
                case monitor.StartPostcopy(reason=why):
                    source.start_postcopy(vm)  # noted once taken: a refusal may be asked again
                    self.note(live, phase, f"switching to post-copy: {why}")
                case monitor.Abort(reason=why, by_person=by_person):
                    # the timeline says whose abort it was: a restart that finds it ended reads it there
                    self.note(live, phase, f"{endings.ASKED_ABORT if by_person else endings.MONITOR_ABORT}{why}")
                    source.abort(vm)
                case monitor.Note(message=text):
                    self.note(live, phase, text)

    def _conclude(self, live: Live, state: monitor.MonitorState, result: MigrationResult) -> Steps[None]:
        if self._stopping.is_set() and not live.record.phase.final:
            return  # the next start reconciles
        record = live.record
        if (postcopy := endings.unseen_postcopy(state, result)) is not None:  # said once: a poll that saw it said it
            self.note(live, Phase.POSTCOPY, postcopy)
        location = yield from self._where(record)
        where = location.describe(record.source_host_id, record.target_host_id)
        final = monitor.finish(state, result.succeeded, state.abort_requested).phase
        if result.succeeded and location is not GuestLocation.TARGET:
            final = Phase.FAILED
        checked = ""
        if result.succeeded and location is GuestLocation.TARGET:
            verdict = yield from self._check_guest(record)
            checked = f" ({verdict.how})"
            if not verdict.answers:
                final = Phase.FAILED
                result = replace(result, succeeded=False, error=f"the guest does not answer on its new host: "
                                                                f"{verdict.how}")
        result = endings.with_last_poll(result, live.progress)
        if result.succeeded:
            downtime = "not reported" if result.downtime_ms is None else f"{result.downtime_ms:.0f} ms"
            message = (f"done in {seconds(result.total_time_ms)}, downtime {downtime}, "
                       f"{mib(result.transferred_mib)}; guest runs on {where}{checked}")
        elif checked:
            result = replace(result, failure=Failure.GUEST_NOT_ANSWERING)
            message = f"{final}: the guest does not answer on {where}{checked}"
        else:
            failure = concluded(result, state, location)
            result = replace(result, failure=failure)
            why = (f"{failure.words(record.source_host_id, record.target_host_id)} (see the timeline)"
                   if state.abort_requested else said(record, failure, result.error))
            message = f"{final}: {why}; guest runs on {where}"
        if result.detail:
            message += f" ({result.detail})"
        self._end(live, result, final, message)

    def _check_guest(self, record: MigrationRecord) -> Steps[GuestVerdict]:
        """Whether the guest answers on its new host (guest_check): a look, and where that does not settle it, a
        second one GUEST_CHECK_S later. A target that cannot be asked is no proof of life: the guest fails."""
        latest: GuestPulse | None = None
        try:
            first = latest = self._pulse(record)
            verdict = guest_check.at_once(first)
            if verdict is None:
                started = self._monotonic()
                yield Pause(GUEST_CHECK_S)
                latest = self._pulse(record)
                verdict = guest_check.judge(first, latest, self._monotonic() - started)
        except (HypervisorError, AdvisorError) as error:
            verdict = GuestVerdict(False, f"could not be checked: {public(error)}")
        if not verdict.answers:  # the agent's own words, if any, stay in the log
            log.error("guest does not answer after migration", extra={
                "operation": record.operation_id, "vm": record.vm_id, "host": record.target_host_id,
                "check": verdict.how, "error": latest.agent_error if latest else ""})
        return verdict

    def _pulse(self, record: MigrationRecord) -> GuestPulse:
        hypervisor = self._endpoints(record.target_host_id).hypervisor()
        try:
            return hypervisor.guest_pulse(record.vm_id)
        finally:
            hypervisor.close()

    def _where(self, record: MigrationRecord) -> Steps[GuestLocation]:
        """Which host runs the guest now, as checked with both hypervisors. Right after a migration the source
        may still list the guest for a moment while it tears it down: ask again until one host has it."""
        deadline = self._monotonic() + SETTLE_S
        while True:
            found, unreachable = self._where_once(record)
            if len(found) == 1 or self._monotonic() >= deadline:
                break
            yield Pause(SETTLE_POLL_S)
        return located(found, unreachable)

    def _where_once(self, record: MigrationRecord) -> tuple[list[GuestLocation], list[GuestLocation]]:
        """The hosts found running the guest, and those that could not be asked."""
        found, unreachable = [], []
        for side, host_id in ((GuestLocation.SOURCE, record.source_host_id),
                              (GuestLocation.TARGET, record.target_host_id)):
            try:
                hypervisor = self._endpoints(host_id).hypervisor()
                try:
                    if any(g.name == record.vm_id and g.running for g in hypervisor.guests()):
                        found.append(side)
                finally:
                    hypervisor.close()
            except (HypervisorError, AdvisorError) as error:
                log.warning("cannot check host", extra={"host": host_id, "error": str(error)})
                unreachable.append(side)
        return found, unreachable

    def reconcile(self, live: Live, cause: str = RESTARTED) -> Steps[None]:
        """An operation a previous run (`cause`: why this one took it over) left under way: follow it to its end
        if the job still runs, else record the state the hypervisors show."""
        record = live.record
        self.note(live, record.phase, f"{cause}: reconciling with the hypervisors")
        try:
            source = self._endpoints(record.source_host_id).hypervisor()
        except (HypervisorError, AdvisorError) as error:
            cause = failure_of_error(error, Side.SOURCE)
            self._end(live, MigrationResult(False, error=str(error), failure=cause), Phase.FAILED,
                      f"cannot reconcile: {said(record, cause, str(error))}")
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

                yield from self._watch(live, source, plan, state, self._monotonic(), alive)
        except HypervisorError:
            pass
        finally:
            source.close()
        if self._stopping.is_set():
            return
        location = yield from self._where(record)
        verdict = (yield from self._check_guest(record)) if location is GuestLocation.TARGET else None
        self._end(live, *reconciled(record, location, verdict, live.progress))
