"""When a recommendation no longer holds: the cluster changed under it so much that its prediction is wrong.

Pure: the use case gathers what the cluster says now about the move that would start next (`MoveNow`) and asks
`stale_reason`. The rules, each with the reason it gives:

- too old: made more than `max_age_s` ago (clusters move; a prediction has a shelf life);
- the VM is gone, or runs on another host than the move's source;
- the target is gone, in maintenance, or would now reject the VM (the placement filter's words);
- the predicted cost now, with the same technique and parameters, falls outside the recommendation's interval
  widened by `tolerance` (its time or data), or no longer fits the allowed downtime the move was chosen for, or
  a pre-copy that was predicted to converge is now predicted not to. "Then" is the move's own inputs predicted
  again by the model serving now (`MoveNow.baseline`), so that what changed is the cluster, not the model or the
  way inputs were gathered; without it, the recommendation's stored prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.domain.model import Interval, MigrationCost, MigrationInputs, Move


@dataclass(frozen=True)
class ExpiryRules:
    max_age_s: float = 3600.0
    # How far outside the old interval the new median may fall, as a share of the interval's bound.
    tolerance: float = 0.25


@dataclass(frozen=True)
class MoveNow:
    """What the cluster says now about a move."""

    vm_host_id: str | None  # None: the VM is no longer in the inventory
    target_exists: bool
    target_rejections: tuple[str, ...]  # the placement filters' reasons the target would reject the VM now
    cost: MigrationCost | None  # the move's cost predicted now (None when it cannot be predicted)
    inputs: MigrationInputs | None = None  # what that prediction was made from
    baseline: MigrationCost | None = None  # the move's own inputs, predicted by the same model now


def _outside(now: float, then: Interval, tolerance: float) -> bool:
    return now > then.high * (1 + tolerance) or now < then.low / (1 + tolerance)


def stale_reason(move: Move, now: MoveNow, created_at_s: float, now_s: float,
                 rules: ExpiryRules = ExpiryRules()) -> str | None:
    """Why the move's recommendation no longer holds, or None when it still does."""
    age = now_s - created_at_s
    if rules.max_age_s > 0 and age > rules.max_age_s:
        return f"made {age / 60:.0f} min ago; recommendations hold for {rules.max_age_s / 60:.0f} min"
    if now.vm_host_id is None:
        return f"VM {move.vm_id} is no longer in the inventory"
    if now.vm_host_id != move.source_host_id:
        return f"VM {move.vm_id} now runs on {now.vm_host_id}, not {move.source_host_id}"
    if not now.target_exists:
        return f"target {move.target_host_id} is no longer in the inventory"
    if now.target_rejections:
        return f"target {move.target_host_id} would reject {move.vm_id} now: {'; '.join(now.target_rejections)}"
    if now.cost is None:
        return None
    then, cost = now.baseline or move.predicted_cost, now.cost
    for name, unit, label in (("total_time_ms", "ms", "total time"), ("transferred_mib", "MiB", "data sent")):
        was, is_ = getattr(then, name), getattr(cost, name)
        if _outside(is_.median, was, rules.tolerance):
            return (f"predicted {label} is now {is_.median:.0f} {unit}, outside the recommendation's "
                    f"{was.low:.0f}-{was.high:.0f} {unit} ({_inputs_change(move, now)})")
    limit = move.parameters.max_downtime_ms
    if move.parameters.technique.is_precopy and cost.downtime_ms.median > limit >= then.downtime_ms.median:
        return f"predicted downtime is now {cost.downtime_ms.median:.0f} ms, over the {limit:.0f} ms allowed"
    if then.converges and not cost.converges:
        return f"{cost.technique} is now predicted not to converge ({_inputs_change(move, now)})"
    return None


def _inputs_change(move: Move, now: MoveNow) -> str:
    old, new = move.inputs, now.inputs
    if old is None or new is None:
        return "the inputs then were not recorded"
    return (f"dirty rate {old.dirty_rate_mib_s:.1f} -> {new.dirty_rate_mib_s:.1f} MiB/s, memory "
            f"{old.memory_mib:.0f} -> {new.memory_mib:.0f} MiB, bandwidth {old.usable_bandwidth_mib_s:.1f} -> "
            f"{new.usable_bandwidth_mib_s:.1f} MiB/s")
