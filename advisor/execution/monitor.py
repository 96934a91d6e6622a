"""The migration monitor as a pure step function: `step(state, progress, now_ms, plan) -> (state, actions)`.

The executor's loop only polls job statistics, calls `step`, applies the actions and sleeps; every decision is
here, so the policy is tested with tables of data. Rules kept from Nova's libvirt driver and KubeVirt:

- once in post-copy, never abort: the guest's memory is split between the hosts and would be lost;
- if monitoring itself fails, abort the job (unless in post-copy) rather than lose track of it;
- raise the allowed downtime in steps while pre-copy does not converge (a ramp, as Nova and oVirt do);
- switch to post-copy early when the plan says so or when observed progress says pre-copy will not converge
  (the dirty rate keeps up with the transfer rate, or the remaining memory stops shrinking);
- at the deadline, force completion by post-copy where allowed, else abort;
- re-predict at every poll from what QEMU reports (memory left, its dirty rate, the transfer rate): an ETA, or
  "not converging"; a pre-copy judged not to converge, or predicted to end after the deadline, is switched to
  post-copy where allowed, else aborted at once rather than at the deadline. The progress shown never runs
  backwards.
- local disks are mirrored before memory moves (a block migration): while they are, the ETA is what is left of
  them at the mirror's rate and then memory; every `disk_window_ms` the mirror is judged as a pre-copy round is,
  and after `stall_rounds` windows in which what is left set no new low (by 10%) the guest writes as fast as the
  mirror copies: the migration is aborted then (post-copy cannot start before memory does);
- auto-converge is judged only at its throttle's ceiling, since throttling is how it converges, and there only on
  whether it can still reach its allowed downtime: at the ceiling what is left sits on a noisy floor (the lab's runs
  swing between one and two and a half times what the allowed downtime sends, and end on a dip below it), so a
  round that sets no new best is no sign of a stall. It is given up when, round after round, what is left sets no
  new low and either the guest dirties as fast as memory is sent or what is left is out of reach of the allowed
  downtime; with an ETA from what is left over the rate it gains at.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from advisor.domain.failures import Failure
from advisor.domain.migration import Phase, Progress
from advisor.domain.model import MigrationCost, MigrationParameters, Technique


@dataclass(frozen=True)
class MonitorPlan:
    """What the monitor may do for one migration; derived from the recommendation's MigrationParameters."""

    max_downtime_ms: float
    deadline_ms: float
    postcopy_allowed: bool
    # Planned switch to post-copy after this long in pre-copy; None never switches by plan.
    postcopy_after_ms: float | None = None
    # The ramp starts here and climbs to max_downtime_ms in `downtime_steps` steps, one per pre-copy round.
    initial_downtime_ms: float = 0.0
    downtime_steps: int = 4
    # Pre-copy is judged not to converge when, from this round on, the dirty rate stays above this share of the
    # transfer rate for `stall_rounds` consecutive rounds, or the remaining memory does not shrink for as long.
    judge_from_round: int = 3
    dirty_to_transfer_limit: float = 0.9
    stall_rounds: int = 3
    # Consecutive failed polls before monitoring is judged lost (one can fail as the job ends).
    failed_polls_to_abort: int = 3
    # Auto-converge throttles the guest round by round: it is judged only once its throttle reaches this, near
    # QEMU's ceiling (cpu-throttle-max, 99% by default). There a round is without progress when what is left is no
    # new low and either the dirty rate keeps up (as above) or what is left is above `reach_factor` times what the
    # allowed downtime sends at the transfer rate (out of the reach of the round-to-round swing).
    throttling: bool = False
    throttle_judged_at_pct: float = 90.0
    reach_factor: float = 3.0
    # The migration's predicted total time (median) and the bandwidth it was predicted at (its share of the links):
    # the ETA until QEMU reports a transfer rate to re-predict from.
    predicted_total_ms: float | None = None
    predicted_mib_s: float | None = None
    # While local disks are mirrored before memory, the mirror is judged once per this window.
    disk_window_ms: float = 5000.0

    def downtime_at(self, step: int) -> float:
        start = self.initial_downtime_ms or self.max_downtime_ms
        if self.downtime_steps <= 0 or start >= self.max_downtime_ms:
            return self.max_downtime_ms
        frac = min(step, self.downtime_steps) / self.downtime_steps
        return start + (self.max_downtime_ms - start) * frac


