"""Text renderings of the advisor's answers, shared by the commands and the demo."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from advisor.api.v1 import advisor_pb2 as pb
from advisor.tables import count, paint, safe, table, wrap

# How a state looks on a terminal (colour only there): green done, red went wrong, yellow waits for a person.
STATE_COLOURS = {"proposed": "yellow", "approved": "cyan", "executing": "blue", "running": "blue", "queued": "blue",
                 "precopy": "blue", "postcopy": "blue", "cold": "blue", "succeeded": "green", "failed": "red",
                 "aborted": "red",
                 "expired": "dim", "cancelled": "dim", "superseded": "dim", "rejected": "dim", "dropped": "dim",
                 "waiting": ""}


def state_colour(text: str) -> str:
    return STATE_COLOURS.get(text, "")


def move_state_name(value: int) -> str:
    return pb.MoveState.Name(value).removeprefix("MOVE_STATE_").lower()


# Nothing more can happen to a recommendation in these (advisor.domain.recommendation.ENDED; a failed or aborted one
# can still retry or run its other moves).
_CLOSED = frozenset({pb.RECOMMENDATION_STATE_REJECTED, pb.RECOMMENDATION_STATE_SUCCEEDED,
                     pb.RECOMMENDATION_STATE_EXPIRED, pb.RECOMMENDATION_STATE_CANCELLED,
                     pb.RECOMMENDATION_STATE_SUPERSEDED})


def move_state_in(rec: pb.Recommendation, move: pb.Move) -> str:
    """A move's state as it stands: one never started in a recommendation that has ended (waiting, as one rejected
    before dropping was stored, or dropped) shows the recommendation's end: rejected, superseded, expired..."""
    if move.state in (pb.MOVE_STATE_WAITING, pb.MOVE_STATE_DROPPED) and rec.state in _CLOSED:
        return state_name(rec.state)
    return move_state_name(move.state)


