"""How a migration ended, in the advisor's words: where the guest runs, why it failed, and figures that may not
have been measured. Pure functions of what the runner saw."""

from __future__ import annotations

from dataclasses import replace

from advisor.domain.failures import Failure, Side, failure_of
from advisor.domain.migration import GuestLocation, MigrationRecord, MigrationResult, Phase, Progress
from advisor.execution import monitor
from advisor.execution.guest_check import GuestVerdict
from advisor.execution.hypervisor import incident


def located(found: list[GuestLocation], unreachable: list[GuestLocation]) -> GuestLocation:
    """Where the guest runs from the hosts found running it and those that could not be asked: not found where
    the other host could not be asked is not known, never "no host" (a source whose daemon died runs on)."""
    if len(found) == 1:
        return found[0]
    if found:
        return GuestLocation.BOTH
    if GuestLocation.SOURCE in unreachable:
        return GuestLocation.SOURCE_UNREACHABLE
    return GuestLocation.TARGET_UNREACHABLE if unreachable else GuestLocation.NOWHERE


UNKNOWN_WHERE = {GuestLocation.SOURCE_UNREACHABLE: Failure.SOURCE_UNREACHABLE,
                  GuestLocation.TARGET_UNREACHABLE: Failure.TARGET_UNREACHABLE}
# Why a run reconciles the operations it found under way, unless told otherwise (a replica taking over the lead).
RESTARTED = "advisor restarted"
# How the timeline says an abort was sent, by whom: what a run that reconciles the operation knows of it.
ASKED_ABORT = "aborting on request: "
MONITOR_ABORT = "aborting: "


def concluded(result: MigrationResult, state: monitor.MonitorState, location: GuestLocation) -> Failure:
    """Why a migration that did not succeed failed: who asked for its abort, else what its job's error was, else
    (the job said it completed) where the guest is not."""
    if state.abort_requested:
        return state.abort_cause or Failure.ABORTED_BY_MONITOR
    if result.fault is not None:
        return failure_of(result.fault, Side.SOURCE, peer=result.fault_peer)
    if result.succeeded or not result.error:
        return UNKNOWN_WHERE.get(location, Failure.GUEST_NOT_FOUND)
    return Failure.HYPERVISOR_ERROR


def said(record: MigrationRecord, failure: Failure, error: str) -> str:
    """A failure in the reader's words; the hypervisor's own (`error`) go to the log under an incident id."""
    words = failure.words(record.source_host_id, record.target_host_id)
    return f"{words} (incident {incident(error)}; details in the advisor's log)" if error else words


def with_last_poll(result: MigrationResult, progress: Progress | None) -> MigrationResult:
    """A result with the last poll's figures where it has none: after an abort or failure the hypervisor has no
    completed statistics."""
    if result.succeeded or progress is None or result.transferred_mib is not None:
        return result
    return replace(result, transferred_mib=progress.transferred_mib, iterations=progress.iteration,
                   postcopy_requests=progress.postcopy_requests)


def unseen_postcopy(state: monitor.MonitorState, result: MigrationResult) -> str | None:
    """The timeline's words for a post-copy no poll saw, or None. A post-copy shorter than one poll starts and ends
    between two: the job's statistics still count the pages the target asked the source for once the guest ran
    there (post-copy requests), which happen in post-copy only."""
    if state.phase is Phase.POSTCOPY or result.postcopy_requests <= 0:
        return None
    return (f"in post-copy: the guest runs on the target (begun and ended between two polls: "
            f"{result.postcopy_requests} post-copy requests in the job's statistics)")


def seconds(ms: float | None) -> str:
    return "an unmeasured time" if ms is None else f"{ms / 1000:.1f} s"


def mib(mib: float | None) -> str:
    return "unmeasured data" if mib is None else f"{mib:.0f} MiB"


def reconciled(record: MigrationRecord, location: GuestLocation, verdict: GuestVerdict | None,
               progress: Progress | None) -> tuple[MigrationResult, Phase, str]:
    """How an operation a previous run left under way ended, from where the guest runs now, the check of it on
    the target (None: not there), and the last poll of its job if this run saw one: its result, phase and words."""
    where = location.describe(record.source_host_id, record.target_host_id)
    failure = None if location is GuestLocation.TARGET else UNKNOWN_WHERE.get(location, Failure.NOT_COMPLETED)
    aborted = _abort_sent(record)
    if aborted is not None and location is GuestLocation.SOURCE:  # it stopped because it was aborted: censored
        failure = aborted
    if verdict is not None:
        where += f" ({verdict.how})"
        failure = None if verdict.answers else Failure.GUEST_NOT_ANSWERING
    words = "" if failure is None else failure.words(record.source_host_id, record.target_host_id)
    result = MigrationResult(failure is None, error=words, failure=failure)
    figures = "no figures measured"
    if progress is not None:
        figures = "final figures from the last poll"
        result = replace(result, total_time_ms=progress.elapsed_ms, iterations=progress.iteration,
                         transferred_mib=progress.transferred_mib, postcopy_requests=progress.postcopy_requests)
    phase = Phase.SUCCEEDED if failure is None else Phase.ABORTED if failure is aborted else Phase.FAILED
    return (result, phase,
            f"reconciled after restart: {words + '; ' if words else ''}guest runs on {where}; {figures}")


def _abort_sent(record: MigrationRecord) -> Failure | None:
    """Whose abort the timeline says was sent to the hypervisor, or None."""
    for entry in reversed(record.timeline):
        if entry.message.startswith(ASKED_ABORT):
            return Failure.ABORTED_BY_PERSON
        if entry.message.startswith(MONITOR_ABORT):
            return Failure.ABORTED_BY_MONITOR
    return None
