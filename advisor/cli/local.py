"""Commands that run here: the service itself, the demo, offline batch prediction."""

from __future__ import annotations

import argparse
import os
import sys
import time

from google.protobuf import json_format

from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.cli.remote import push_example, read_example
from advisor.cli.render import hosts_table, render_costs, render_recommendation
from advisor.config import Settings, load_settings
from advisor.domain.access import Role


def cmd_serve(args: argparse.Namespace) -> int:
    from advisor import logs
    from advisor.app import serve

    settings = _settings(args)
    logs.configure(settings.log_level, settings.log_format)
    serve(settings)
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: getattr(args, k, None) for k in ("listen", "data_dir", "database_url", "metrics_listen",
                                                      "models_dir", "log_level", "log_format", "migration_tls",
                                                      "clusters")}
    return load_settings(args.config, os.environ, overrides)


def cmd_demo(args: argparse.Namespace) -> int:
    from advisor import logs

    logs.configure("warning", "text")
    if args.example is None:
        from advisor.cli import demo

        return demo.run(args.lab_root, args.data_dir, keep_lab=args.keep_lab, database_url=args.database_url or "")
    return _example_demo(args)


def _example_demo(args: argparse.Namespace) -> int:
    from advisor.app import build_app

    example = read_example(args.example)
    settings = Settings(listen="127.0.0.1:0", data_dir=args.data_dir, database_url=args.database_url or "",
                        metrics_listen="", models_dir=args.models_dir or Settings().models_dir)
    app = build_app(settings)
    port = app.start()
    token = app.tokens.renew("demo", Role.ADMIN)
    try:
        with AdvisorClient(f"127.0.0.1:{port}", token=token) as client:
            where = "PostgreSQL" if settings.database_url else f"{settings.data_dir}/ (SQLite, WAL)"
            print(f"Advisor started on 127.0.0.1:{port} with data in {where}.")
            print(f"Example: {example.get('description', args.example)}\n")
            hosts, vms, samples = push_example(client, example, time.time())
            print(f"Pushed {hosts} hosts, {vms} VMs and {samples} samples over gRPC.\n")
            print(hosts_table(list(client.list_hosts())) + "\n")
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
            print(f"  export ADVISOR_TOKEN=$(advisor tokens create --data-dir {settings.data_dir} --name you "
                  "--role operator)")
            print("  advisor recs list; advisor recs show ID; advisor recs approve ID")
            print('  grpcurl -plaintext -H "authorization: Bearer $ADVISOR_TOKEN" 127.0.0.1:50051 list')
            print("  advisor demo                                    # the whole story on a local libvirt lab")
    finally:
        app.stop()
    return 0


def cmd_predict_cost(args: argparse.Namespace) -> int:
    from advisor.ml.batch import predict_csv
    from advisor.model_serving import load_predictor

    predictor = load_predictor(args.models_dir or Settings().models_dir)
    model = predictor.model
    print(f"model: {model.name} {model.version}" + (f" (fallback: {model.fallback_reason})"
                                                     if model.fallback_reason else ""), file=sys.stderr)
    rows = predict_csv(args.input, args.output, predictor)
    print(f"wrote {rows} rows to {args.output}", file=sys.stderr)
    return 0