@dataclass(frozen=True)
class Estimate:
    """What the monitor expects of a running migration. `eta_ms` is the time left, None when it will not end by
    itself (or cannot be told yet); `converging` None until a round has shown it; `progress_ratio` (0 to 1)
    never decreases."""

    eta_ms: float | None = None
    converging: bool | None = None
    progress_ratio: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class MonitorState:
    phase: Phase = Phase.PRECOPY
    downtime_step: int = 0
    last_iteration: int = 0
    # Consecutive judged rounds where pre-copy did not gain.
    losing_rounds: int = 0
    best_remaining_mib: float = float("inf")
    # Auto-converge: the least left at the end of a round at the throttle's ceiling (the floor it sits on).
    ceiling_floor_mib: float = float("inf")
    postcopy_requested: bool = False
    abort_requested: bool = False
    # Why the abort was asked for: the deadline, the monitor's own judgement, or a person.
    abort_cause: Failure | None = None
    monitoring_failures: int = 0
    estimate: Estimate = Estimate()
    # The disk mirror: the least left at a window's end, when the last window ended, windows without progress.
    disk_best_mib: float = float("inf")
    disk_judged_ms: float = 0.0
    disk_losing: int = 0


# -- actions: a small closed set ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetDowntime:
    downtime_ms: float
    reason: str


@dataclass(frozen=True)
class StartPostcopy:
    reason: str


@dataclass(frozen=True)
class Abort:
    reason: str
    by_person: bool = False  # asked through the advisor, not decided by the monitor


@dataclass(frozen=True)
class Note:
    """Something worth recording on the migration's timeline."""

    message: str


Action = SetDowntime | StartPostcopy | Abort | Note


def start(plan: MonitorPlan) -> tuple[MonitorState, list[Action]]:
    """The state and actions at the start of a migration: set the first downtime of the ramp; the ETA is the
    prediction's."""
    first = plan.downtime_at(0)
    return MonitorState(estimate=_as_predicted(plan, 0.0)), [SetDowntime(first,
                                                                         f"initial allowed downtime {first:.0f} ms")]


def _as_predicted(plan: MonitorPlan, elapsed_ms: float, why: str = "") -> Estimate:
    """The ETA the prediction gives after `elapsed_ms`, before QEMU says how fast it sends."""
    if plan.predicted_total_ms is None:
        return Estimate(reason=why)
    at = f" at {plan.predicted_mib_s:.1f} MiB/s" if plan.predicted_mib_s is not None else ""
    predicted = f"as predicted{at}, {plan.predicted_total_ms / 1000:.1f} s in all"
    return Estimate(max(0.0, plan.predicted_total_ms - elapsed_ms), reason=f"{why}: {predicted}" if why else predicted)


