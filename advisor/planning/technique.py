"""Choose the migration technique and its parameters from predicted costs and an objective.

The limits (downtime, deadline) are checked against the pessimistic end of each prediction's interval, so a
choice that looks safe is safe for nine runs in ten, not one in two.

Post-copy is priced (advisor.planning.postcopy_price): its harm, in milliseconds of guest pause, is added to its
rank; and when no pre-copy meets every limit, post-copy is weighed against pre-copy's downtime risk: the converging
pre-copy with the lowest p90 downtime is chosen when that downtime is over the limit by no more than post-copy's
harm (QEMU stops the guest only once what is left fits the allowed downtime at the measured speed, so a converging
pre-copy's pause stays near the limit; a prediction above it is what may go wrong, not what will).

Cold migration (the guest off for the whole move) competes under the same limits: it is chosen when it meets every
limit and no live technique does (a generous allowed downtime, a VM that cannot converge live), or when asked for
(the VM's label `advisor.technique=cold`); the reasons say which. Else it is listed with why not. A VM that asks
for cold where the rules do not allow cold cannot move at all: moving it live would ignore its label. `cold_rule`
decides all three, for one move (`choose_technique`, advice) and for arrays of them (the engine's `select`, plans).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from advisor.domain.model import (
    DEFAULT_MAX_DOWNTIME_MS,
    POSTCOPY_FORBIDDEN,
    POSTCOPY_LABEL,
    TECHNIQUE_LABEL,
    Interval,
    MigrationCost,
    MigrationParameters,
    Objective,
    Technique,
    label_asks_cold,
    label_forbids_postcopy,
)
from advisor.planning.postcopy_price import postcopy_exposure_ms, postcopy_harm_ms, postcopy_slowdown


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

    `postcopy_exposure_weight` is how much a millisecond of post-copy's exposure (a failure then loses the guest)
    counts against a millisecond of guest pause (see the module docstring); post-copy is never chosen for VMs in
    `postcopy_forbidden_clusters` (setting `technique_postcopy_forbidden_clusters`) or labelled
    `advisor.postcopy=forbidden`.

    A cold move gives the guest `cold_shutdown_timeout_ms` to shut down by itself before forcing it off (setting
    `technique_cold_shutdown_timeout_s`; its cost is predicted with the same timeout).
    """

    risk: float = 0.5
    deadline_slack: float = 3.0
    deadline_floor_ms: float = 30_000.0
    postcopy_safety_factor: float = 1.5
    fallback: str = "likeliest"
    techniques: tuple[Technique, ...] = tuple(Technique)
    postcopy_exposure_weight: float = 0.05
    postcopy_forbidden_clusters: frozenset[str] = frozenset()
    cold_shutdown_timeout_ms: float = 60_000.0

    def cold_asked(self, vm_labels: Mapping[str, str]) -> str:
        """Why cold migration is asked for this VM, '' when it is not."""
        if label_asks_cold(vm_labels):
            return f"asked for by the VM's label {TECHNIQUE_LABEL}={Technique.COLD}"
        return ""

    @property
    def cold_allowed(self) -> bool:
        return Technique.COLD in self.techniques

    def cold_refused(self, vm_labels: Mapping[str, str]) -> str:
        """Why this VM cannot move at all (it asks for cold, which the rules do not allow), '' when it can."""
        _, refused = cold_rule(label_asks_cold(vm_labels), self.cold_allowed, False, False)
        return COLD_REFUSED if bool(refused) else ""

    def postcopy_forbidden(self, vm_labels: Mapping[str, str], cluster: str) -> str:
        """Why an SRE forbade post-copy for this VM, '' when they did not."""
        if label_forbids_postcopy(vm_labels):
            return f"forbidden by the VM's label {POSTCOPY_LABEL}={POSTCOPY_FORBIDDEN}"
        if cluster in self.postcopy_forbidden_clusters:
            return f"forbidden in cluster {cluster} (setting technique_postcopy_forbidden_clusters)"
        return ""


BoolArray = npt.NDArray[np.bool_]

COLD_REFUSED = (f"it asks for cold migration (its label {TECHNIQUE_LABEL}={Technique.COLD}) and the rules do not "
                "allow cold: a live move would ignore its label")
