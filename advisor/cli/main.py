"""The `advisor` command: run the service, try it on an example cluster, and talk to a running advisor.

Exit codes: 0 success, 1 the advisor refused or failed (the message says why), 2 bad usage or configuration.
"""


from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from advisor.api.client import ClientError
from advisor.cli.local import cmd_demo, cmd_predict_cost, cmd_serve
from advisor.cli.remote import (
    cmd_hosts,
    cmd_migrate,
    cmd_plan,
    cmd_predict_vm,
    cmd_push,
    cmd_recommend,
    cmd_recs,
    cmd_vms,
)
from advisor.config import ConfigError
from advisor.domain.errors import AdvisorError
from advisor.lab.cli import add_lab_commands

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cluster.json"
DEFAULT_SERVER = os.environ.get("ADVISOR_SERVER", "127.0.0.1:50051")


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