def estimate(progress: Progress, plan: MonitorPlan, state: MonitorState) -> Estimate:
    """Re-predict from one poll. Pre-copy converges when what is left fits the allowed downtime; it gains on the
    guest at (transfer - dirty) MiB/s, so the time left is what must still be sent over that gain, plus the
    stop. Post-copy sends what is left at the transfer rate."""
    sent_ratio = 1.0 - progress.memory_remaining_mib / progress.memory_total_mib if progress.memory_total_mib else 0.0
    transfer, dirty = progress.transfer_rate_mib_s, progress.dirty_rate_mib_s
    downtime_ms = plan.downtime_at(state.downtime_step)
    eta: float | None = None
    converging: bool | None = None
    reason = ""
    if progress.mirroring:
        return _mirroring(progress, plan, state)
    if transfer <= 0:
        return replace(_as_predicted(plan, progress.elapsed_ms, "not sending yet"),
                       progress_ratio=state.estimate.progress_ratio)
    if progress.in_postcopy:
        eta, converging = progress.memory_remaining_mib / transfer * 1000, True
        reason = f"post-copy: {progress.memory_remaining_mib:.0f} MiB left at {transfer:.0f} MiB/s"
    elif progress.iteration <= 1:
        eta = progress.memory_remaining_mib / transfer * 1000 + downtime_ms  # the first pass; later rounds unseen
        reason = "first pass over memory"
    elif _keeping_up(progress, plan):
        converging = False
        reason = f"not converging: dirtying {dirty:.1f} MiB/s against {transfer:.1f} MiB/s sent"
    else:
        budget = transfer * downtime_ms / 1000
        eta = max(0.0, progress.memory_remaining_mib - budget) / (transfer - dirty) * 1000 + downtime_ms
        converging = True
        reason = f"converging: gaining {transfer - dirty:.1f} MiB/s on {progress.memory_remaining_mib:.0f} MiB left"
        if _at_ceiling(progress, plan):
            reason += f" at the throttle's ceiling ({_left_vs_budget(progress, plan, state)})"
    ratio = state.estimate.progress_ratio
    if eta is not None:
        ratio = max(ratio, progress.elapsed_ms / (progress.elapsed_ms + eta) if progress.elapsed_ms + eta else 0.0,
                    sent_ratio if progress.in_postcopy else 0.0)
    return Estimate(eta, converging, min(ratio, 1.0), reason)


def _mirroring(progress: Progress, plan: MonitorPlan, state: MonitorState) -> Estimate:
    """While the disks are mirrored: what is left of them at the mirror's rate, then memory at the same rate."""
    rate, left = progress.disk_rate_mib_s, progress.disk_remaining_mib
    ratio = state.estimate.progress_ratio
    if rate <= 0:
        return replace(_as_predicted(plan, progress.elapsed_ms, "mirroring the local disks"), progress_ratio=ratio)
    eta = (left + progress.memory_total_mib) / rate * 1000 + plan.downtime_at(state.downtime_step)
    elapsed = progress.elapsed_ms
    ratio = max(ratio, elapsed / (elapsed + eta) if elapsed + eta else 0.0)
    return Estimate(eta, None, min(ratio, 1.0), f"mirroring the local disks: {left:.0f} of "
                                                 f"{progress.disk_total_mib:.0f} MiB left at {rate:.1f} MiB/s")


def _judge_mirror(state: MonitorState, progress: Progress, now_ms: float,
                  plan: MonitorPlan) -> tuple[MonitorState, list[Action]]:
    """Once per window while mirroring: abort after `stall_rounds` windows without a new low of what is left."""
    if now_ms - state.disk_judged_ms < plan.disk_window_ms:
        return state, []
    left = progress.disk_remaining_mib
    losing = state.disk_losing + 1 if left >= 0.9 * state.disk_best_mib else 0
    state = replace(state, disk_best_mib=min(state.disk_best_mib, left), disk_judged_ms=now_ms, disk_losing=losing)
    if losing < plan.stall_rounds or state.abort_requested:
        return state, []
    why = (f"the local disks' mirror is not catching up: {left:.0f} MiB left after {losing} windows of "
           f"{plan.disk_window_ms / 1000:.0f} s without progress (the guest writes as fast as they are copied); "
           "aborting, as post-copy cannot start before memory does")
    return replace(state, abort_requested=True), [Abort(why)]


def _at_ceiling(progress: Progress, plan: MonitorPlan) -> bool:
    return plan.throttling and progress.autoconverge_throttle_pct >= plan.throttle_judged_at_pct


def _keeping_up(progress: Progress, plan: MonitorPlan) -> bool:
    return progress.dirty_rate_mib_s >= plan.dirty_to_transfer_limit * progress.transfer_rate_mib_s


def _budget_mib(progress: Progress, plan: MonitorPlan) -> float:
    """What the allowed downtime (at the top of its ramp) sends at the current transfer rate: QEMU stops the guest
    once what is left fits it."""
    return progress.transfer_rate_mib_s * plan.max_downtime_ms / 1000


def _left_vs_budget(progress: Progress, plan: MonitorPlan, state: MonitorState) -> str:
    left = progress.memory_remaining_mib
    return (f"{left:.1f} MiB left, floor {min(state.ceiling_floor_mib, left):.1f} MiB,"
            f" {_budget_mib(progress, plan):.1f} MiB fits {plan.max_downtime_ms:.0f} ms")


