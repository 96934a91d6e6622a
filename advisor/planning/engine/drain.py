"""The drain strategy: evacuate one host for maintenance, within a deadline, saying up front what cannot go.

1. Dry run, as DRS does before entering maintenance mode: each VM of the host is assessed alone against every
   other host on the cluster as it is. A VM cannot be evacuated when it is pinned or migrating, when no host
   passes the filters (the rejections are counted by filter, e.g. "CPU model 998, memory 1"), or when even its
   best target cannot be reached within the limits (every allowed technique breaks the downtime limit or the
   deadline). These are reported before any move is planned (`Plan.dry_run`).
2. Plan: the other VMs, hardest first (fewest eligible hosts, then most memory), each to its best target on the
   cluster as the earlier moves leave it (a VM that no longer fits is refused with the reason). Every host is
   assessed. Cooldowns do not hold a drain back (maintenance comes first), but a VM still does not return to a
   host it left recently.
3. Order and deadline: moves are scheduled longest first (they share one source, so this shortens the drain) under
   the concurrency limits, each priced at its share of the links it shares with the moves running when it starts
   (schedule.py); a move whose p90 end falls after `deadline_s` is postponed with the reason, and the summary says
   whether the host will be empty in time and when the drain is predicted to end.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from advisor.domain.text import counted
from advisor.planning.engine.churn import MoveHistory
from advisor.planning.engine.costs import MoveCosts
from advisor.planning.engine.filters import assess, rejections
from advisor.planning.engine.planner import Planner, PlanSettings
from advisor.planning.engine.results import Plan, Refusal
from advisor.planning.engine.snapshot import ClusterArrays
from advisor.planning.engine.weighers import Weights, weigh

DRAIN_WEIGHTS = Weights(load=1.0)


def _dry_run(p: Planner, host: int, weights: Weights) -> tuple[list[Refusal], dict[int, int]]:
    c, loads = p.cluster, p.cluster.loads
    excluded = np.zeros(c.n_hosts, dtype=bool)
    excluded[host] = True
    cannot: list[Refusal] = []
    eligible: dict[int, int] = {}
    for vm in p.work.vms_on(host).tolist():
        vm_id, host_id = c.vm_ids[vm], c.host_ids[host]
        if not c.vm_movable[vm]:
            cannot.append(Refusal(vm_id, host_id, "", "pinned", "migrating now or pinned by its owner"))
            continue
        a = assess(c, loads, vm, p.settings.filters, excluded=excluded, left=int(p.left[vm]))
        n = int(a.eligible.sum())
        if n == 0:
            counts = rejections(c, loads, a, p.settings.filters)
            text = "no host passes the filters: " + "; ".join(f"{f} {k} (e.g. {h}: {r})" for f, k, h, r in counts)
            cannot.append(Refusal(vm_id, host_id, "", "no target", text))
            continue
        scores = weigh(c, loads, a, weights, reference_w=p.reference_w)
        best = int(scores.hosts[scores.best()])
        broken = p.check(vm, best)
        if broken:
            cannot.append(Refusal(vm_id, host_id, c.host_ids[best], "limit", f"even to {c.host_ids[best]}: "
                                  f"{broken}"))
            continue
        eligible[vm] = n
    return cannot, eligible


def drain(
    cluster: ClusterArrays,
    costs: MoveCosts,
    *,
    host: str,
    settings: PlanSettings = PlanSettings(),  # noqa: B008 - frozen dataclass defaults are safe to share
    history: MoveHistory | None = None,
    now_s: float = 0.0,
    deadline_s: float = 0.0,
    weights: Weights = DRAIN_WEIGHTS,
    max_moves: int = 0,
    pricing: MoveCosts | None = None,
) -> Plan:
    """Evacuate `host`; see the module docstring. The move cap does not apply unless `max_moves` is given."""
    h = cluster.host_index(host)
    if deadline_s > 0 and not settings.deadline_ms:
        settings = replace(settings, deadline_ms=deadline_s * 1000.0)
    p = Planner(cluster, costs, settings, history, now_s, max_moves or cluster.n_vms, pricing=pricing)
    cannot, eligible = _dry_run(p, h, weights)
    excluded = np.zeros(cluster.n_hosts, dtype=bool)
    excluded[h] = True
    order = sorted(eligible, key=lambda v: (eligible[v], -cluster.vm_memory_mib[v], cluster.vm_ids[v]))
    for rank, vm in enumerate(order, 1):
        if p.full:
            p.refuse(vm, "cap", f"beyond the {p.cap} moves allowed", postponed=True)
            continue
        choice = p.choose(vm, weights, excluded=excluded, pool="all")
        if choice is None:
            p.refuse(vm, "no target", f"no room left once the VMs placed before it moved: {p.last_failure}")
            continue
        broken = p.check(vm, choice.host)
        if broken:
            p.refuse(vm, "limit", broken, choice.host)
            continue
        why = (f"drain {host} for maintenance: {cluster.vm_ids[vm]} has "
               f"{counted(int(eligible[vm]), 'eligible host')} and {cluster.vm_memory_mib[vm]:.0f} MiB; placed {rank} "
               f"of {len(order)} (hardest first)")
        p.apply(vm, choice, why, 1.0, weights)
    params = {"host": host, "deadline_s": deadline_s, "weights": weights}
    plan = p.finish("drain", params, "", "required", dry_run=cannot, longest_first=True)
    if deadline_s > 0:
        for m in plan.moves:
            end = m.start_s + m.cost.total_time_ms.high / 1000
            if end > deadline_s:
                p.refuse(m.vm, "deadline", f"would end about {end:.0f} s (p90) into the drain, after the "
                         f"{deadline_s:.0f} s deadline at the concurrency limits", m.target, postponed=True)
        late = {m.vm for m in plan.moves if m.start_s + m.cost.total_time_ms.high / 1000 > deadline_s}
        if late:
            p.drop(late)
    left = len(cannot) + len(p.refused)
    state = "empty" if not left else f"left with {counted(left, 'VM')}"
    late_n = sum(r.kind == "deadline" for r in p.refused.values())
    timing = "" if deadline_s <= 0 else (f", within the {deadline_s:.0f} s deadline" if not late_n else
                                         f"; {counted(late_n, 'move')} would end after the {deadline_s:.0f} s deadline")
    summary = (f"Drain {host}: {counted(len(cannot), 'VM')} cannot be evacuated, "
               f"{counted(len(p.records), 'move')} planned, the host is then {state}{timing}.")
    plan = p.finish("drain", params, summary, "required", dry_run=cannot, longest_first=True)
    if not plan.moves:
        return plan
    limits = settings.concurrency
    predicted = (f" Predicted end: about {plan.duration_s:.0f} s (p90 {plan.duration_p90_s:.0f} s) after the first "
                 f"move starts, the moves out of {host} ({limits.per_source} at a time) sharing its link.")
    return replace(plan, summary=summary + predicted + plan.summary[len(summary):])
