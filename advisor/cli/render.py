"""Text renderings of the advisor's answers, shared by the commands and the demo."""

from __future__ import annotations

from collections.abc import Sequence

from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.tables import table


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
    note = f"model: {model.name} {model.version} (interval: {model.interval_kind})"
    if model.fallback_reason:
        note += f"\nfallback: {model.fallback_reason}"
    return table(["technique", "total s [interval]", "downtime ms", "MiB sent", "converges"], rows) + "\n" + note


def render_recommendation(rec: pb.Recommendation) -> str:
    out = [f"Recommendation {rec.id} ({rec.goal}), {state_name(rec.state)}", f"  {rec.summary}"]
    if rec.decided_by:
        out.append(f"  decided by {rec.decided_by}: {rec.decision_reason or '(no reason given)'}")
    for move in rec.moves:
        p = move.parameters
        out += ["", "Why:"] + [f"  - {r}" for r in move.reasons]
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
    return "\n".join(out)


def phase_name(value: int) -> str:
    return pb.MigrationPhase.Name(value).removeprefix("MIGRATION_PHASE_").lower()


def render_operation(op: pb.Operation) -> str:
    lines = [f"Operation {op.operation_id} of recommendation {op.recommendation_id}: {phase_name(op.phase)}",
             f"  {op.message}"]
    if op.HasField("outcome"):
        c, o = op.predicted_cost, op.outcome
        rows = [["total time ms", f"{c.total_time_ms.median:.0f}", f"{o.total_time_ms:.0f}"],
                ["downtime ms", f"{c.downtime_ms.median:.0f}", f"{o.downtime_ms:.0f}"],
                ["data MiB", f"{c.transferred_mib.median:.0f}", f"{o.transferred_mib:.0f}"],
                ["iterations", "", str(o.iterations)], ["post-copy requests", "", str(o.postcopy_requests)]]
        lines.append(table(["", "predicted", "actual"], rows, right=(1, 2)))
    return "\n".join(lines)


def hosts_table(client: AdvisorClient) -> str:
    rows = [
        [h.host.id, h.host.cpu_cores, h.host.memory_mib, h.vm_count, h.allocated_vcpus, h.allocated_memory_mib,
         f"{h.cpu_utilization_ratio:.0%}" if h.HasField("cpu_utilization_ratio") else "-",
         "maintenance" if h.host.in_maintenance else "", h.host.cpu_model]
        for h in client.list_hosts()
    ]
    return table(["host", "cores", "MiB", "VMs", "vCPUs used", "MiB used", "CPU", "state", "CPU model"], rows,
                 right=(1, 2, 3, 4, 5, 6))
