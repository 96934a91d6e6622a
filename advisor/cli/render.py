"""Text renderings of the advisor's answers, shared by the commands and the demo."""

from __future__ import annotations

from collections.abc import Sequence

from advisor.api.v1 import advisor_pb2 as pb
from advisor.tables import safe, table


def technique_name(value: int) -> str:
    return pb.Technique.Name(value).removeprefix("TECHNIQUE_").lower()


def state_name(value: int) -> str:
    return pb.RecommendationState.Name(value).removeprefix("RECOMMENDATION_STATE_").lower()


def _est(e: pb.Estimate, scale: float = 1.0, digits: int = 0) -> str:
    return f"{e.median / scale:.{digits}f} [{e.low / scale:.{digits}f}-{e.high / scale:.{digits}f}]"


def render_costs(costs: Sequence[pb.MigrationCost], chosen: int | None = None) -> str:
    rows = [
        [
            ("> " if c.technique == chosen else "  ") + technique_name(c.technique),
            _est(c.total_time_ms, 1000, 1), _est(c.downtime_ms), _est(c.transferred_mib),
            "yes" if c.converges else "NO",
        ]
        for c in costs
    ]
    model = costs[0].model if costs else pb.ModelInfo()
    note = safe(f"model: {model.name} {model.version} (interval: {model.interval_kind})")
    if model.fallback_reason:
        note += f"\nfallback: {safe(model.fallback_reason)}"
    return table(["technique", "total s [interval]", "downtime ms", "MiB sent", "converges"], rows) + "\n" + note


def render_recommendation(rec: pb.Recommendation) -> str:
    out = [f"Recommendation {safe(rec.id)} ({safe(rec.goal)}), {state_name(rec.state)}", f"  {safe(rec.summary)}"]
    if rec.decided_by:
        out.append(f"  decided by {safe(rec.decided_by)}: {safe(rec.decision_reason) or '(no reason given)'}")
    for move in rec.moves:
        p = move.parameters
        out += ["", "Why:"] + [f"  - {safe(r)}" for r in move.reasons]
        switch = f", switch to post-copy after {p.postcopy_after_ms / 1000:.1f} s" if p.HasField(
            "postcopy_after_ms") else ""
        out += [
            "",
            f"Parameters: {technique_name(p.technique)}, bandwidth {p.bandwidth_mib_s:.0f} MiB/s, "
            f"max downtime {p.max_downtime_ms:.0f} ms, deadline {p.deadline_ms / 1000:.0f} s{switch}",
            "",
            "Targets considered:",
        ]
        rows = [
            [a.host_id, "yes" if a.eligible else "no", f"{a.score:.2f}" if a.eligible else "",
             f"{a.cpu_after_ratio:.0%}", f"{a.memory_after_ratio:.0%}", "; ".join(a.rejections)]
            for a in move.assessments
        ]
        out.append(table(["host", "eligible", "score", "CPU after", "mem after", "rejected because"], rows))
        if move.rejection_counts:
            counts = ", ".join(f"{safe(c.filter)} {c.hosts} (e.g. {safe(c.example_host_id)})"
                               for c in move.rejection_counts)
            out.append(f"Of {move.hosts_assessed} hosts assessed, rejected by: {counts}.")
    return "\n".join(out)


def render_plan(rec: pb.Recommendation) -> str:
    rows = [[i, m.vm_id, m.source_host_id, m.target_host_id, technique_name(m.parameters.technique),
             f"{m.predicted_cost.total_time_ms.median / 1000:.1f}", f"{m.predicted_cost.downtime_ms.median:.0f}"]
            for i, m in enumerate(rec.moves)]
    out = [f"Plan {safe(rec.id)} ({safe(rec.goal)}), {state_name(rec.state)}", f"  {safe(rec.summary)}", "",
           table(["move", "vm", "from", "to", "technique", "time s", "downtime ms"], rows, right=(0, 5, 6))]
    if rec.moves:
        out.append(f"\nReview with `advisor recs show {safe(rec.id)}`; after approval, run each move with "
                   f"`advisor migrate execute {safe(rec.id)} --move N`.")
    return "\n".join(out)


def outlook(p: pb.MigrationProgress) -> str:
    """How far along and how long still: "42% ETA 12.3 s", or "not converging"; "" before anything is known."""
    if p.phase in (pb.MIGRATION_PHASE_SUCCEEDED, pb.MIGRATION_PHASE_FAILED, pb.MIGRATION_PHASE_ABORTED):
        return ""
    if p.HasField("converging") and not p.converging:
        return f"{p.progress_ratio:4.0%} not converging"
    if p.HasField("eta_ms"):
        return f"{p.progress_ratio:4.0%} ETA {p.eta_ms / 1000:5.1f} s"
    return ""


def phase_name(value: int) -> str:
    return pb.MigrationPhase.Name(value).removeprefix("MIGRATION_PHASE_").lower()


def render_operation(op: pb.Operation) -> str:
    lines = [f"Operation {safe(op.operation_id)} of recommendation {safe(op.recommendation_id)}: "
             f"{phase_name(op.phase)}", f"  {safe(op.message)}"]
    if op.HasField("outcome"):
        c, o = op.predicted_cost, op.outcome
        rows = [["total time ms", f"{c.total_time_ms.median:.0f}", f"{o.total_time_ms:.0f}"],
                ["downtime ms", f"{c.downtime_ms.median:.0f}", f"{o.downtime_ms:.0f}"],
                ["data MiB", f"{c.transferred_mib.median:.0f}", f"{o.transferred_mib:.0f}"],
                ["iterations", "", str(o.iterations)], ["post-copy requests", "", str(o.postcopy_requests)]]
        lines.append(table(["", "predicted", "actual"], rows, right=(1, 2)))
    return "\n".join(lines)


def hosts_rows(hosts: Sequence[pb.HostStatus]) -> list[list[object]]:
    return [
        [h.host.id, h.host.cpu_cores, h.host.memory_mib, h.vm_count, h.allocated_vcpus, h.allocated_memory_mib,
         f"{h.cpu_utilization_ratio:.0%}" if h.HasField("cpu_utilization_ratio") else "-",
         "maintenance" if h.host.in_maintenance else "", h.host.cpu_model]
        for h in hosts
    ]


def hosts_table(hosts: Sequence[pb.HostStatus]) -> str:
    return table(["host", "cores", "MiB", "VMs", "vCPUs used", "MiB used", "CPU", "state", "CPU model"],
                 hosts_rows(hosts), right=(1, 2, 3, 4, 5, 6))


def vms_rows(vms: Sequence[pb.VmStatus]) -> list[list[object]]:
    return [
        [v.vm.id, v.vm.host_id, v.vm.vcpus, v.vm.memory_mib,
         f"{v.cpu_utilization_ratio:.0%}" if v.HasField("cpu_utilization_ratio") else "-",
         f"{v.dirty_rate_mib_s:.1f}" if v.HasField("dirty_rate_mib_s") else "-",
         ",".join(v.vm.anti_affinity_groups)]
        for v in vms
    ]
