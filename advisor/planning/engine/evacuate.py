"""The evacuate strategy: restart elsewhere the VMs of a host that is down, in priority order.

Not a drain: nothing migrates, since the host and its guests are gone. Each VM is restarted on another host from
its definition, which needs its disks reachable there (shared storage) and its definition known; the use case
says which VMs lack either (`unrestartable`), and those are refused with that reason before any placement.

The others are placed one at a time in priority order (higher `priorities` first, then the most memory, then by
id), each by the engine's assessment as a new VM is placed (the filters: capacity, CPU headroom, affinity and
anti-affinity, cluster, CPU model, networks; migration TLS does not apply to a restart, and neither cooldowns nor
"recently left"), on the cluster as the restarts before it leave it: a VM that no longer fits is refused with the
filters that blocked it, and a VM of lower priority never takes the room of one above it. `excluded` hosts (others
found down) take nothing.

A restart is no migration: its cost is its steps (define, start, the guest checked: advisor.physics.cold's
`restart_cost`, lab figures; nothing copied, the guest's boot not counted), the same for every VM, and its
parameters advisor.domain.evacuation's (`kind` restart). They start in the plan's order as the concurrency limits
allow (the executor's: the dead source takes no slot, each target and the cluster theirs), which gives the plan its
duration.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

import numpy as np

from advisor.domain.evacuation import RESTART_PARAMETERS
from advisor.domain.text import counted
from advisor.domain.transport import TlsMode
from advisor.physics.cold import restart_cost
from advisor.planning.engine.churn import MoveHistory
from advisor.planning.engine.costs import MoveCosts
from advisor.planning.engine.planner import Planner, PlanSettings
from advisor.planning.engine.results import Explanation, Plan, PlannedMove
from advisor.planning.engine.schedule import schedule
from advisor.planning.engine.snapshot import ClusterArrays
from advisor.planning.engine.weighers import Weights

EVACUATE_WEIGHTS = Weights(load=1.0)
SHOWN = 20  # VMs that cannot be restarted named in the summary


def evacuate(
    cluster: ClusterArrays,
    costs: MoveCosts,
    *,
    host: str,
    settings: PlanSettings = PlanSettings(),  # noqa: B008 - frozen dataclass defaults are safe to share
    history: MoveHistory | None = None,
    now_s: float = 0.0,
    priorities: Mapping[str, int] | None = None,
    unrestartable: Mapping[str, tuple[str, str]] | None = None,
    excluded: Collection[str] = (),
    weights: Weights = EVACUATE_WEIGHTS,
    max_moves: int = 0,
    pricing: MoveCosts | None = None,
) -> Plan:
    """Restart the VMs of `host` elsewhere; see the module docstring. `unrestartable` maps a VM id to (kind,
    reason) of why it cannot be restarted; `max_moves` caps the restarts (0: all); `history`, `costs` and
    `pricing` are not used (a restart is neither a move to cool down from nor a migration to price)."""
    h = cluster.host_index(host)
    settings = replace(settings, filters=replace(settings.filters, migration_tls=TlsMode.OFF))
    p = Planner(cluster, costs, settings, None, now_s, max_moves or cluster.n_vms)
    out = np.zeros(cluster.n_hosts, dtype=bool)
    out[h] = True
    for other in excluded:
        out[cluster.host_index(other)] = True
    ranks, blocked = priorities or {}, unrestartable or {}
    vms = p.work.vms_on(h).tolist()
    order = sorted(vms, key=lambda v: (-ranks.get(cluster.vm_ids[v], 0), -cluster.vm_memory_mib[v],
                                       cluster.vm_ids[v]))
    placed = 0
    for rank, vm in enumerate(order, 1):
        vm_id = cluster.vm_ids[vm]
        if vm_id in blocked:
            p.refuse(vm, *blocked[vm_id])
            continue
        if p.full:
            p.refuse(vm, "cap", f"beyond the {p.cap} restarts allowed", postponed=True)
            continue
        choice = p.choose(vm, weights, excluded=out, pool="all")
        if choice is None:
            why = p.last_failure if not placed else f"{p.last_failure} (once the {placed} before it restart)"
            p.refuse(vm, "no target", why)
            continue
        why = (f"evacuate {host}, down: {vm_id} restarts {rank} of {len(order)} by priority "
               f"{ranks.get(vm_id, 0)} ({cluster.vm_memory_mib[vm]:.0f} MiB)")
        p.apply(vm, choice, why, 0.0, weights)
        placed += 1
    cost = restart_cost()
    n = len(p.records)
    # each restart its own source (the dead host takes no slot); its target's and the cluster's slots as any move's
    sources, targets = -1 - np.arange(n, dtype=np.int64), np.array([r.target for r in p.records], dtype=np.int64)
    median, p90 = (schedule(sources, targets, np.full(n, bound / 1000.0), settings.concurrency)
                   for bound in (cost.total_time_ms.median, cost.total_time_ms.high))
    moves = tuple(PlannedMove(
        cluster.vm_ids[r.vm], host, cluster.host_ids[r.target], r.vm, r.source, r.target, cost,
        RESTART_PARAMETERS, 1.0, 0.0, int(median.wave[k]), float(median.start_s[k]), float(median.end_s[k]),
        Explanation(r.why_vm, r.why_host, "restart: not a migration (the host is down); defined and started on "
                    f"the target from its last known definition, predicted {cost.total_time_ms.median / 1000:.1f} s "
                    f"(p90 {cost.total_time_ms.high / 1000:.1f} s) to the guest running and checked",
                    r.assessed, r.eligible, r.rejections, r.alternatives), 0.0,
    ) for k, r in enumerate(p.records))
    refused = tuple(p.refused.values())
    summary = (f"Evacuate {host}: {counted(len(vms), 'VM')} on it; {counted(len(moves), 'restart')} planned on "
               f"other hosts in priority order, {counted(len(refused), 'VM')} cannot be restarted. Restarts are not "
               f"migrations: nothing is copied; each is defined, started and checked in about "
               f"{cost.total_time_ms.median / 1000:.1f} s (p90 {cost.total_time_ms.high / 1000:.0f} s), about "
               f"{median.duration_s:.0f} s for them all (p90 {p90.duration_s:.0f} s), then each guest boots again, "
               f"down since the host died.")
    if refused:
        shown = "; ".join(f"{r.vm_id} ({r.kind}: {r.reason})" for r in refused[:SHOWN])
        more = f"; and {len(refused) - SHOWN} more" if len(refused) > SHOWN else ""
        summary += f" Cannot be restarted: {shown}{more}."
    if excluded:
        summary += f" Also down, so taking nothing: {', '.join(excluded)}."
    return Plan("evacuate", {"host": host, "excluded": tuple(excluded), "weights": weights}, moves, refused, summary,
                f"{cost.model.name} {cost.model.version}", "", median.duration_s, p90.duration_s, median.waves,
                cluster.n_hosts, cluster.with_loads(p.work.loads.copy()))
