"""The `advisor` command: run the service, try it on an example cluster, and talk to a running advisor.

Exit codes: 0 success, 1 the advisor refused or failed (the message says why), 2 bad usage or configuration.
"""


from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from advisor.api.client import ClientError
from advisor.app import SETUP_ERRORS
from advisor.cli.common import client_args
from advisor.cli.local import cmd_demo, cmd_predict_cost, cmd_serve
from advisor.cli.outcomes import add_outcomes_commands
from advisor.cli.profiles import add_profiles_commands
from advisor.cli.remote import (
    cmd_hosts,
    cmd_migrate,
    cmd_plan,
    cmd_predict_vm,
    cmd_push,
    cmd_recommend,
    cmd_vms,
)
from advisor.cli.review import add_review_commands
from advisor.cli.tokens import add_tokens_commands
from advisor.cli.ui import add_ui_commands
from advisor.domain.errors import AdvisorError
from advisor.evaluation import register as register_advisor_policy
from advisor.lab.cli import add_lab_commands
from advisor.simulation.cli import add_simulate_command
from advisor.tables import safe

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cluster.json"


def parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one statement per flag
    top = argparse.ArgumentParser(prog="advisor", description=__doc__.splitlines()[0],
                                  epilog="Exit codes: 0 success, 1 the advisor refused or failed, 2 bad usage or "
                                         "configuration. Client commands read $ADVISOR_SERVER and $ADVISOR_TOKEN.")
    top.add_argument("--version", action="version", version=f"advisor {package_version()}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")


    p = sub.add_parser("serve", help="run the advisor's gRPC service until SIGTERM")
    p.add_argument("--config", type=Path, help="TOML settings file (ADVISOR_* variables and flags override it)")
    p.add_argument("--listen", help="gRPC address, HOST:PORT (default 127.0.0.1:50051)")
    p.add_argument("--data-dir", type=Path, help="directory for the SQLite database (default .advisor)")
    p.add_argument("--metrics-listen", help="Prometheus metrics address, HOST:PORT; empty disables")
    p.add_argument("--models-dir", type=Path, help="trained models (default: the repository's models/)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", choices=["json", "text"])
    p.add_argument("--migration-tls", choices=["off", "preferred", "required"],
                   help="encrypt migration data: where both hosts offer TLS (preferred, the default), always "
                        "(required: hosts without TLS are ruled out) or never (off)")
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
    p.add_argument("--max-downtime-ms", type=float, help="longest acceptable pause (default 300)")
    p.add_argument("--deadline-ms", type=float, default=0.0, help="the migration must finish within this")
    p.add_argument("--minimize-bytes", action="store_true", help="prefer fewest bytes over shortest time")
    p.add_argument("--exclude", action="append", default=[], metavar="HOST", help="host not to consider")
    p.add_argument("--dry-run", action="store_true", help="nothing is stored, nothing is superseded, no id")
    client_args(p)
    p.set_defaults(func=cmd_recommend)

    plan = sub.add_parser("plan", help="plan moves for the whole cluster: drain a host, rebalance, consolidate, "
                                        "evacuate a host that is down")
    goals = plan.add_subparsers(dest="goal", required=True, metavar="GOAL")
    for goal, text in (("drain", "move every VM off a host"), ("rebalance", "even out load across hosts"),
                       ("consolidate", "empty the lightest hosts so they can power down"),
                       ("evacuate", "restart elsewhere, by priority, the VMs of a host that is down")):
        p = goals.add_parser(goal, help=text)
        if goal in ("drain", "evacuate"):
            p.add_argument("host")
        if goal == "evacuate":
            p.add_argument("--force", action="store_true",
                           help="plan even if the advisor sees the host up or cannot tell (you know it is dead)")
        p.add_argument("--max-moves", type=int, default=0, help="at most this many moves (default: no bound)")
        p.add_argument("--max-downtime-ms", type=float, help="downtime limit of every move (default 300)")
        p.add_argument("--deadline-ms", type=float, default=0.0, help="deadline of every move")
        p.add_argument("--dry-run", action="store_true", help="a preview: nothing is stored, nothing to approve")
        p.add_argument("--store-empty", action="store_true", help="store the plan even when it has no move")
        client_args(p)
        p.set_defaults(func=cmd_plan)

    add_review_commands(sub)
    add_lab_commands(sub)
    add_tokens_commands(sub)
    add_ui_commands(sub)
    add_outcomes_commands(sub)
    add_profiles_commands(sub)
    register_advisor_policy()  # the project's own planner as the simulator's `advisor` policy
    add_simulate_command(sub)

    migrate = sub.add_parser("migrate", help="execute, watch, show or abort migrations")
    migrate.set_defaults(func=cmd_migrate)
    actions = migrate.add_subparsers(dest="migrate_command", required=True, metavar="ACTION")
    p = actions.add_parser("execute", help="execute a move of an approved recommendation (idempotent)")
    p.add_argument("recommendation")
    p.add_argument("--move", type=int, default=0, help="which move of a plan (default 0)")
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


def package_version() -> str:
    try:
        return metadata.version("advisor")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. A mistake of the user or the environment is one line on stderr and an exit code:
    2 for usage or configuration, 1 when the advisor refused or something failed; never a traceback."""
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ClientError as error:
        hint = " (is `advisor serve` running there?)" if error.code == "UNAVAILABLE" else ""
        hint = " (give a token: --token or $ADVISOR_TOKEN)" if error.code == "UNAUTHENTICATED" else hint
        return _say(f"{error.code}: {error.details}{hint}", 1)
    except SETUP_ERRORS as error:
        return _say(str(error), 2)
    except AdvisorError as error:
        return _say(str(error), 1)
    except OSError as error:  # a port in use, a file that cannot be read, a full disk ...
        if isinstance(error, BrokenPipeError):
            return _quiet_pipe()
        return _say(f"{error.strerror or error}" + (f": {error.filename}" if error.filename else ""), 2)
    except KeyboardInterrupt:
        return 130


def _say(message: str, code: int) -> int:
    with contextlib.suppress(BrokenPipeError):
        print(f"advisor: {safe(message)}", file=sys.stderr)
    return code


def _quiet_pipe() -> int:
    """The reader of our output went away (`advisor recs list | head`): stop without a word, as Unix tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0
