"""Commands that talk to a running advisor over gRPC (`--server`, `--token`): each prints a readable table or
text, or with `--json` the answer as the API gives it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from advisor.api.client import AdvisorClient, ClientError
from advisor.api.v1 import advisor_pb2 as pb
from advisor.cli.common import as_json, as_json_line, connect, emit, execute_move
from advisor.cli.render import (
    hosts_table,
    phase_name,
    progress_line,
    render_costs,
    render_operation,
    render_plan,
    render_recommendation,
    vms_table,
)
from advisor.domain.errors import ConfigError
from advisor.tables import count, safe


def push_example(client: AdvisorClient, example: dict[str, Any], now_s: float) -> tuple[int, int, int]:
    """Push an example file's inventory, then its samples stamped `now_s`; return (hosts, VMs, samples)."""
    inventory, samples = push_file(client, example, now_s)
    return (inventory.hosts_upserted, inventory.vms_upserted,
            samples.host_samples_accepted + samples.vm_samples_accepted)


def push_file(client: AdvisorClient, example: dict[str, Any], now_s: float
              ) -> tuple[pb.PushInventoryResponse, pb.PushSamplesResponse]:
    """Push an example file's inventory, then its samples stamped `now_s`; the advisor's two answers."""
    inventory, samples = push_requests(example, now_s)
    return client.push_inventory(inventory), client.push_samples(samples)


def push_requests(example: dict[str, Any], now_s: float) -> tuple[pb.PushInventoryRequest, pb.PushSamplesRequest]:
    """An example file's inventory and samples (stamped `now_s` where they have no time) as the API's requests, both
    read before either is pushed: a file whose samples cannot be read pushes nothing."""
    inventory = json_format.ParseDict(example["inventory"], pb.PushInventoryRequest())
    samples = json_format.ParseDict(example.get("samples", {}), pb.PushSamplesRequest())
    for sample in [*samples.host_samples, *samples.vm_samples]:
        if not sample.HasField("time"):
            sample.time.FromNanoseconds(int(now_s * 1e9))  # type: ignore[attr-defined]
    return inventory, samples


