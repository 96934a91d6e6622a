"""Choose the migration technique and its parameters from predicted costs and an objective.

The limits (downtime, deadline) are checked against the pessimistic end of each prediction's interval, so a
choice that looks safe is safe for nine runs in ten, not one in two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from advisor.domain.model import DEFAULT_MAX_DOWNTIME_MS, MigrationCost, MigrationParameters, Objective, Technique


@dataclass(frozen=True)
class TechniqueRules:
    """Knobs of the technique choice (settings `technique_*`), for one move (`choose_technique`) and for many (the
    engine's `select`, row for row the same).

    Techniques are ranked by median + risk x (p90 - median): 0 trusts the median alone, 1 ranks by the pessimistic
    bound, so a wide interval (a technique the model knows less well, such as compression) has to win by more.
    Without a deadline, a pre-copy is aborted after `deadline_slack` times its pessimistic prediction (at least
    `deadline_floor_ms`); where post-copy is allowed, a pre-copy that outlasts its pessimistic prediction by
    `postcopy_safety_factor` is switched to post-copy (it will not converge).

    When no technique meets every limit, post-copy is chosen where allowed (its downtime is tiny); else
    `fallback` decides: "likeliest" the technique most likely to converge (then the lowest p90 downtime),
    "downtime" the lowest p90 downtime, "autoconverge" auto-converge (it throttles until it fits). The default
    was fixed by evaluation (training/evaluate_policy.py, docs/cost-model.md). `techniques` are those that may be
    used at all (all by default; the simulator's evaluation allows only pre-copy, as CloudSim models).
    """

    risk: float = 0.5
    deadline_slack: float = 3.0
    deadline_floor_ms: float = 30_000.0
    postcopy_safety_factor: float = 1.5
    fallback: str = "likeliest"
    techniques: tuple[Technique, ...] = tuple(Technique)


FALLBACKS = ("likeliest", "downtime", "autoconverge")


# Preference when costs tie: the least risky, least CPU-hungry first.
_PREFERENCE = (
    Technique.PRECOPY,
    Technique.PRECOPY_XBZRLE,
    Technique.PRECOPY_AUTOCONVERGE,
    Technique.PRECOPY_COMPRESS,
    Technique.POSTCOPY,
)


@dataclass(frozen=True)
class TechniqueChoice:
    parameters: MigrationParameters
    cost: MigrationCost
    reasons: tuple[str, ...]

    def summary(self, vm_id: str, source_id: str, target_id: str) -> str:
        """The move in one sentence, with its predicted cost."""
        cost = self.cost
        return (f"Move {vm_id} from {source_id} to {target_id} by {cost.technique}: about "
                f"{cost.total_time_ms.median / 1000:.1f} s, {cost.downtime_ms.median:.0f} ms downtime, "
                f"{cost.transferred_mib.median:.0f} MiB ({cost.model.name} {cost.model.version}).")


def _violations(cost: MigrationCost, objective: Objective) -> list[str]:
    found = []
    if cost.technique.is_precopy and not cost.converges:
        found.append("predicted not to converge")
    if objective.max_downtime_ms > 0 and cost.downtime_ms.high > objective.max_downtime_ms:
        found.append(f"downtime up to {cost.downtime_ms.high:.0f} ms > limit {objective.max_downtime_ms:.0f} ms")
    if objective.deadline_ms > 0 and cost.total_time_ms.high > objective.deadline_ms:
        found.append(f"total time up to {cost.total_time_ms.high:.0f} ms > deadline {objective.deadline_ms:.0f} ms")
    return found


def _describe(cost: MigrationCost) -> str:
    return (
        f"{cost.technique}: total {cost.total_time_ms.median:.0f} ms "
        f"[{cost.total_time_ms.low:.0f}-{cost.total_time_ms.high:.0f}], downtime {cost.downtime_ms.median:.0f} ms "
        f"[{cost.downtime_ms.low:.0f}-{cost.downtime_ms.high:.0f}], {cost.transferred_mib.median:.0f} MiB "
        f"({cost.model.name} {cost.model.version})"
    )


def _likelihood(cost: MigrationCost) -> float:
    if cost.converge_probability is not None:
        return cost.converge_probability
    return 1.0 if cost.converges else 0.0


def _fallback(usable: Sequence[MigrationCost], rule: str) -> MigrationCost:
    """The technique chosen when none meets every limit: post-copy where allowed, else as `rule` says."""
    for cost in usable:
        if cost.technique is Technique.POSTCOPY:
            return cost
    by_downtime = sorted(usable, key=lambda c: (c.downtime_ms.high, _PREFERENCE.index(c.technique)))
    if rule == "autoconverge":
        return next((c for c in usable if c.technique is Technique.PRECOPY_AUTOCONVERGE), by_downtime[0])
    if rule == "likeliest":
        return max(by_downtime, key=_likelihood)  # ties keep the lower downtime (max returns the first)
    return by_downtime[0]


def choose_technique(
    costs: Sequence[MigrationCost],
    objective: Objective,
    *,
    bandwidth_mib_s: float,
    postcopy_allowed: bool,
    rules: TechniqueRules = TechniqueRules(),
) -> TechniqueChoice:
    """Pick the cheapest technique that meets every limit; else the least bad one, saying which limit it breaks."""
    if not costs:
        raise ValueError("no predicted costs to choose from")
    usable = [c for c in costs if c.technique in rules.techniques
              and (postcopy_allowed or c.technique is not Technique.POSTCOPY)]
    if not usable:
        raise ValueError("post-copy is not allowed and no pre-copy cost was predicted (of the techniques allowed)")

    def rank(cost: MigrationCost) -> tuple[float, int]:
        quantity = cost.transferred_mib if objective.minimize_transferred else cost.total_time_ms
        return quantity.median + rules.risk * (quantity.high - quantity.median), _PREFERENCE.index(cost.technique)

    reasons: list[str] = []
    feasible = sorted((c for c in usable if not _violations(c, objective)), key=rank)
    if feasible:
        chosen = feasible[0]
        target = "fewest bytes" if objective.minimize_transferred else "shortest total time"
        reasons.append(f"chose {_describe(chosen)}: {target} among techniques meeting every limit")
    else:
        chosen = _fallback(usable, rules.fallback)
        reasons.append(f"no technique meets every limit; chose {_describe(chosen)}")
        reasons.extend(f"{chosen.technique} {v}" for v in _violations(chosen, objective))
    for other in sorted(usable, key=rank):
        if other is not chosen:
            broken = _violations(other, objective)
            reasons.append(f"not {_describe(other)}" + (f": {'; '.join(broken)}" if broken else ": slower"))
    if not postcopy_allowed:
        reasons.append("post-copy not allowed for this VM")

    max_downtime_ms = objective.max_downtime_ms or DEFAULT_MAX_DOWNTIME_MS
    deadline_ms = objective.deadline_ms or max(rules.deadline_floor_ms,
                                               rules.deadline_slack * chosen.total_time_ms.high)
    postcopy_after_ms: float | None = None
    if chosen.technique is Technique.POSTCOPY:
        # Switch as soon as the migration starts: every page is then sent once (libvirt needs the pre-copy start).
        postcopy_after_ms = 0.0
    elif postcopy_allowed:
        # Safety net: if pre-copy outlasts its pessimistic prediction by half, it will not converge; switch.
        postcopy_after_ms = rules.postcopy_safety_factor * chosen.total_time_ms.high
    return TechniqueChoice(
        parameters=MigrationParameters(
            technique=chosen.technique,
            bandwidth_mib_s=bandwidth_mib_s,
            max_downtime_ms=max_downtime_ms,
            postcopy_after_ms=postcopy_after_ms,
            deadline_ms=deadline_ms,
            compression_threads=4 if chosen.technique is Technique.PRECOPY_COMPRESS else 0,
            # Post-copy was predicted at the same usable bandwidth: cap it there too.
            postcopy_bandwidth_mib_s=bandwidth_mib_s if postcopy_after_ms is not None else 0.0,
        ),
        cost=chosen,
        reasons=tuple(reasons),
    )
