"""Reviewing recommendations: read them, list them, approve or reject them.

Every state change is a pure lifecycle transition (advisor.domain.recommendation) stored with a compare-and-set:
of two people deciding the same recommendation at once, exactly one wins and the other is told what happened.
"""

from __future__ import annotations

from advisor.domain import validation
from advisor.domain.assessments import HostAssessment
from advisor.domain.errors import FailedPrecondition, InvalidArgument
from advisor.domain.model import Move
from advisor.domain.recommendation import (
    Approve,
    Decision,
    Recommendation,
    RecommendationState,
    Reject,
)
from advisor.metrics import AdvisorMetrics
from advisor.tables import count
from advisor.usecases.paging import decode_cursor, decode_offset, encode_token, page_size
from advisor.usecases.ports import Clock, FreshnessCheck, RecommendationStore
from advisor.usecases.records import apply_event, get_recommendation


class Review:
    def __init__(self, store: RecommendationStore, metrics: AdvisorMetrics, clock: Clock,
                 freshness: FreshnessCheck) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._freshness = freshness

    def get(self, rec_id: str, field: str = "id") -> Recommendation:
        """`field`: the request's name for the id, said in an error."""
        return get_recommendation(self._store, rec_id, field)

    def page(
        self, state: RecommendationState | None, size: int = 0, token: str = ""
    ) -> tuple[list[Recommendation], str]:
        size = page_size(size, "page_size")
        kind = f"recommendations:{state or ''}"
        after = decode_cursor(kind, token)
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
            raise InvalidArgument("move_index", f"recommendation {rec_id} has {count(len(rec.moves), 'move')} "
                                                f"(got index {move_index})")
        size = page_size(size, "page_size")
        kind = f"assessments:{rec_id}:{move_index}"
        start = decode_offset(kind, token)
        found = self._store.list_assessments(rec_id, move_index)
        if found is None:
            found = list(rec.moves[move_index].assessments)  # stored before the full lists were kept apart
        page = found[start:start + size]
        more = start + size < len(found)
        return page, encode_token(kind, str(start + size)) if more else "", len(found)

    def moves(self, rec: Recommendation, size: int = 0, token: str = "") -> tuple[list[tuple[int, Move]], str]:
        """One page of a recommendation's moves, with their indexes."""
        size = page_size(size, "page_size")
        kind = f"moves:{rec.id}"
        start = decode_offset(kind, token)
        page = list(enumerate(rec.moves))[start:start + size]
        return page, encode_token(kind, str(start + size)) if start + size < len(rec.moves) else ""

    def decide(self, rec_id: str, decision: Decision, actor: str, reason: str) -> Recommendation:
        """Approve or reject a proposed recommendation. Before an approval the recommendation is checked against
        the cluster as it is now: one that no longer holds is stored expired, and the approval refused saying
        why."""
        validation.check_decision(decision, actor, reason)
        if decision is Decision.APPROVE:
            rec = get_recommendation(self._store, rec_id)
            index = self._freshness.next_move(rec)
            if rec.state is RecommendationState.PROPOSED and index is not None:
                stale = self._freshness.expire_if_stale(self._store, rec, index)
                if stale is not None:
                    raise FailedPrecondition(f"recommendation {rec_id} expired: {stale}")
        event = Approve(reason) if decision is Decision.APPROVE else Reject(reason)
        decided = apply_event(self._store, rec_id, event, actor, self._clock())
        self._metrics.decisions.labels(decision.value).inc()
        return decided
