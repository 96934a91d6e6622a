"""Reading and changing one stored recommendation: every change is a pure lifecycle transition
(advisor.domain.recommendation) stored with a compare-and-set on its revision."""

from __future__ import annotations

from collections.abc import Callable

from advisor.domain import validation
from advisor.domain.errors import FailedPrecondition, NotFound
from advisor.domain.recommendation import Event, Recommendation, Refusal, transition
from advisor.usecases.ports import RecommendationStore

# A compare-and-set lost this many times in a row means something is wrong, not busy.
MAX_ATTEMPTS = 20


def get_recommendation(store: RecommendationStore, rec_id: str, field: str = "id") -> Recommendation:
    validation.check_id(rec_id, field)
    rec = store.get_recommendation(rec_id)
    if rec is None:
        raise NotFound(field, "recommendation", rec_id)
    return rec


def apply_event(store: RecommendationStore, rec_id: str, event: Event | Callable[[], Event], actor: str,
                now_s: float, field: str = "id") -> Recommendation:
    """Apply one lifecycle event and store the result; FailedPrecondition with the reason if it is refused. A lost
    compare-and-set re-reads and decides again, so the outcome is the one the stored state allows. An event that
    depends on other stored state is given as a function, called again on every attempt."""
    for _ in range(MAX_ATTEMPTS):
        rec = get_recommendation(store, rec_id, field)
        after = transition(rec, event() if callable(event) else event, actor, now_s)
        if isinstance(after, Refusal):
            raise FailedPrecondition(after.reason)
        if after == rec:
            return rec
        stored = store.replace_recommendation(rec, after)
        if stored is not None:
            return stored
    raise FailedPrecondition(f"recommendation {rec_id} keeps changing; try again")