def _lost(progress: Progress, plan: MonitorPlan, state: MonitorState) -> bool:
    """A plain pre-copy round without progress: the guest dirties about as fast as memory is sent, or what is left
    set no new best (by 10%)."""
    return _keeping_up(progress, plan) or progress.memory_remaining_mib >= 0.9 * state.best_remaining_mib


def _lost_at_ceiling(progress: Progress, plan: MonitorPlan, state: MonitorState) -> bool:
    """An auto-converge round at the throttle's ceiling without progress: what is left is no new low (by 10%; while
    it drains from the last throttle step it keeps setting them) and either the guest still dirties about as fast
    as memory is sent, or what is left is out of reach of the allowed downtime. A new low is progress whatever the
    dirty rate says: QEMU measures it once per sync period, so for a few short rounds at the ceiling it still
    shows the rate from before the last throttle step. The first round at the ceiling is compared with the best
    round before it."""
    floor = state.ceiling_floor_mib if state.ceiling_floor_mib < float("inf") else state.best_remaining_mib
    if progress.memory_remaining_mib < 0.9 * floor:
        return False
    out_of_reach = progress.memory_remaining_mib > plan.reach_factor * _budget_mib(progress, plan)
    return _keeping_up(progress, plan) or out_of_reach


def _switch_or_abort(state: MonitorState, plan: MonitorPlan, why: str,
                     cause: Failure = Failure.ABORTED_BY_MONITOR) -> tuple[MonitorState, list[Action]]:
    if plan.postcopy_allowed:
        if state.postcopy_requested:
            return state, []
        return replace(state, postcopy_requested=True), [StartPostcopy(why)]
    if state.abort_requested:
        return state, []
    return replace(state, abort_requested=True, abort_cause=cause), [Abort(why)]


