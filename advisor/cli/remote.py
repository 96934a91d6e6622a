"""Commands that talk to a running advisor over gRPC (`--server`)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from google.protobuf import json_format

from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.cli.render import (
    hosts_table,
    phase_name,
    render_costs,
    render_operation,
    render_recommendation,
    state_name,
    technique_name,
)
from advisor.tables import table


def push_example(client: AdvisorClient, example: dict[str, Any], now_s: float) -> tuple[int, int, int]:
    """Push an example file's inventory, then its samples stamped `now_s`; return (hosts, VMs, samples)."""
    inventory = json_format.ParseDict(example["inventory"], pb.PushInventoryRequest())
    client.push_inventory(inventory)
    samples = json_format.ParseDict(example.get("samples", {}), pb.PushSamplesRequest())
    for sample in [*samples.host_samples, *samples.vm_samples]:
        if not sample.HasField("time"):
            sample.time.FromNanoseconds(int(now_s * 1e9))  # type: ignore[attr-defined]
    client.push_samples(samples)
    return len(inventory.hosts), len(inventory.vms), len(samples.host_samples) + len(samples.vm_samples)


def cmd_push(args: argparse.Namespace) -> int:
    example = json.loads(args.file.read_text())
    with AdvisorClient(args.server) as client:
        hosts, vms, samples = push_example(client, example, time.time())
    print(f"pushed {hosts} hosts, {vms} VMs, {samples} samples")
    return 0


def cmd_hosts(args: argparse.Namespace) -> int:
    with AdvisorClient(args.server) as client:
        print(hosts_table(client))
    return 0


def cmd_vms(args: argparse.Namespace) -> int:
    with AdvisorClient(args.server) as client:
        rows = [
            [v.vm.id, v.vm.host_id, v.vm.vcpus, v.vm.memory_mib,
             f"{v.cpu_utilization_ratio:.0%}" if v.HasField("cpu_utilization_ratio") else "-",
             f"{v.dirty_rate_mib_s:.1f}" if v.HasField("dirty_rate_mib_s") else "-",
             ",".join(v.vm.anti_affinity_groups)]
            for v in client.list_vms(args.host or "")
        ]
    print(table(["vm", "host", "vCPUs", "MiB", "CPU", "dirty MiB/s", "anti-affinity"], rows, right=(2, 3, 4, 5)))
    return 0


def cmd_predict_vm(args: argparse.Namespace) -> int:
    request = pb.PredictMigrationCostRequest(vm_id=args.vm, target_host_id=args.target or "")
    for name in ("dirty_rate_mib_s", "bandwidth_mib_s", "max_downtime_ms"):
        if getattr(args, name) is not None:
            setattr(request, name, getattr(args, name))
    with AdvisorClient(args.server) as client:
        result = client.predict(request)
    i = result.inputs
    print(f"{i.memory_mib:.0f} MiB, dirty rate {i.dirty_rate_mib_s:.1f} MiB/s ({i.dirty_rate_source}), "
          f"bandwidth {i.bandwidth_mib_s:.1f} MiB/s, max downtime {i.max_downtime_ms:.0f} ms")
    print(render_costs(result.costs))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    request = pb.RecommendTargetRequest(
        vm_id=args.vm,
        objective=pb.Objective(max_downtime_ms=args.max_downtime_ms, deadline_ms=args.deadline_ms,
                               minimize_transferred=args.minimize_bytes),
        excluded_host_ids=args.exclude,
    )
    with AdvisorClient(args.server) as client:
        rec = client.recommend(request)
    print(json_format.MessageToJson(rec) if args.json else render_recommendation(rec))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    request = pb.PlanClusterRequest(
        goal=f"CLUSTER_GOAL_{args.goal.upper()}", host_id=getattr(args, "host", "") or "", max_moves=args.max_moves,
        objective=pb.Objective(max_downtime_ms=args.max_downtime_ms, deadline_ms=args.deadline_ms),
    )
    with AdvisorClient(args.server) as client:
        rec: pb.Recommendation = client.call(client.recommendations.PlanCluster, request)  # type: ignore[assignment]
    if args.json:
        print(json_format.MessageToJson(rec))
        return 0
    print(f"Plan {rec.id} ({rec.goal}), {state_name(rec.state)}\n  {rec.summary}\n")
    rows = [[i, m.vm_id, m.source_host_id, m.target_host_id, technique_name(m.parameters.technique),
             f"{m.predicted_cost.total_time_ms.median / 1000:.1f}", f"{m.predicted_cost.downtime_ms.median:.0f}"]
            for i, m in enumerate(rec.moves)]
    print(table(["move", "vm", "from", "to", "technique", "time s", "downtime ms"], rows, right=(0, 5, 6)))
    if rec.moves:
        print(f"\nReview with `advisor recs show {rec.id}`; after approval, run each move with "
              f"`advisor migrate execute {rec.id} --move N --actor YOU`.")
    return 0


def cmd_recs(args: argparse.Namespace) -> int:
    with AdvisorClient(args.server) as client:
        if args.recs_command == "list":
            state = f"RECOMMENDATION_STATE_{(args.state or 'unspecified').upper()}"
            request = pb.ListRecommendationsRequest(page_size=args.limit, state=state)
            page = client.list_recommendations(request)
            rows = [
                [r.id, r.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"), state_name(r.state), r.goal,
                 r.summary[:90]]
                for r in page.recommendations
            ]
            print(table(["id", "created (UTC)", "state", "goal", "summary"], rows))
            return 0
        if args.recs_command == "show":
            rec = client.get_recommendation(args.id)
        else:
            rec = client.decide(args.id, args.recs_command == "approve", args.actor, args.reason or "")
        print(json_format.MessageToJson(rec) if getattr(args, "json", False) else render_recommendation(rec))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    with AdvisorClient(args.server) as client:
        if args.migrate_command == "execute":
            op = client.execute(args.recommendation, args.actor, args.move)
            print(f"operation {op.operation_id}: {phase_name(op.phase)}")
            if not args.watch:
                return 0
            operation_id = op.operation_id
        elif args.migrate_command == "abort":
            op = client.abort(args.operation, args.reason)
            print(render_operation(op))
            return 0
        else:
            operation_id = args.operation
        if args.migrate_command == "show":
            print(render_operation(client.operation(operation_id)))
            return 0
        for p in client.watch(operation_id):
            print(f"{p.elapsed_ms / 1000:7.1f} s  {phase_name(p.phase):9s} round {p.iteration:3d}  "
                  f"{p.memory_remaining_mib:8.1f} MiB left  dirty {p.dirty_rate_mib_s:6.1f} MiB/s  "
                  f"sent {p.transfer_rate_mib_s:6.1f} MiB/s  {p.message}", flush=True)
        final = client.operation(operation_id)
        print(render_operation(final))
        return 0 if final.phase == pb.MIGRATION_PHASE_SUCCEEDED else 1