def _when(ts: Timestamp) -> str:
    return str(ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"))


def technique_name(value: int) -> str:
    return pb.Technique.Name(value).removeprefix("TECHNIQUE_").lower()


def how(p: pb.MigrationParameters) -> str:
    """The technique of a migration, or "restart" for a restart (which has none)."""
    return "restart" if p.kind == pb.MOVE_KIND_RESTART else technique_name(p.technique)


def state_name(value: int) -> str:
    return pb.RecommendationState.Name(value).removeprefix("RECOMMENDATION_STATE_").lower()


def model_label(model: pb.ModelInfo, *, interval: bool = True) -> str:
    """"lightgbm-cost 2.1.0, p10-p90 conformal ..." from what is known of a model (no empty parts)."""
    name = " ".join(safe(part) for part in (model.name, model.version) if part) or "model not named"
    return name + (f", {safe(model.interval_kind)}" if interval and model.interval_kind else "")


def _est(e: pb.Estimate, scale: float = 1.0, digits: int = 0) -> str:
    return f"{e.median / scale:.{digits}f} [{e.low / scale:.{digits}f}-{e.high / scale:.{digits}f}]"


def _down(c: pb.MigrationCost, interval: bool = True) -> str:
    """A predicted downtime in ms; '-' where unset (a restart's: it began when the host died)."""
    if not c.HasField("downtime_ms"):
        return "-"
    return _est(c.downtime_ms) if interval else f"{c.downtime_ms.median:.0f}"


def parameters_text(p: pb.MigrationParameters) -> str:
    """A move's parameters in a sentence: the knobs of its technique, its transport and the disks it copies."""
    if p.kind == pb.MOVE_KIND_RESTART:
        return "restart: defined and started on the target from its last known definition"
    text = f"{how(p)}, bandwidth {p.bandwidth_mib_s:.0f} MiB/s"
    if p.technique == pb.TECHNIQUE_COLD:
        text += f", shut down within {p.shutdown_timeout_ms / 1000:.0f} s, then forced off"
    else:
        text += f", max downtime {p.max_downtime_ms:.0f} ms, deadline {p.deadline_ms / 1000:.0f} s"
    if p.HasField("postcopy_after_ms"):
        text += f", switch to post-copy after {p.postcopy_after_ms / 1000:.1f} s"
    text += ", over TLS" if p.tls else ", plain TCP"
    if p.migrate_disks:
        text += f", copying its local disk{'s' if len(p.migrate_disks) > 1 else ''} {', '.join(p.migrate_disks)}"
    return text


def _predicted_line(move: pb.Move) -> str:
    c = move.predicted_cost
    if not move.HasField("predicted_cost"):
        return "  not predicted"
    if move.parameters.kind == pb.MOVE_KIND_RESTART:
        return wrap(f"{_est(c.total_time_ms, 1000, 1)} s to the guest running and checked; downtime not known (since "
                    f"its host died); nothing copied ({model_label(c.model)})", "  predicted: ", "    ")
    probability = f" (p = {c.converge_probability:.2f})" if c.HasField("converge_probability") else ""
    return wrap(f"{_est(c.total_time_ms, 1000, 1)} s, downtime {_est(c.downtime_ms)} ms, "
                f"{_est(c.transferred_mib)} MiB, converges {'yes' if c.converges else 'NO'}{probability} "
                f"({model_label(c.model)})", "  predicted: ", "    ")


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
    note = f"model: {model_label(model, interval=False)}" + (
        f" (interval: {safe(model.interval_kind)})" if model.interval_kind else "")
    if model.fallback_reason:
        note += f"\nfallback: {safe(model.fallback_reason)}"
    return table(["technique", "total s [interval]", "downtime ms", "MiB sent", "converges"], rows) + "\n" + note


def _gain(rec: pb.Recommendation) -> str:
    if not rec.HasField("benefit"):
        return "gain not measured"
    ratio = f", {rec.benefit_over_cost:.1f}x its cost" if rec.HasField("benefit_over_cost") else ""
    return f"gains {rec.benefit:.3g} {safe(rec.benefit_unit)}{ratio}"


def render_recommendation(rec: pb.Recommendation, ruled_out: Sequence[Sequence[pb.HostAssessment]] = ()) -> str:
    """Everything a reviewer needs: state, priority, automation, each move's cost with intervals, technique and
    why, the alternatives and the hosts ruled out with their reasons (`ruled_out[i]`, fetched for move i), and
    the history."""
    state = state_name(rec.state)
    # an answer that was not stored has no id and no state of its own: nothing to approve
    standing = f"{safe(rec.id)} ({safe(rec.goal)}), {paint(state, state_colour(state))}" if rec.id else (
        f"({safe(rec.goal)}), dry run: not stored, nothing to approve")
    out = [f"Recommendation {standing}, priority {rec.priority} ({safe(rec.priority_reason) or 'no reason given'})",
           wrap(safe(rec.summary), "  "),
           f"  automation {safe(rec.automation_level) or 'manual'} in cluster {safe(rec.cluster) or 'default'}; "
           f"{_gain(rec)}"]
    if rec.decided_by:
        out.append(f"  decided by {safe(rec.decided_by)}: {safe(rec.decision_reason) or '(no reason given)'}")
    if rec.expiry_reason:
        out.append(f"  expired: {safe(rec.expiry_reason)}")
    if rec.superseded_by:
        out.append(f"  superseded by {safe(rec.superseded_by)}")
    if rec.cancel_requested and rec.state == pb.RECOMMENDATION_STATE_EXECUTING:
        out.append("  cancel requested: the running move ends first")
    if len(rec.moves) > 1:
        out += ["", moves_table(rec)]
    for i, move in enumerate(rec.moves):
        p = move.parameters
        out += ["", f"Move {i + 1}: {safe(move.vm_id)} {safe(move.source_host_id)} -> {safe(move.target_host_id)}, "
                    f"{move_state_in(rec, move)}" + (f", attempt {move.attempts} ({safe(move.operation_id)})"
                                                        if move.attempts else ""),
                _predicted_line(move)]
        out += ["", "Why:"] + [wrap(safe(r), "  - ", "    ") for r in move.reasons]
        out += [
            "",
            wrap(parameters_text(p), "Parameters: ", "  "),
            "",
            "Targets considered:",
        ]
        rows = [
            [a.host_id, "yes" if a.eligible else "no", f"{a.score:.2f}" if a.eligible else "",
             f"{a.cpu_after_ratio:.0%}", f"{a.memory_after_ratio:.0%}", "; ".join(a.rejections)]
            for a in move.assessments
        ]
        out.append(table(["host", "eligible", "score", "CPU after", "mem after", "rejected because"], rows, fit=5))
        if move.rejection_counts:
            counts = ", ".join(f"{safe(c.filter)} {c.hosts} (e.g. {safe(c.example_host_id)})"
                               for c in move.rejection_counts)
            rejected = sum(c.hosts for c in move.rejection_counts)  # each host under the first filter refusing it
            out.append(wrap(f"Of {count(move.hosts_assessed, 'host')} assessed, {rejected} rejected: {counts}."))
        if i < len(ruled_out) and ruled_out[i]:
            out += ["Ruled out:"] + [f"  {safe(a.host_id)}: {safe('; '.join(a.rejections))}" for a in ruled_out[i]]
    if rec.history:
        out += ["", "History:", table(["time (UTC)", "state", "by", "why"],
                                      [[_when(h.time), state_name(h.state), h.actor, h.reason] for h in rec.history],
                                      colours={1: state_colour}, fit=3)]
    return "\n".join(out)


def moves_table(rec: pb.Recommendation) -> str:
    rows = [[i, m.vm_id, m.source_host_id, m.target_host_id, how(m.parameters),
             _est(m.predicted_cost.total_time_ms, 1000, 1), _down(m.predicted_cost, interval=False),
             move_state_in(rec, m), m.attempts or "", m.operation_id]
            for i, m in enumerate(rec.moves, 1)]
    return table(["move", "vm", "from", "to", "technique", "time s [interval]", "downtime ms", "state", "attempts",
                  "operation"], rows, right=(0, 6, 8), colours={7: state_colour})


def recommendations_table(recs: Sequence[pb.Recommendation]) -> str:
    rows = [[r.id, _when(r.create_time), state_name(r.state), r.priority, r.goal, len(r.moves),
             f"{r.benefit_over_cost:.1f}x" if r.HasField("benefit_over_cost") else "-", r.automation_level,
             r.summary] for r in recs]
    return table(["id", "created (UTC)", "state", "priority", "goal", "moves", "gain/cost", "automation", "summary"],
                 rows, right=(3, 5, 6), colours={2: state_colour}, fit=8)


def _inside(e: pb.Estimate, actual: float) -> str:
    return "yes" if e.low <= actual <= e.high else "NO"


def measured(o: pb.MigrationOutcome, field: str, scale: float = 1.0, digits: int = 0) -> str:
    """An actual figure, or "-" where it was not measured (a failed move's downtime): never a 0."""
    return f"{getattr(o, field) / scale:.{digits}f}" if o.HasField(field) else "-"


def failure_name(value: int) -> str:
    """An outcome's failure class in words ("target daemon gone"); "" when it has none."""
    return pb.FailureClass.Name(value).removeprefix("FAILURE_CLASS_").lower().replace("_", " ") if value else ""


def ended_as(op: pb.Operation) -> str:
    """The phase, and for a move that failed why: "failed (source daemon gone)"."""
    why = failure_name(op.outcome.failure_class) if op.HasField("outcome") else ""
    return phase_name(op.phase) + (f" ({why})" if why else "")


def history_table(ops: Sequence[pb.Operation]) -> str:
    """Predicted against actual for each executed move, newest first; then the downtime quantiles."""
    rows = []
    for op in ops:
        c, o = op.predicted_cost, op.outcome
        ended = op.HasField("outcome")
        rows.append([op.operation_id, _when(op.create_time), op.vm_id, f"{op.source_host_id}->{op.target_host_id}",
                     how(op.parameters), ended_as(op),
                     _est(c.total_time_ms, 1000, 1), measured(o, "total_time_ms", 1000, 1) if ended else "",
                     _down(c), measured(o, "downtime_ms") if ended else "",
                     _inside(c.downtime_ms, o.downtime_ms) if ended and op.phase == pb.MIGRATION_PHASE_SUCCEEDED
                     and o.HasField("downtime_ms") else ""])
    out = table(["operation", "started (UTC)", "vm", "move", "technique", "phase", "predicted s", "actual s",
                 "predicted downtime ms", "actual ms", "in interval"], rows, right=(7, 9), colours={5: state_colour})
    done = sorted(op.outcome.downtime_ms for op in ops if op.phase == pb.MIGRATION_PHASE_SUCCEEDED
                  and op.outcome.HasField("downtime_ms"))  # a restart's downtime is not measured
    if done:
        def q(p: float) -> float:
            return done[min(len(done) - 1, int(p * len(done)))]
        out += (f"\nDowntime of {len(done)} succeeded: median {q(0.5):.0f} ms, p90 {q(0.9):.0f} ms, "
                f"p99 {q(0.99):.0f} ms, max {done[-1]:.0f} ms.")
    return out


def render_plan(rec: pb.Recommendation) -> str:
    rows = [[i, m.vm_id, m.source_host_id, m.target_host_id, how(m.parameters),
             f"{m.predicted_cost.total_time_ms.median / 1000:.1f}", _down(m.predicted_cost, interval=False)]
            for i, m in enumerate(rec.moves, 1)]
    standing = (f"{safe(rec.id)} ({safe(rec.goal)}), {state_name(rec.state)}" if rec.id else
                f"({safe(rec.goal)}), " + ("dry run: not stored, nothing to approve" if rec.moves else
                                           "no move: not stored"))
    out = [f"Plan {standing}", wrap(safe(rec.summary), "  "), "",
           table(["move", "vm", "from", "to", "technique", "time s", "downtime ms"], rows, right=(0, 5, 6))]
    if rec.moves and rec.id:
        out.append("\n" + wrap(f"Review with `advisor recs show {safe(rec.id)}`; after approval, run the moves in "
                               f"order with `advisor recs execute {safe(rec.id)} --all` (or one with `--move N`, "
                               "from 1)."))
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


def progress_line(p: pb.MigrationProgress, *, with_vm: bool = False) -> str:
    """One line of a watched migration (the VM first when several migrations share the output)."""
    vm = f"{safe(p.vm_id)} " if with_vm else ""
    measured = bool(p.memory_total_mib)  # 0: no job statistics were read (not started, a cold move): unknown
    round_, left, dirty, sent = ((f"{p.iteration:3d}", f"{p.memory_remaining_mib:8.1f}", f"{p.dirty_rate_mib_s:6.1f}",
                                  f"{p.transfer_rate_mib_s:6.1f}") if measured else
                                 (f"{'-':>3}", f"{'-':>8}", f"{'-':>6}", f"{'-':>6}"))
    return (f"{vm}{p.elapsed_ms / 1000:7.1f} s  {phase_name(p.phase):9s} round {round_}  {left} MiB left  "
            f"dirty {dirty} MiB/s  sent {sent} MiB/s  {outlook(p):22s} {safe(p.message)}")


def phase_name(value: int) -> str:
    return pb.MigrationPhase.Name(value).removeprefix("MIGRATION_PHASE_").lower()


def decision_line(rec: pb.Recommendation) -> str:
    """What approve and reject answer, in one line: the recommendation, its state now, who and why."""
    why = f": {safe(rec.decision_reason)}" if rec.decision_reason else ""
    return f"recommendation {safe(rec.id)} ({safe(rec.goal)}) {state_name(rec.state)} by {safe(rec.decided_by)}{why}"


def render_operation(op: pb.Operation) -> str:
    lines = [f"Operation {safe(op.operation_id)} of recommendation {safe(op.recommendation_id)}: "
             f"{ended_as(op)}", f"  {safe(op.message)}"]
    if op.HasField("outcome"):
        c, o = op.predicted_cost, op.outcome
        rows = [["total time ms", f"{c.total_time_ms.median:.0f}", measured(o, "total_time_ms")],
                ["downtime ms", _down(c, interval=False), measured(o, "downtime_ms")],
                ["data MiB", f"{c.transferred_mib.median:.0f}", measured(o, "transferred_mib")],
                ["iterations", "", str(o.iterations)], ["post-copy requests", "", str(o.postcopy_requests)]]
        lines.append(table(["", "predicted", "actual"], rows, right=(1, 2)))
    return "\n".join(lines)


def hosts_rows(hosts: Sequence[pb.HostStatus]) -> list[list[object]]:
    return [
        [h.host.id, h.host.cpu_cores, h.host.memory_mib, h.vm_count, h.allocated_vcpus, h.allocated_memory_mib,
         f"{h.cpu_utilization_ratio:.0%}" if h.HasField("cpu_utilization_ratio") else "-",
         h.host.local_disk_free_mib if h.host.HasField("local_disk_free_mib") else "-",
         "yes" if h.host.migration_tls else "no", "maintenance" if h.host.in_maintenance else "",
         ",".join(h.host.networks) or "-", h.host.cpu_model]
        for h in hosts
    ]


def hosts_table(hosts: Sequence[pb.HostStatus]) -> str:
    return table(["host", "cores", "MiB", "VMs", "vCPUs used", "MiB used", "CPU sampled", "disk MiB free", "TLS",
                  "state", "networks", "CPU model"], hosts_rows(hosts), right=(1, 2, 3, 4, 5, 6, 7), fit=(10, 11))


def disks_text(disks: Sequence[pb.Disk]) -> str:
    """A VM's disks in a cell: each by its device, shared, or local with its space in use of its size and the rate
    the guest writes to it, where measured ("vda local 4096/20480 MiB 2.0 MiB/s, vdb shared 1024 MiB")."""
    def one(d: pb.Disk) -> str:
        if d.shared:
            return f"{d.target} shared {d.size_mib} MiB"
        rate = f" {d.write_rate_mib_s:.1f} MiB/s" if d.HasField("write_rate_mib_s") else ""
        return f"{d.target} local {d.used_mib}/{d.size_mib} MiB{rate}"
    return ", ".join(one(d) for d in disks) or "-"


def vms_rows(vms: Sequence[pb.VmStatus]) -> list[list[object]]:
    return [
        [v.vm.id, v.vm.host_id, v.vm.vcpus, v.vm.memory_mib,
         f"{v.cpu_utilization_ratio:.0%}" if v.HasField("cpu_utilization_ratio") else "-",
         f"{v.dirty_rate_mib_s:.1f}" if v.HasField("dirty_rate_mib_s") else "-",
         sum(d.size_mib for d in v.vm.disks if not d.shared) or "-", disks_text(v.vm.disks),
         ",".join(v.vm.networks) or "-", ",".join(v.vm.anti_affinity_groups)]
        for v in vms
    ]


def vms_table(vms: Sequence[pb.VmStatus]) -> str:
    return table(["vm", "host", "vCPUs", "MiB", "CPU", "dirty MiB/s", "local MiB", "disks", "networks",
                  "anti-affinity"], vms_rows(vms), right=(2, 3, 4, 5, 6), fit=(7, 9, 8))
