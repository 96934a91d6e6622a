"""Recommendations and their lifecycle: the states, the events that move between them, and the rules.

`transition(recommendation, event, actor, now_s)` is pure: it returns the recommendation as the event leaves it,
or a `Refusal` saying why the event is not allowed now. Storage persists a transition with a compare-and-set on
the recommendation's revision, so two writers can never both decide the same recommendation: the loser re-reads
and gets this function's refusal.

    proposed --approve--> approved --start a move--> executing --moves ended--> succeeded | failed | aborted
       |  \\--reject--> rejected                        |   ^
       |                                               |   \\--retry a failed or aborted move, or start the next
       \\--(expire: the prediction no longer holds; proposed, approved, or between moves)--> expired
    any state not ended --cancel--> cancelled (moves not started are dropped; a running one ends first)
    proposed --supersede (a newer proposal for the same VM)--> superseded (`superseded_by` names the newer one)

A plan's state is true to its moves: each move has its own state and attempt count, and the plan's state is
derived from them (`derive_state`), so a plan with one failed move is never "succeeded".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

from advisor.domain.migration import Phase
from advisor.domain.model import Move
from advisor.domain.text import counted


class RecommendationState(enum.StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"

    @classmethod
    def parse(cls, text: str) -> RecommendationState:
        """A stored state; "pending" is what "proposed" was called before."""
        return cls.PROPOSED if text == "pending" else cls(text)


# Nothing more can happen to these (a failed or aborted one can still retry its move or run the others).
ENDED = frozenset({RecommendationState.REJECTED, RecommendationState.SUCCEEDED, RecommendationState.EXPIRED,
                   RecommendationState.CANCELLED, RecommendationState.SUPERSEDED})
# Open proposals: their moves may still run (a proposal moving a VM that another open one moves says so).
OPEN = frozenset({RecommendationState.PROPOSED, RecommendationState.APPROVED})
# States from which a move may start.
RUNNABLE = frozenset({RecommendationState.APPROVED, RecommendationState.EXECUTING, RecommendationState.FAILED,
                      RecommendationState.ABORTED})


class Decision(enum.StrEnum):
    """What a reviewer decides about a proposed recommendation."""

    APPROVE = "approve"
    REJECT = "reject"


class MoveState(enum.StrEnum):
    WAITING = "waiting"  # not started
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    DROPPED = "dropped"  # never started: the recommendation was rejected, superseded, cancelled or expired

    @property
    def retryable(self) -> bool:
        return self in (MoveState.FAILED, MoveState.ABORTED)


_MOVE_STATE_OF_PHASE = {Phase.SUCCEEDED: MoveState.SUCCEEDED, Phase.FAILED: MoveState.FAILED,
                        Phase.ABORTED: MoveState.ABORTED}


@dataclass(frozen=True)
class MoveStatus:
    state: MoveState = MoveState.WAITING
    attempts: int = 0
    operation_id: str = ""  # of the latest attempt


@dataclass(frozen=True)
class StateChange:
    """One step of the recommendation's history: who moved it to which state, why, when."""

    at_s: float
    state: RecommendationState
    actor: str
    reason: str


@dataclass(frozen=True)
class Priority:
    """1 (do it now: a drain, a broken rule) to 5 (a slight gain), as DRS rates its recommendations."""

    level: int
    reason: str


@dataclass(frozen=True)
class Recommendation:
    id: str
    goal: str
    created_at_s: float
    moves: tuple[Move, ...]
    summary: str
    state: RecommendationState = RecommendationState.PROPOSED
    decided_by: str = ""
    decision_reason: str = ""
    decided_at_s: float | None = None
    # Bumped by storage on every stored transition; the compare-and-set checks it.
    revision: int = 0
    # One per move, in the order of `moves` (empty: every move waiting, as stored before moves had states).
    move_status: tuple[MoveStatus, ...] = ()
    priority: Priority = Priority(3, "")
    # What the moves gain in `benefit_unit`, and that gain over their cost (None: not a plan with a measured gain).
    benefit: float | None = None
    benefit_unit: str = ""
    benefit_over_cost: float | None = None
    # The automation level it was made under, and the cluster whose level that is.
    automation: str = "manual"
    cluster: str = ""
    # Expired recommendations say why.
    expiry_reason: str = ""
    cancel_requested: bool = False
    # Who asked the advisor to run every move in order (each starting once the one before succeeded); empty when
    # moves are started one by one.
    run_requested_by: str = ""
    # The newer recommendation that replaced this one (state superseded).
    superseded_by: str = ""
    history: tuple[StateChange, ...] = ()

    def status(self, index: int) -> MoveStatus:
        return self.move_status[index] if index < len(self.move_status) else MoveStatus()

    def statuses(self) -> tuple[MoveStatus, ...]:
        return tuple(self.status(i) for i in range(len(self.moves)))

    @property
    def running(self) -> bool:
        return any(s.state is MoveState.RUNNING for s in self.statuses())


