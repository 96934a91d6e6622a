"""Proposals that concern the same VMs: one proposal per question.

A new single-VM proposal supersedes the VM's earlier proposed one (a lifecycle transition, stored with the
compare-and-set like every other); a proposal that moves a VM which another open one (proposed or approved, a
plan for example) also moves says so in that move's reasons, naming the other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace

from advisor.domain.errors import FailedPrecondition
from advisor.domain.model import Move
from advisor.domain.recommendation import OpenRecommendation, Recommendation, RecommendationState, Supersede
from advisor.tables import count
from advisor.usecases.ports import RecommendationStore
from advisor.usecases.records import apply_event

# Who supersedes, in the superseded one's history (the newer recommendation is named in `superseded_by`).
ACTOR = "advisor"


def open_by_vm(store: RecommendationStore, moves: Sequence[Move]) -> dict[str, list[OpenRecommendation]]:
    """The open recommendations moving each VM of `moves`, oldest first."""
    wanted = {m.vm_id for m in moves}
    found: dict[str, list[OpenRecommendation]] = {}
    for rec in store.open_recommendations(wanted) if wanted else ():
        for vm_id in rec.vm_ids:
            found.setdefault(vm_id, []).append(rec)
    return found


def replaced(goal: str, others: Sequence[OpenRecommendation]) -> list[OpenRecommendation]:
    """Those of `others` a new single-VM proposal of `goal` supersedes: the proposed ones with the same goal."""
    return [r for r in others if r.state is RecommendationState.PROPOSED and r.goal == goal]


def _named(rec: OpenRecommendation) -> str:
    return f"{rec.state} recommendation {rec.id} ({rec.goal})"


def flag(moves: Sequence[Move], others: Mapping[str, Sequence[OpenRecommendation]],
         superseded: Sequence[OpenRecommendation] = ()) -> tuple[Move, ...]:
    """`moves` with a reason on each whose VM another open recommendation moves (or that this one supersedes)."""
    gone = {r.id for r in superseded}
    flagged = []
    for move in moves:
        also = [r for r in others.get(move.vm_id, ()) if r.id not in gone]
        lines = [f"supersedes {_named(r)}" for r in superseded if move.vm_id in r.vm_ids]
        if also:
            lines.append(f"{move.vm_id} is also moved by " + ", ".join(_named(r) for r in also))
        flagged.append(replace(move, reasons=(*move.reasons, *lines)) if lines else move)
    return tuple(flagged)


def overlap_summary(moves: Sequence[Move], others: Mapping[str, Sequence[OpenRecommendation]]) -> str:
    """A sentence for a plan's summary naming the open recommendations that already move its VMs ("" if none)."""
    hit = [(m.vm_id, others[m.vm_id]) for m in moves if others.get(m.vm_id)]
    if not hit:
        return ""
    examples = "; ".join(f"{vm} by {', '.join(_named(r) for r in recs)}" for vm, recs in hit[:3])
    verb = "is" if len(hit) == 1 else "are"
    return f" {count(len(hit), 'VM')} of this plan {verb} also moved by other open recommendations, e.g. {examples}."


def supersede(store: RecommendationStore, new: Recommendation, earlier: Sequence[OpenRecommendation],
              now_s: float) -> None:
    """Once `new` is stored: store each of `earlier` superseded by it (compare-and-set), and any older proposal of
    the same goal stored meanwhile (of two asked at once, the newer supersedes the older); one approved or ended
    meanwhile is left."""
    found = {r.id: r for r in earlier}
    for others in open_by_vm(store, new.moves).values():
        found.update((r.id, r) for r in replaced(new.goal, others) if r.created_at_s < new.created_at_s)
    for rec in found.values():
        with contextlib.suppress(FailedPrecondition):  # decided meanwhile: no longer a proposal to replace
            apply_event(store, rec.id, Supersede(new.id), ACTOR, now_s)
