"""Recommendations and their lifecycle: the states, the events that move between them, and the rules.

`transition(recommendation, event, actor, now_s)` is pure: it returns the recommendation as the event leaves it,
or a `Refusal` saying why the event is not allowed now. Storage persists a transition with a compare-and-set on
the recommendation's revision, so two writers can never both decide the same recommendation: the loser re-reads
and gets this function's refusal.

    pending --approve--> approved --start move--> executing --moves ended--> succeeded | failed
       \\--reject--> rejected

Starting a move of a recommendation that is already executing or has ended is allowed (the executor returns
the operation it already has for that move), so a retried request is idempotent.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace

from advisor.domain.migration import Phase
from advisor.domain.model import Move


class RecommendationState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class Recommendation:
    id: str
    goal: str
    created_at_s: float
    moves: tuple[Move, ...]
    summary: str
    state: RecommendationState = RecommendationState.PENDING
    decided_by: str = ""
    decision_reason: str = ""
    decided_at_s: float | None = None
    # Bumped by storage on every stored transition; the compare-and-set checks it.
    revision: int = 0


# -- events ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Approve:
    reason: str = ""


@dataclass(frozen=True)
class Reject:
    reason: str


@dataclass(frozen=True)
class StartMove:
    move_index: int


@dataclass(frozen=True)
class MovesEnded:
    """The phases of the recommendation's operations so far, by move index."""

    phases: Mapping[int, Phase]


Event = Approve | Reject | StartMove | MovesEnded


@dataclass(frozen=True)
class Refusal:
    reason: str


_EXECUTABLE = frozenset({RecommendationState.APPROVED, RecommendationState.EXECUTING, RecommendationState.SUCCEEDED,
                         RecommendationState.FAILED})


def _decided(rec: Recommendation, state: RecommendationState, actor: str, reason: str, now_s: float) -> Recommendation:
    return replace(rec, state=state, decided_by=actor, decision_reason=reason, decided_at_s=now_s)


def transition(rec: Recommendation, event: Event, actor: str, now_s: float) -> Recommendation | Refusal:
    """The recommendation after `event` by `actor` at `now_s`, or why the event is refused."""
    match event:
        case Approve(reason=reason) | Reject(reason=reason):
            if rec.state is not RecommendationState.PENDING:
                return Refusal(f"recommendation {rec.id} is {rec.state} (by {rec.decided_by or 'the advisor'}); "
                               "only pending ones can be approved or rejected")
            state = RecommendationState.APPROVED if isinstance(event, Approve) else RecommendationState.REJECTED
            return _decided(rec, state, actor, reason, now_s)
        case StartMove():
            if rec.state not in _EXECUTABLE:
                return Refusal(f"recommendation {rec.id} is {rec.state}: only approved ones are executed")
            if rec.state is RecommendationState.APPROVED:
                return replace(rec, state=RecommendationState.EXECUTING)
            return rec
        case MovesEnded(phases=phases):
            if rec.state not in _EXECUTABLE:
                return Refusal(f"recommendation {rec.id} is {rec.state}: it has no migrations to end")
            if any(p in (Phase.FAILED, Phase.ABORTED) for p in phases.values()):
                state = RecommendationState.FAILED
            elif len(phases) == len(rec.moves) and all(p is Phase.SUCCEEDED for p in phases.values()):
                state = RecommendationState.SUCCEEDED
            else:
                state = RecommendationState.EXECUTING
            return replace(rec, state=state)