@dataclass(frozen=True)
class OpenRecommendation:
    """What a new proposal is told of an open recommendation that moves some of its VMs: which it is and which of
    those VMs it moves, not its moves (a plan has thousands, its stored body megabytes)."""

    id: str
    goal: str
    state: RecommendationState
    created_at_s: float
    vm_ids: frozenset[str]  # those asked about that it moves

    @classmethod
    def of(cls, rec: Recommendation, vm_ids: frozenset[str]) -> OpenRecommendation:
        return cls(rec.id, rec.goal, rec.state, rec.created_at_s, vm_ids)


# -- events ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Approve:
    reason: str = ""


@dataclass(frozen=True)
class Reject:
    reason: str


@dataclass(frozen=True)
class StartMove:
    """Move `move_index` starts as operation `operation_id`; `retry` starts a new attempt of a failed one."""

    move_index: int
    operation_id: str
    retry: bool = False


@dataclass(frozen=True)
class MoveEnded:
    move_index: int
    operation_id: str
    phase: Phase


@dataclass(frozen=True)
class RunAll:
    """Run the moves in order, each once the one before succeeded."""


@dataclass(frozen=True)
class Expire:
    reason: str


@dataclass(frozen=True)
class Cancel:
    reason: str


@dataclass(frozen=True)
class Supersede:
    """A newer proposal (`by`, its id) for the same VM replaces this one."""

    by: str


Event = Approve | Reject | StartMove | MoveEnded | RunAll | Expire | Cancel | Supersede


@dataclass(frozen=True)
class Refusal:
    reason: str


def derive_state(statuses: tuple[MoveStatus, ...], cancel_requested: bool) -> RecommendationState:
    """The state of a recommendation under way, from its moves' states."""
    states = [s.state for s in statuses]
    if MoveState.RUNNING in states:
        return RecommendationState.EXECUTING
    if cancel_requested:
        return RecommendationState.CANCELLED
    if MoveState.FAILED in states:
        return RecommendationState.FAILED
    if MoveState.ABORTED in states:
        return RecommendationState.ABORTED
    if states and all(s is MoveState.SUCCEEDED for s in states):
        return RecommendationState.SUCCEEDED
    return RecommendationState.EXECUTING  # some moves still to start


def _to(rec: Recommendation, state: RecommendationState, actor: str, reason: str, now_s: float,
        **changes: Any) -> Recommendation:
    history = rec.history if state is rec.state else (*rec.history, StateChange(now_s, state, actor, reason))
    return replace(rec, state=state, history=history, **changes)


def _drop_waiting(rec: Recommendation) -> tuple[MoveStatus, ...]:
    return tuple(replace(s, state=MoveState.DROPPED) if s.state is MoveState.WAITING else s for s in rec.statuses())


def _with_status(rec: Recommendation, index: int, status: MoveStatus) -> tuple[MoveStatus, ...]:
    statuses = list(rec.statuses())
    statuses[index] = status
    return tuple(statuses)