def read_example(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from None
    except ValueError as error:
        raise ConfigError(f"{path}: not JSON ({error})") from None
    if not isinstance(found, dict) or "inventory" not in found:
        raise ConfigError(f"{path}: expected an object with 'inventory' (and optionally 'samples')")
    return found


def cmd_push(args: argparse.Namespace) -> int:
    example = read_example(args.file)
    try:
        inventory_request, samples_request = push_requests(example, time.time())
    except json_format.ParseError as error:
        raise ConfigError(f"{args.file}: {error}") from None
    with connect(args) as client:
        inventory = client.push_inventory(inventory_request)
        try:
            samples = client.push_samples(samples_request)
        except ClientError:
            # the inventory is stored all the same: say so before why the samples were not
            print(f"advisor: inventory pushed ({count(inventory.hosts_upserted, 'host')}, "
                  f"{count(inventory.vms_upserted, 'VM')}); samples refused:", file=sys.stderr)
            raise
    if args.json:  # the answers of PushInventory and PushSamples
        emit(as_json({"inventory": inventory, "samples": samples}))
    else:
        emit(f"pushed {count(inventory.hosts_upserted, 'host')}, {count(inventory.vms_upserted, 'VM')}, "
             f"{count(samples.host_samples_accepted + samples.vm_samples_accepted, 'sample')}")
    return 0


def cmd_hosts(args: argparse.Namespace) -> int:
    with connect(args) as client:
        hosts = list(client.list_hosts())
    if args.json:  # every page in one ListHostsResponse
        emit(as_json(pb.ListHostsResponse(hosts=hosts)))
    else:
        emit(hosts_table(hosts) if hosts else "no hosts known: push an inventory")
    return 0


def cmd_vms(args: argparse.Namespace) -> int:
    with connect(args) as client:
        vms = list(client.list_vms(args.host or ""))
    if args.json:  # every page in one ListVmsResponse
        emit(as_json(pb.ListVmsResponse(vms=vms)))
    else:
        emit(vms_table(vms) if vms else "no VMs" + (f" on host {safe(args.host)}" if args.host else " known"))
    return 0


def cmd_predict_vm(args: argparse.Namespace) -> int:
    request = pb.PredictMigrationCostRequest(vm_id=args.vm, target_host_id=args.target or "")
    for name in ("dirty_rate_mib_s", "bandwidth_mib_s", "max_downtime_ms"):
        if getattr(args, name) is not None:
            setattr(request, name, getattr(args, name))
    with connect(args) as client:
        result = client.predict(request)
    if args.json:
        emit(as_json(result))
        return 0
    i = result.inputs
    resident = f" ({i.resident_memory_mib:.0f} MiB resident in QEMU)" if i.HasField("resident_memory_mib") else ""
    emit(f"{i.memory_mib:.0f} MiB{resident}, dirty rate {i.dirty_rate_mib_s:.1f} MiB/s ({safe(i.dirty_rate_source)}), "
         f"bandwidth {i.bandwidth_mib_s:.1f} MiB/s ({safe(i.bandwidth_source)}), "
         f"max downtime {i.max_downtime_ms:.0f} ms" + (
             f", local disks {i.local_disk_used_mib:.0f} MiB in use of {i.local_disk_size_mib:.0f} MiB" +
             (f" written at {i.disk_write_rate_mib_s:.1f} MiB/s" if i.HasField("disk_write_rate_mib_s") else
              " (write rate not measured)") if i.local_disk_used_mib else "")
         + (f", hosts at {i.load_per_cpu_ratio:.1f} runnable threads per CPU" if i.HasField("load_per_cpu_ratio")
            else ""))
    emit(render_costs(result.costs))
    return 0


def _objective(args: argparse.Namespace, **more: object) -> pb.Objective:
    """The objective asked for; the downtime limit only when given (unset: the advisor's default, 300 ms)."""
    objective = pb.Objective(deadline_ms=args.deadline_ms, **more)  # type: ignore[arg-type]
    if args.max_downtime_ms is not None:
        objective.max_downtime_ms = args.max_downtime_ms
    return objective


def cmd_recommend(args: argparse.Namespace) -> int:
    request = pb.RecommendTargetRequest(
        vm_id=args.vm, objective=_objective(args, minimize_transferred=args.minimize_bytes),
        excluded_host_ids=args.exclude, dry_run=args.dry_run,
    )
    with connect(args) as client:
        rec = client.recommend(request)
    emit(as_json(rec) if args.json else render_recommendation(rec))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    request = pb.PlanClusterRequest(
        goal=f"CLUSTER_GOAL_{args.goal.upper()}", host_id=getattr(args, "host", "") or "", max_moves=args.max_moves,
        objective=_objective(args), dry_run=args.dry_run, store_empty=args.store_empty,
        force=getattr(args, "force", False),
    )
    with connect(args) as client:
        rec: pb.Recommendation = client.call(client.recommendations.PlanCluster, request)  # type: ignore[assignment]
    emit(as_json(rec) if args.json else render_plan(rec))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    with connect(args) as client:
        if args.migrate_command == "execute":
            op = execute_move(client, args.recommendation, args.move)
            if not args.watch:
                emit(as_json(op) if args.json else f"operation {op.operation_id}: {phase_name(op.phase)}")
                return 0
            emit(f"operation {op.operation_id}: {phase_name(op.phase)}")
            operation_id = op.operation_id
        elif args.migrate_command == "abort":
            op = client.abort(args.operation, args.reason)
            emit(as_json(op) if args.json else render_operation(op))
            return 0
        else:
            operation_id = args.operation
        if args.migrate_command == "show":
            op = client.operation(operation_id)
            emit(as_json(op) if args.json else render_operation(op))
            return 0
        for p in client.watch(operation_id):
            if args.json:
                emit(as_json_line(p))  # one JSON object per line
            else:
                emit(progress_line(p))
        final = client.operation(operation_id)
        emit(as_json(final) if args.json else render_operation(final))
        return 0 if final.phase == pb.MIGRATION_PHASE_SUCCEEDED else 1