COLD_BY_LIMITS = "it meets every limit and no live technique does"


def cold_rule(asked: npt.ArrayLike, allowed: bool, live_meets: npt.ArrayLike, cold_meets: npt.ArrayLike
              ) -> tuple[BoolArray, BoolArray]:
    """(chosen, refused), the one rule of cold migration, for one move (0-d arrays) or arrays of moves: cold is
    chosen where the rules allow it and the VM asks for it or cold alone meets every limit (`live_meets`: some live
    technique does); a move whose VM asks for cold is refused where the rules do not allow it."""
    asks = np.asarray(asked, dtype=bool)
    alone = ~np.asarray(live_meets, dtype=bool) & np.asarray(cold_meets, dtype=bool)
    chosen: BoolArray = (asks | alone) & allowed
    refused: BoolArray = asks & (not allowed)
    return chosen, refused


FALLBACKS = ("likeliest", "downtime", "autoconverge")


# Preference when costs tie: the least risky, least CPU-hungry first.
_PREFERENCE = (
    Technique.PRECOPY,
    Technique.PRECOPY_XBZRLE,
    Technique.PRECOPY_AUTOCONVERGE,
    Technique.PRECOPY_COMPRESS,
    Technique.POSTCOPY,
    Technique.COLD,
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
    """The technique chosen when none meets every limit and post-copy is not allowed, as `rule` says."""
    by_downtime = sorted(usable, key=lambda c: (c.downtime_ms.high, _PREFERENCE.index(c.technique)))
    if rule == "autoconverge":
        return next((c for c in usable if c.technique is Technique.PRECOPY_AUTOCONVERGE), by_downtime[0])
    if rule == "likeliest":
        return max(by_downtime, key=_likelihood)  # ties keep the lower downtime (max returns the first)
    return by_downtime[0]


def _postcopy_harm(post: MigrationCost | None, bandwidth_mib_s: float, dirty_rate_mib_s: float | None,
                   rules: TechniqueRules) -> tuple[float, str]:
    """Post-copy's harm in ms of guest pause, and the reason that names its exposure and slowdown."""
    if post is None:
        return 0.0, ""
    exposure = postcopy_exposure_ms(post.transferred_mib.median, bandwidth_mib_s)
    slowdown = 0.0 if dirty_rate_mib_s is None else postcopy_slowdown(dirty_rate_mib_s, bandwidth_mib_s)
    harm = postcopy_harm_ms(exposure, slowdown, rules.postcopy_exposure_weight)
    slowed = ("its slowdown while pages fault in unknown (no dirty rate)" if dirty_rate_mib_s is None else
              f"the guest slowed {slowdown:.0%} while its pages fault in")
    return harm, (f"post-copy priced at {harm:.0f} ms of pause: exposed {exposure / 1000:.1f} s (a failure of either "
                  f"host or the link then loses the guest, weight {rules.postcopy_exposure_weight:g}), {slowed}")


def _passed_over(other: MigrationCost, chosen: MigrationCost, objective: Objective, *, risk: float,
                 harm: float, ranked_ahead: bool) -> str:
    """Why `other`, which meets every limit, was not chosen, in the terms of the choice: what it ranks on (time, or
    bytes sent, at its median plus `risk` of the way to its p90), post-copy's price, or the calm pre-copy rule."""
    if ranked_ahead:  # ranked ahead of the chosen one: the calm pre-copy rule chose
        return "ranked ahead, but the pre-copy above was chosen over post-copy"
    time = not objective.minimize_transferred
    mine, theirs = ((c.total_time_ms if time else c.transferred_mib) for c in (other, chosen))
    if other.technique is Technique.POSTCOPY and harm > 0 and _ranked(mine, risk) <= _ranked(theirs, risk):
        return "its risk, priced below, outweighs what it saves"
    unit, scale = ("s", 1000.0) if time else ("MiB", 1.0)
    said = (f"{mine.median / scale:.1f} [{mine.low / scale:.1f}-{mine.high / scale:.1f}] {unit} against "
            f"{theirs.median / scale:.1f} [{theirs.low / scale:.1f}-{theirs.high / scale:.1f}]")
    if _ranked(mine, risk) == _ranked(theirs, risk):
        return f"as good ({said}), {chosen.technique} preferred"
    if mine.median > theirs.median:
        return ("slower: " if time else "sends more: ") + said
    return f"less certain (ranked on its median and {risk:g} of the way to its p90): {said}"


def _ranked(quantity: Interval, risk: float) -> float:
    """What a technique is ranked on, before post-copy's price: its median and `risk` of the way to its p90."""
    return quantity.median + risk * (quantity.high - quantity.median)


def _calm_precopy(usable: Sequence[MigrationCost], post: MigrationCost | None, harm: float,
                 objective: Objective) -> tuple[MigrationCost | None, str]:
    """Where post-copy is allowed and no pre-copy meets every limit: the converging pre-copy within the deadline
    with the lowest p90 downtime, when that is over the limit by no more than post-copy's harm (else None); and
    the reason either way."""
    if post is None:
        return None, ""
    limit = objective.max_downtime_ms or DEFAULT_MAX_DOWNTIME_MS
    candidates = [c for c in usable if c.technique.is_precopy and c.converges
                  and not (objective.deadline_ms > 0 and c.total_time_ms.high > objective.deadline_ms)]
    best = min(candidates, key=lambda c: (c.downtime_ms.high, _PREFERENCE.index(c.technique)), default=None)
    if best is None:
        return None, ""
    over = best.downtime_ms.high - limit
    if over <= harm:
        return best, (f"chose {_describe(best)}: its p90 downtime is {over:.0f} ms over the limit, less than "
                      f"post-copy's harm ({harm:.0f} ms), and QEMU's stop rule keeps a converging pre-copy's pause "
                      f"near the limit")
    return None, (f"not {best.technique}: its p90 downtime is {over:.0f} ms over the limit, more than post-copy's "
                  f"harm ({harm:.0f} ms)")


def choose_technique(
    costs: Sequence[MigrationCost],
    objective: Objective,
    *,
    bandwidth_mib_s: float,
    postcopy_allowed: bool,
    rules: TechniqueRules = TechniqueRules(),
    dirty_rate_mib_s: float | None = None,
    postcopy_forbidden: str = "",
    cold_asked: str = "",
) -> TechniqueChoice:
    """Pick the cheapest technique that meets every limit, post-copy priced by its harm (module docstring); else
    the least bad one, saying which limit it breaks. Cold migration is chosen only when asked for (`cold_asked`:
    why, `TechniqueRules.cold_asked`) or when it meets every limit and no live technique does. `dirty_rate_mib_s`
    None: unknown (post-copy's slowdown is then not priced, and the reason says so); `postcopy_forbidden`: why an
    SRE forbade post-copy (`TechniqueRules.postcopy_forbidden`), '' when they did not."""
    if not costs:
        raise ValueError("no predicted costs to choose from")
    cold = next((c for c in costs if c.technique is Technique.COLD), None) if rules.cold_allowed else None
    live = [c for c in costs if c.technique.is_live]
    usable = _usable(live, rules, postcopy_allowed and not postcopy_forbidden)
    if cold_asked and rules.cold_allowed and cold is None:
        raise ValueError(f"cold migration is {cold_asked}, but its cost was not predicted")
    live_meets = any(not _violations(c, objective) for c in usable)
    chosen, refused = cold_rule(bool(cold_asked), rules.cold_allowed, live_meets,
                                cold is not None and not _violations(cold, objective))
    if bool(refused):
        raise ValueError(f"the VM cannot move: {COLD_REFUSED}")
    if cold is not None and (bool(chosen) or not usable):
        why = (f"{cold_asked} (whatever the limits)" if cold_asked else COLD_BY_LIMITS if usable else
               "the only technique allowed and predicted (whatever the limits)")
        return _cold_choice(cold, usable, objective, bandwidth_mib_s, rules, why)
    choice = _choose_live(live, objective, bandwidth_mib_s=bandwidth_mib_s, postcopy_allowed=postcopy_allowed,
                          rules=rules, dirty_rate_mib_s=dirty_rate_mib_s, postcopy_forbidden=postcopy_forbidden)
    if cold is None:
        return choice
    why = "; ".join(_violations(cold, objective)) or (
        "a live technique meets every limit (cold stops the guest for the whole move)")
    return replace(choice, reasons=(*choice.reasons, f"not {_describe(cold)}: {why}"))


def _usable(costs: Sequence[MigrationCost], rules: TechniqueRules, postcopy_allowed: bool) -> list[MigrationCost]:
    return [c for c in costs if c.technique in rules.techniques
            and (postcopy_allowed or c.technique is not Technique.POSTCOPY)]


def _cold_choice(cold: MigrationCost, live: Sequence[MigrationCost], objective: Objective, bandwidth_mib_s: float,
                 rules: TechniqueRules, why: str) -> TechniqueChoice:
    """Cold migration chosen for `why`, with what each live technique would have broken."""
    reasons = [f"chose {_describe(cold)}: {why}"]
    reasons.extend(f"{cold.technique} {v}" for v in _violations(cold, objective))
    for other in live:
        broken = _violations(other, objective)
        reasons.append(f"not {_describe(other)}" + (f": {'; '.join(broken)}" if broken else ": cold asked for"))
    parameters = MigrationParameters(
        technique=Technique.COLD, bandwidth_mib_s=bandwidth_mib_s,
        max_downtime_ms=objective.max_downtime_ms or DEFAULT_MAX_DOWNTIME_MS, deadline_ms=objective.deadline_ms,
        shutdown_timeout_ms=rules.cold_shutdown_timeout_ms,
    )
    return TechniqueChoice(parameters, cold, tuple(reasons))


def _choose_live(
    costs: Sequence[MigrationCost],
    objective: Objective,
    *,
    bandwidth_mib_s: float,
    postcopy_allowed: bool,
    rules: TechniqueRules,
    dirty_rate_mib_s: float | None,
    postcopy_forbidden: str,
) -> TechniqueChoice:
    """The live techniques' choice (choose_technique without cold)."""
    postcopy_allowed = postcopy_allowed and not postcopy_forbidden
    usable = _usable(costs, rules, postcopy_allowed)
    if not usable:
        raise ValueError("post-copy is not allowed and no pre-copy cost was predicted (of the techniques allowed)")
    post = next((c for c in usable if c.technique is Technique.POSTCOPY), None)
    harm, priced = _postcopy_harm(post, bandwidth_mib_s, dirty_rate_mib_s, rules)

    def rank(cost: MigrationCost) -> tuple[float, int]:
        value = _ranked(cost.transferred_mib if objective.minimize_transferred else cost.total_time_ms, rules.risk)
        if cost.technique is Technique.POSTCOPY:  # its harm in the quantity ranked: time, or what the link sends
            value += harm * bandwidth_mib_s / 1000 if objective.minimize_transferred else harm
        return value, _PREFERENCE.index(cost.technique)

    reasons: list[str] = []
    feasible = sorted((c for c in usable if not _violations(c, objective)), key=rank)
    calm, weighed = (None, "") if any(c.technique.is_precopy for c in feasible) else _calm_precopy(
        usable, post, harm, objective)
    if calm is not None:
        chosen = calm
        reasons.append(weighed)
    elif feasible:
        chosen = feasible[0]
        target = "fewest bytes" if objective.minimize_transferred else "shortest total time"
        reasons.append(f"chose {_describe(chosen)}: {target} among techniques meeting every limit")
    else:
        chosen = post or _fallback(usable, rules.fallback)
        reasons.append(f"no technique meets every limit; chose {_describe(chosen)}")
        reasons.extend(f"{chosen.technique} {v}" for v in _violations(chosen, objective))
    if calm is None and weighed:
        reasons.append(weighed)
    for other in sorted(usable, key=rank):
        if other is not chosen:
            broken = _violations(other, objective)
            why = "; ".join(broken) if broken else _passed_over(
                other, chosen, objective, risk=rules.risk, harm=harm, ranked_ahead=rank(other) < rank(chosen))
            reasons.append(f"not {_describe(other)}: {why}")
    if priced:
        reasons.append(priced)
    if postcopy_forbidden:
        reasons.append(f"post-copy {postcopy_forbidden}")
    elif not postcopy_allowed:
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
