"""The `advisor` command: run the service, try it on an example cluster, and talk to a running advisor.

Exit codes: 0 success, 1 the advisor refused or failed (the message says why), 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from advisor.api.client import AdvisorClient, ClientError
from advisor.api.v1 import advisor_pb2 as pb
from advisor.config import ConfigError, Settings, load_settings
from advisor.domain.errors import AdvisorError
from advisor.lab.cli import add_lab_commands
from advisor.tables import table

EXAMPLE = Path(__file__).parent / "examples" / "cluster.json"
DEFAULT_SERVER = os.environ.get("ADVISOR_SERVER", "127.0.0.1:50051")


def _technique(value: int) -> str:
    return pb.Technique.Name(value).removeprefix("TECHNIQUE_").lower()


def _state(value: int) -> str:
    return pb.RecommendationState.Name(value).removeprefix("RECOMMENDATION_STATE_").lower()


def _est(e: pb.Estimate, scale: float = 1.0, digits: int = 0) -> str:
    return f"{e.median / scale:.{digits}f} [{e.low / scale:.{digits}f}-{e.high / scale:.{digits}f}]"


def render_costs(costs: Sequence[pb.MigrationCost], chosen: int | None = None) -> str:
    rows = [
        [
            ("> " if c.technique == chosen else "  ") + _technique(c.technique),
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
    out = [f"Recommendation {rec.id} ({rec.goal}), {_state(rec.state)}", f"  {rec.summary}"]
    if rec.decided_by:
        out.append(f"  decided by {rec.decided_by}: {rec.decision_reason or '(no reason given)'}")
    for move in rec.moves:
        p = move.parameters
        out += ["", "Why:"] + [f"  - {r}" for r in move.reasons]
        switch = f", switch to post-copy after {p.postcopy_after_ms / 1000:.1f} s" if p.HasField(
            "postcopy_after_ms") else ""
        out += [
            "",
            f"Parameters: {_technique(p.technique)}, bandwidth {p.bandwidth_mib_s:.0f} MiB/s, "
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


# -- commands ----------------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from advisor import logs
    from advisor.app import serve

    settings = _settings(args)
    logs.configure(settings.log_level, settings.log_format)
    serve(settings)
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: getattr(args, k, None) for k in ("listen", "data_dir", "metrics_listen", "models_dir",
                                                      "log_level", "log_format")}
    return load_settings(args.config, os.environ, overrides)


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


def _hosts_table(client: AdvisorClient) -> str:
    rows = [
        [h.host.id, h.host.cpu_cores, h.host.memory_mib, h.vm_count, h.allocated_vcpus, h.allocated_memory_mib,
         f"{h.cpu_utilization_ratio:.0%}" if h.HasField("cpu_utilization_ratio") else "-",
         "maintenance" if h.host.in_maintenance else "", h.host.cpu_model]
        for h in client.list_hosts()
    ]
    return table(["host", "cores", "MiB", "VMs", "vCPUs used", "MiB used", "CPU", "state", "CPU model"], rows,
                 right=(1, 2, 3, 4, 5, 6))


def cmd_demo(args: argparse.Namespace) -> int:
    from advisor import logs

    logs.configure("warning", "text")
    if args.example is None:
        from advisor import demo

        return demo.run(args.lab_root, args.data_dir, keep_lab=args.keep_lab)
    return _example_demo(args)


def _example_demo(args: argparse.Namespace) -> int:
    from advisor.app import build_app

    example = json.loads(args.example.read_text())
    settings = Settings(listen="127.0.0.1:0", data_dir=args.data_dir, metrics_listen="",
                        models_dir=args.models_dir or Settings().models_dir)
    app = build_app(settings)
    port = app.start()
    try:
        with AdvisorClient(f"127.0.0.1:{port}") as client:
            print(f"Advisor started on 127.0.0.1:{port} with data in {settings.data_dir}/ (SQLite, WAL).")
            print(f"Example: {example.get('description', args.example)}\n")
            hosts, vms, samples = push_example(client, example, time.time())
            print(f"Pushed {hosts} hosts, {vms} VMs and {samples} samples over gRPC.\n")
            print(_hosts_table(client) + "\n")
            ask = json_format.ParseDict(example["recommend"], pb.RecommendTargetRequest())
            print(f"Asking where and how to move {ask.vm_id} "
                  f"(objective: downtime <= {ask.objective.max_downtime_ms:.0f} ms)...\n")
            rec = client.recommend(ask)
            print(render_recommendation(rec) + "\n")
            prediction = client.predict(pb.PredictMigrationCostRequest(
                vm_id=ask.vm_id, target_host_id=rec.moves[0].target_host_id,
                max_downtime_ms=ask.objective.max_downtime_ms or 300))
            print("Predicted cost of each technique to", rec.moves[0].target_host_id, "(median [interval]):")
            print(render_costs(prediction.costs, rec.moves[0].parameters.technique) + "\n")
            print("Explore further:")
            print(f"  advisor serve --data-dir {settings.data_dir}        # the same service, kept running")
            print("  advisor recs list; advisor recs show ID; advisor recs approve ID --actor you")
            print("  grpcurl -plaintext 127.0.0.1:50051 list        # reflection is on")
            print("  advisor demo                                    # the whole story on a local libvirt lab")
    finally:
        app.stop()
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    example = json.loads(args.file.read_text())
    with AdvisorClient(args.server) as client:
        hosts, vms, samples = push_example(client, example, time.time())
    print(f"pushed {hosts} hosts, {vms} VMs, {samples} samples")
    return 0


def cmd_hosts(args: argparse.Namespace) -> int:
    with AdvisorClient(args.server) as client:
        print(_hosts_table(client))
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


def cmd_predict_cost(args: argparse.Namespace) -> int:
    from advisor.app import load_predictor
    from advisor.ml.batch import predict_csv

    predictor = load_predictor(args.models_dir or Settings().models_dir)
    model = predictor.model
    print(f"model: {model.name} {model.version}" + (f" (fallback: {model.fallback_reason})"
                                                     if model.fallback_reason else ""), file=sys.stderr)
    rows = predict_csv(args.input, args.output, predictor)
    print(f"wrote {rows} rows to {args.output}", file=sys.stderr)
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
    print(f"Plan {rec.id} ({rec.goal}), {_state(rec.state)}\n  {rec.summary}\n")
    rows = [[i, m.vm_id, m.source_host_id, m.target_host_id, _technique(m.parameters.technique),
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
                [r.id, r.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"), _state(r.state), r.goal,
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


def parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one statement per flag
    top = argparse.ArgumentParser(prog="advisor", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def client_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--server", default=DEFAULT_SERVER,
                       help="advisor address (default: $ADVISOR_SERVER or 127.0.0.1:50051)")

    p = sub.add_parser("serve", help="run the advisor's gRPC service until SIGTERM")
    p.add_argument("--config", type=Path, help="TOML settings file (ADVISOR_* variables and flags override it)")
    p.add_argument("--listen", help="gRPC address, HOST:PORT (default 127.0.0.1:50051)")
    p.add_argument("--data-dir", type=Path, help="directory for the SQLite database (default .advisor)")
    p.add_argument("--metrics-listen", help="Prometheus metrics address, HOST:PORT; empty disables")
    p.add_argument("--models-dir", type=Path, help="trained models (default: the repository's models/)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", choices=["json", "text"])
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="the whole story on a local lab: ingest, recommend, migrate, compare",
                       description="Brings up a local libvirt lab, starts the advisor, ingests what the hypervisors "
                       "report, recommends a target and technique for a busy guest, executes it and prints "
                       "predicted vs actual. With --example, only the recommendation story on an example cluster "
                       "file, without a lab.")
    p.add_argument("--data-dir", type=Path, default=Path(".advisor/demo"), help="default .advisor/demo")
    p.add_argument("--example", type=Path, nargs="?", const=EXAMPLE, default=None,
                   help=f"use an example cluster file instead of the lab (default file: {EXAMPLE.name})")
    p.add_argument("--lab-root", type=Path, help="where the lab keeps its state (default .lab/)")
    p.add_argument("--keep-lab", action="store_true", help="leave the lab running at the end")
    p.add_argument("--models-dir", type=Path)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("push", help="push the inventory and samples of an example-format JSON file")
    p.add_argument("file", type=Path)
    client_args(p)
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("hosts", help="list hosts with their allocation and load")
    client_args(p)
    p.set_defaults(func=cmd_hosts)

    p = sub.add_parser("vms", help="list VMs with their latest samples")
    p.add_argument("--host", help="only the VMs on this host")
    client_args(p)
    p.set_defaults(func=cmd_vms)

    predict = sub.add_parser("predict", help="predict migration costs").add_subparsers(
        dest="predict_command", required=True, metavar="WHAT")
    p = predict.add_parser("vm", help="cost of moving one VM, per technique, from a running advisor")
    p.add_argument("vm")
    p.add_argument("--target", help="target host (bounds the bandwidth)")
    p.add_argument("--dirty-rate-mib-s", dest="dirty_rate_mib_s", type=float, help="what-if dirty rate")
    p.add_argument("--bandwidth-mib-s", dest="bandwidth_mib_s", type=float, help="what-if bandwidth")
    p.add_argument("--max-downtime-ms", dest="max_downtime_ms", type=float)
    client_args(p)
    p.set_defaults(func=cmd_predict_vm)
    p = predict.add_parser("cost", help="batch prediction of a CSV file, offline (no server needed)")
    p.add_argument("--input", type=Path, required=True, help="CSV with technique, vm_memory_mib, "
                   "dirty_rate_pages_per_s, available_bandwidth_mbps, max_bandwidth_mib_s")
    p.add_argument("--output", type=Path, required=True, help="CSV written with the predictions added")
    p.add_argument("--models-dir", type=Path)
    p.set_defaults(func=cmd_predict_cost)

    p = sub.add_parser("recommend", help="recommend a target host and technique for one VM")
    p.add_argument("vm")
    p.add_argument("--max-downtime-ms", type=float, default=0.0, help="longest acceptable pause (default 300)")
    p.add_argument("--deadline-ms", type=float, default=0.0, help="the migration must finish within this")
    p.add_argument("--minimize-bytes", action="store_true", help="prefer fewest bytes over shortest time")
    p.add_argument("--exclude", action="append", default=[], metavar="HOST", help="host not to consider")
    p.add_argument("--json", action="store_true", help="print the recommendation as JSON")
    client_args(p)
    p.set_defaults(func=cmd_recommend)

    plan = sub.add_parser("plan", help="plan moves for the whole cluster: drain a host, rebalance, consolidate")
    goals = plan.add_subparsers(dest="goal", required=True, metavar="GOAL")
    for goal, text in (("drain", "move every VM off a host"), ("rebalance", "even out load across hosts"),
                       ("consolidate", "empty the lightest hosts so they can power down")):
        p = goals.add_parser(goal, help=text)
        if goal == "drain":
            p.add_argument("host")
        p.add_argument("--max-moves", type=int, default=0, help="at most this many moves (default: no bound)")
        p.add_argument("--max-downtime-ms", type=float, default=0.0, help="downtime limit of every move")
        p.add_argument("--deadline-ms", type=float, default=0.0, help="deadline of every move")
        p.add_argument("--json", action="store_true")
        client_args(p)
        p.set_defaults(func=cmd_plan)

    recs = sub.add_parser("recs", help="review recommendations").add_subparsers(
        dest="recs_command", required=True, metavar="ACTION")
    p = recs.add_parser("list", help="newest first")
    p.add_argument("--state", choices=["pending", "approved", "rejected", "executing", "succeeded", "failed"])
    p.add_argument("--limit", type=int, default=50)
    client_args(p)
    p = recs.add_parser("show", help="one recommendation with its reasons")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    client_args(p)
    for action in ("approve", "reject"):
        p = recs.add_parser(action, help=f"{action} a pending recommendation")
        p.add_argument("id")
        p.add_argument("--actor", required=True, help="who decides")
        p.add_argument("--reason", required=action == "reject", help="why (required to reject)")
        client_args(p)
    recs_parent = sub.choices["recs"]
    recs_parent.set_defaults(func=cmd_recs)

    add_lab_commands(sub)

    migrate = sub.add_parser("migrate", help="execute, watch, show or abort migrations")
    migrate.set_defaults(func=cmd_migrate)
    actions = migrate.add_subparsers(dest="migrate_command", required=True, metavar="ACTION")
    p = actions.add_parser("execute", help="execute a move of an approved recommendation (idempotent)")
    p.add_argument("recommendation")
    p.add_argument("--move", type=int, default=0, help="which move of a plan (default 0)")
    p.add_argument("--actor", required=True, help="who asks")
    p.add_argument("--watch", action="store_true", help="follow its progress to the end (exit 1 unless it succeeds)")
    client_args(p)
    p = actions.add_parser("watch", help="follow an operation's progress to the end")
    p.add_argument("operation")
    client_args(p)
    p = actions.add_parser("show", help="an operation: phase, last event, predicted vs actual")
    p.add_argument("operation")
    client_args(p)
    p = actions.add_parser("abort", help="abort a running migration (never one in post-copy)")
    p.add_argument("operation")
    p.add_argument("--reason", default="", help="why, for the record")
    client_args(p)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ClientError as error:
        hint = " (is `advisor serve` running there?)" if error.code == "UNAVAILABLE" else ""
        print(f"advisor: {error.code}: {error.details}{hint}", file=sys.stderr)
        return 1
    except ConfigError as error:
        print(f"advisor: configuration: {error}", file=sys.stderr)
        return 2
    except AdvisorError as error:
        print(f"advisor: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
