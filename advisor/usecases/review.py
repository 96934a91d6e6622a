"""Reviewing recommendations: read them, list them, approve or reject them.

Every state change is a pure lifecycle transition (advisor.domain.recommendation) stored with a compare-and-set:
of two people deciding the same recommendation at once, exactly one wins and the other is told what happened.
"""

from __future__ import annotations

from collections.abc import Callable

from advisor.domain import validation
from advisor.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from advisor.domain.model import HostAssessment
from advisor.domain.recommendation import (
    Approve,
    Event,
    Recommendation,
    RecommendationState,
    Refusal,
    Reject,
    transition,
)
from advisor.metrics import AdvisorMetrics
from advisor.usecases.paging import decode_token, encode_token, page_size
from advisor.usecases.ports import Clock, RecommendationStore

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


class Review:
    def __init__(self, store: RecommendationStore, metrics: AdvisorMetrics, clock: Clock) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock

    def get(self, rec_id: str) -> Recommendation:
        return get_recommendation(self._store, rec_id)

    def page(
        self, state: RecommendationState | None, size: int = 0, token: str = ""
    ) -> tuple[list[Recommendation], str]:
        size = page_size(size, "page_size")
        kind = f"recommendations:{state or ''}"
        after = None
        if token:
            created, _, rec_id = decode_token(kind, token, "page_token").partition("|")
            try:
                after = (float(created), rec_id)
            except ValueError:
                raise InvalidArgument("page_token", "is not a token this server issued") from None
        recs = self._store.list_recommendations(state, size + 1, after)
        next_token = self.token_after(state, recs[size - 1]) if len(recs) > size else ""
        return recs[:size], next_token

    @staticmethod
    def token_after(state: RecommendationState | None, last: Recommendation) -> str:
        """The page token of the listing that continues after `last`."""
        return encode_token(f"recommendations:{state or ''}", f"{last.created_at_s!r}|{last.id}")

    def assessments(self, rec_id: str, move_index: int, size: int = 0,
                    token: str = "") -> tuple[list[HostAssessment], str, int]:
        """One page of every host assessed for a move, best first, and how many there are in all."""
        rec = get_recommendation(self._store, rec_id, "recommendation_id")
        if not 0 <= move_index < len(rec.moves):
            raise InvalidArgument("move_index", f"recommendation {rec_id} has {len(rec.moves)} move(s) "
                                                f"(got index {move_index})")
        size = page_size(size, "page_size")
        kind = f"assessments:{rec_id}:{move_index}"
        start = 0
        if token:
            raw = decode_token(kind, token, "page_token")
            if not raw.isdigit():
                raise InvalidArgument("page_token", "is not a token this server issued")
            start = int(raw)
        found = self._store.list_assessments(rec_id, move_index)
        if found is None:
            found = list(rec.moves[move_index].assessments)  # stored before the full lists were kept apart
        page = found[start:start + size]
        more = start + size < len(found)
        return page, encode_token(kind, str(start + size)) if more else "", len(found)

    def decide(self, rec_id: str, approve: bool, actor: str, reason: str) -> Recommendation:
        validation.check_text(actor, "actor")
        validation.check_text(reason, "reason", 2048)
        if not actor.strip():
            raise InvalidArgument("actor", "is required: say who decides")
        if not approve and not reason.strip():
            raise InvalidArgument("reason", "is required to reject a recommendation")
        event = Approve(reason) if approve else Reject(reason)
        decided = apply_event(self._store, rec_id, event, actor, self._clock())
        self._metrics.decisions.labels("approve" if approve else "reject").inc()
        return decided