def transition(rec: Recommendation, event: Event, actor: str, now_s: float) -> Recommendation | Refusal:
    """The recommendation after `event` by `actor` at `now_s`, or why the event is refused."""
    where = f"recommendation {rec.id} is {rec.state}"
    match event:
        case Approve(reason=reason) | Reject(reason=reason):
            if rec.state is not RecommendationState.PROPOSED:
                by = f" (by {rec.decided_by})" if rec.decided_by else ""
                return Refusal(f"{where}{by}; only proposed ones can be approved or rejected")
            if isinstance(event, Approve) and not rec.moves:
                return Refusal(f"recommendation {rec.id} has no moves: nothing to approve")
            if isinstance(event, Approve):
                return _to(rec, RecommendationState.APPROVED, actor, reason, now_s, decided_by=actor,
                           decision_reason=reason, decided_at_s=now_s)
            return _to(rec, RecommendationState.REJECTED, actor, reason, now_s, decided_by=actor,
                       decision_reason=reason, decided_at_s=now_s, move_status=_drop_waiting(rec))
        case StartMove(move_index=i, operation_id=op, retry=retry):
            if not 0 <= i < len(rec.moves):
                return Refusal(f"recommendation {rec.id} has {counted(len(rec.moves), 'move')}, no move {i}")
            status = rec.status(i)
            if status.operation_id == op and status.state is MoveState.RUNNING:
                return rec  # the same start, stored again
            if rec.state not in RUNNABLE:
                return Refusal(f"{where}: " + ("approve it first" if rec.state is RecommendationState.PROPOSED
                                               else "its moves can no longer start"))
            if rec.cancel_requested:
                return Refusal(f"{where} and being cancelled: no move starts")
            if status.state is MoveState.RUNNING:
                return Refusal(f"move {i} of recommendation {rec.id} is running (operation {status.operation_id})")
            if retry and not status.state.retryable:
                return Refusal(f"move {i} of recommendation {rec.id} is {status.state}: only a failed or aborted "
                               "move is retried")
            if not retry and status.state is not MoveState.WAITING:
                hint = "; retry it to start a new attempt" if status.state.retryable else ""
                return Refusal(f"move {i} of recommendation {rec.id} is {status.state}{hint}")
            started = MoveStatus(MoveState.RUNNING, status.attempts + 1, op)
            why = f"move {i} attempt {started.attempts} ({op})"
            return _to(rec, RecommendationState.EXECUTING, actor, why, now_s,
                       move_status=_with_status(rec, i, started))
        case MoveEnded(move_index=i, operation_id=op, phase=phase):
            if not 0 <= i < len(rec.moves) or rec.status(i).operation_id != op:
                return rec  # an attempt that is not the move's latest: nothing to say about the plan
            if not phase.final:
                return Refusal(f"operation {op} has not ended (it is {phase})")
            statuses = _with_status(rec, i, replace(rec.status(i), state=_MOVE_STATE_OF_PHASE[phase]))
            state = derive_state(statuses, rec.cancel_requested)
            if state is RecommendationState.CANCELLED:
                statuses = _drop_waiting(replace(rec, move_status=statuses))
            return _to(rec, state, actor, f"move {i} {phase} ({op})", now_s, move_status=statuses)
        case RunAll():
            if rec.state not in RUNNABLE or rec.cancel_requested:
                return Refusal(f"{where}: " + ("approve it first" if rec.state is RecommendationState.PROPOSED
                                               else "its moves can no longer start"))
            return rec if rec.run_requested_by else replace(rec, run_requested_by=actor)
        case Expire(reason=reason):
            if rec.state in ENDED or rec.running:
                return Refusal(f"{where}: only a recommendation waiting to run (or between its moves) expires")
            return _to(rec, RecommendationState.EXPIRED, actor, reason, now_s, expiry_reason=reason,
                       move_status=_drop_waiting(rec))
        case Cancel(reason=reason):
            if rec.state in ENDED:
                return Refusal(f"{where}: nothing left to cancel")
            if rec.cancel_requested:
                return rec
            if rec.running:  # the running move ends (or is aborted) first; then the state is cancelled
                return replace(rec, cancel_requested=True,
                               history=(*rec.history, StateChange(now_s, rec.state, actor, f"cancel: {reason}")))
            return _to(rec, RecommendationState.CANCELLED, actor, reason, now_s, cancel_requested=True,
                       move_status=_drop_waiting(rec))
        case Supersede(by=by):
            if rec.state is not RecommendationState.PROPOSED:
                return Refusal(f"{where}: only a proposed recommendation is superseded")
            if by == rec.id:
                return Refusal(f"recommendation {rec.id} cannot supersede itself")
            return _to(rec, RecommendationState.SUPERSEDED, actor, f"superseded by {by}", now_s, superseded_by=by,
                       move_status=_drop_waiting(rec))