def step(
    state: MonitorState, progress: Progress | None, now_ms: float, plan: MonitorPlan
) -> tuple[MonitorState, list[Action]]:
    """Decide what to do after one poll. `progress` is None when polling failed; `now_ms` is time since start."""
    if state.phase.final:
        return state, []
    if progress is None:
        failures = state.monitoring_failures + 1
        state = replace(state, monitoring_failures=failures)
        if state.phase is Phase.POSTCOPY:
            return state, [Note(f"monitoring failed ({failures}x) during post-copy; never aborting post-copy")]
        if state.abort_requested or failures < plan.failed_polls_to_abort:
            return state, []
        return replace(state, abort_requested=True, abort_cause=Failure.ABORTED_BY_MONITOR), [
            Abort(f"monitoring failed {failures} times in a row: aborting rather than lose track")
        ]
    state = replace(state, monitoring_failures=0, estimate=estimate(progress, plan, state))

    if progress.in_postcopy:
        if state.phase is not Phase.POSTCOPY:
            return replace(state, phase=Phase.POSTCOPY), [Note("in post-copy: the guest runs on the target")]
        return state, []

    actions: list[Action] = []
    if plan.deadline_ms and now_ms >= plan.deadline_ms:
        state, forced = _switch_or_abort(state, plan, f"deadline {plan.deadline_ms / 1000:.0f} s reached",
                                         Failure.DEADLINE)
        return state, forced
    if progress.mirroring:  # memory has not started: no round to judge, no switch to post-copy yet
        return _judge_mirror(state, progress, now_ms, plan)
    if plan.postcopy_after_ms is not None and now_ms >= plan.postcopy_after_ms and not state.postcopy_requested:
        return _switch_or_abort(state, plan, f"planned switch to post-copy after {plan.postcopy_after_ms / 1000:.1f} s")

    if progress.iteration > state.last_iteration:
        # A new pre-copy round: judge the last one, advance the downtime ramp.
        # Auto-converge is judged only once its throttle has reached the judged level: rounds lost while it is
        # still climbing say nothing about whether throttling will do.
        at_ceiling = _at_ceiling(progress, plan)
        throttled = not plan.throttling or at_ceiling
        losing = 0
        if progress.iteration >= plan.judge_from_round and throttled:
            lost = _lost_at_ceiling(progress, plan, state) if plan.throttling else _lost(progress, plan, state)
            losing = state.losing_rounds + 1 if lost else 0
        state = replace(
            state,
            last_iteration=progress.iteration,
            losing_rounds=losing,
            best_remaining_mib=min(state.best_remaining_mib, progress.memory_remaining_mib),
            ceiling_floor_mib=min(state.ceiling_floor_mib, progress.memory_remaining_mib) if at_ceiling
            else state.ceiling_floor_mib,
        )
        if state.downtime_step < plan.downtime_steps and progress.iteration >= 2:
            state = replace(state, downtime_step=state.downtime_step + 1)
            downtime = plan.downtime_at(state.downtime_step)
            why = f"round {progress.iteration}: allowed downtime raised to {downtime:.0f} ms"
            actions.append(SetDowntime(downtime, why))
        if losing >= plan.stall_rounds:
            rate = f"{progress.dirty_rate_mib_s:.0f} MiB/s dirtied vs {progress.transfer_rate_mib_s:.0f} MiB/s sent"
            what = (f"auto-converge cannot reach its allowed downtime at {progress.autoconverge_throttle_pct:.0f}%"
                    f" throttle ({losing} rounds without progress: {_left_vs_budget(progress, plan, state)}; {rate})"
                    if plan.throttling else f"pre-copy will not converge ({losing} rounds without progress; {rate})")
            when = "" if plan.postcopy_allowed else (
                f", aborting now rather than at the deadline ({plan.deadline_ms / 1000:.0f} s)" if plan.deadline_ms
                else ", aborting now")
            state, escalate = _switch_or_abort(state, plan, what + when)
            actions += escalate
        elif (plan.deadline_ms and progress.iteration >= plan.judge_from_round and throttled
              and state.estimate.eta_ms is not None and now_ms + state.estimate.eta_ms > plan.deadline_ms):
            end_s = (now_ms + state.estimate.eta_ms) / 1000
            state, escalate = _switch_or_abort(
                state, plan, f"predicted to end at {end_s:.0f} s, after the deadline ({plan.deadline_ms / 1000:.0f} s):"
                             f" {state.estimate.reason}", Failure.DEADLINE)
            actions += escalate
    return state, actions


def finish(state: MonitorState, succeeded: bool, aborted_by_us: bool) -> MonitorState:
    """The final phase once the job ended: aborted when we asked for it, failed when it ended otherwise."""
    if succeeded:
        return replace(state, phase=Phase.SUCCEEDED)
    return replace(state, phase=Phase.ABORTED if aborted_by_us else Phase.FAILED)


@dataclass(frozen=True)
class MonitorTuning:
    """How patient the monitor is before it judges that pre-copy will not converge (see MonitorPlan); settings
    `monitor_*`."""

    judge_from_round: int = 3
    stall_rounds: int = 3
    downtime_steps: int = 4


def monitor_plan(p: MigrationParameters, tuning: MonitorTuning = MonitorTuning(),
                 predicted: MigrationCost | None = None, predicted_mib_s: float | None = None) -> MonitorPlan:
    """The monitor's limits from the chosen parameters, and its first ETA from the prediction (made at
    `predicted_mib_s`). Post-copy is allowed exactly when the technique policy planned a switch (it plans none for
    a VM that forbids post-copy)."""
    return MonitorPlan(
        max_downtime_ms=p.max_downtime_ms,
        deadline_ms=p.deadline_ms,
        postcopy_allowed=p.postcopy_after_ms is not None,
        postcopy_after_ms=p.postcopy_after_ms,
        initial_downtime_ms=min(p.max_downtime_ms, max(50.0, p.max_downtime_ms / 3)),
        downtime_steps=tuning.downtime_steps,
        judge_from_round=tuning.judge_from_round,
        stall_rounds=tuning.stall_rounds,
        throttling=p.technique is Technique.PRECOPY_AUTOCONVERGE,
        predicted_total_ms=None if predicted is None else predicted.total_time_ms.median,
        predicted_mib_s=predicted_mib_s,
    )
