"""The `advisor` command: run the service, try it on an example cluster, and talk to a running advisor.

Exit codes: 0 success, 1 the advisor refused or failed (the message says why), 2 bad usage, input or configuration.

Start-up: only the command named gets its arguments, and its code (gRPC, numpy, the models, the app) is imported
only when it runs, so `advisor --help` and `advisor --version` load argparse and little else.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from advisor.cli.common import amount, client_args, move_index, whole
from advisor.domain.errors import AdvisorError, InvalidArgument, SetupError
from advisor.tables import safe

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cluster.json"
Command = Callable[[argparse.Namespace], int]


def later(target: str) -> Command:
    """The command `module:function`, imported when it runs."""
    module, name = target.split(":")

    def run(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(module), name)(args))

    return run


class Parser(argparse.ArgumentParser):
    """An argument it does not know is reported with the usage of the command it was given to
    (`advisor recs list --bogus` shows `advisor recs list`'s usage), where argparse would show the top level's."""

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed, extra


class Version(argparse.Action):
    """`--version`, looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version and whether the advisor is installed")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        print(f"advisor {package_version()}")  # on stdout, as argparse's own version action
        parser.exit()


def _serve(sub: Any) -> None:
    p = sub.add_parser("serve", help=HELP["serve"])
    p.add_argument("--config", type=Path, help="TOML settings file (ADVISOR_* variables and flags override it)")
    p.add_argument("--listen", help="gRPC address, HOST:PORT (default 127.0.0.1:50051)")
    p.add_argument("--data-dir", type=Path, help="directory for the SQLite database, or with --database-url for this "
                                                 "server's own files (default .advisor)")
    p.add_argument("--database-url", metavar="URL", help="PostgreSQL instead of SQLite: "
                                                         "postgresql://USER@HOST:PORT/DATABASE")
    p.add_argument("--metrics-listen", help="Prometheus metrics address, HOST:PORT; empty disables")
    p.add_argument("--clusters", metavar="C1,C2", help="serve only these clusters (a replica group of its own, "
                   "on a database of its own); default all")
    p.add_argument("--models-dir", type=Path, help="trained models (default: the repository's models/)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", choices=["json", "text"])
    p.add_argument("--migration-tls", choices=["off", "preferred", "required"],
                   help="encrypt migration data: where both hosts offer TLS (preferred, the default), always "
                        "(required: hosts without TLS are ruled out) or never (off)")
    p.set_defaults(func=later("advisor.cli.local:cmd_serve"))


def _demo(sub: Any) -> None:
    p = sub.add_parser("demo", help=HELP["demo"],
                       description="Brings up a local libvirt lab, starts the advisor, ingests what the hypervisors "
                       "report, recommends a target and technique for a busy guest, executes it and prints "
                       "predicted vs actual. With --example, only the recommendation story on an example cluster "
                       "file, without a lab.")
    p.add_argument("--data-dir", type=Path, default=Path(".advisor/demo"), help="default .advisor/demo")
    p.add_argument("--database-url", metavar="URL", help="PostgreSQL instead of SQLite in the data directory")
    p.add_argument("--example", type=Path, nargs="?", const=EXAMPLE, default=None,
                   help=f"use an example cluster file instead of the lab (default file: {EXAMPLE.name})")
    p.add_argument("--lab-root", type=Path, help="where the lab keeps its state (default .lab/)")
    p.add_argument("--keep-lab", action="store_true", help="leave the lab running at the end")
    p.add_argument("--models-dir", type=Path)
    p.set_defaults(func=later("advisor.cli.local:cmd_demo"))


def _push(sub: Any) -> None:
    p = sub.add_parser("push", help=HELP["push"])
    p.add_argument("file", type=Path)
    client_args(p)
    p.set_defaults(func=later("advisor.cli.remote:cmd_push"))


def _hosts(sub: Any) -> None:
    p = sub.add_parser("hosts", help=HELP["hosts"])
    client_args(p)
    p.set_defaults(func=later("advisor.cli.remote:cmd_hosts"))


def _vms(sub: Any) -> None:
    p = sub.add_parser("vms", help=HELP["vms"])
    p.add_argument("--host", help="only the VMs on this host")
    client_args(p)
    p.set_defaults(func=later("advisor.cli.remote:cmd_vms"))


def _predict(sub: Any) -> None:
    predict = sub.add_parser("predict", help=HELP["predict"]).add_subparsers(
        dest="predict_command", required=True, metavar="WHAT")
    p = predict.add_parser("vm", help="cost of moving one VM, per technique, from a running advisor")
    p.add_argument("vm")
    p.add_argument("--target", help="target host (bounds the bandwidth)")
    p.add_argument("--dirty-rate-mib-s", dest="dirty_rate_mib_s", type=amount, help="what-if dirty rate")
    p.add_argument("--bandwidth-mib-s", dest="bandwidth_mib_s", type=amount, help="what-if bandwidth")
    p.add_argument("--max-downtime-ms", dest="max_downtime_ms", type=amount)
    client_args(p)
    p.set_defaults(func=later("advisor.cli.remote:cmd_predict_vm"))
    p = predict.add_parser("cost", help="batch prediction of a CSV file, offline (no server needed)")
    p.add_argument("--input", type=Path, required=True, help="CSV with technique (a live one, or cold), "
                   "vm_memory_mib, dirty_rate_pages_per_s, available_bandwidth_mbps, max_bandwidth_mib_s; optional: "
                   "disk_mib, disk_size_mib, disk_shared (false: the disks are copied with the VM), "
                   "disk_write_rate_mib_s, shutdown_timeout_ms (cold), and more (docs/cli.md)")
    p.add_argument("--output", type=Path, required=True, help="CSV written with the predictions added")
    p.add_argument("--models-dir", type=Path)
    p.set_defaults(func=later("advisor.cli.local:cmd_predict_cost"))


def _recommend(sub: Any) -> None:
    p = sub.add_parser("recommend", help=HELP["recommend"])
    p.add_argument("vm")
    p.add_argument("--max-downtime-ms", type=amount, help="longest acceptable pause (default 300)")
    p.add_argument("--deadline-ms", type=amount, default=0.0, help="the migration must finish within this")
    p.add_argument("--minimize-bytes", action="store_true", help="prefer fewest bytes over shortest time")
    p.add_argument("--exclude", action="append", default=[], metavar="HOST", help="host not to consider")
    p.add_argument("--dry-run", action="store_true", help="nothing is stored, nothing is superseded, no id")
    client_args(p)
    p.set_defaults(func=later("advisor.cli.remote:cmd_recommend"))


def _plan(sub: Any) -> None:
    plan = sub.add_parser("plan", help=HELP["plan"])
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
        p.add_argument("--max-moves", type=whole(0), default=0,
                       help="at most this many moves (default 0: the anti-churn cap, 2.5%% of the VMs)")
        p.add_argument("--max-downtime-ms", type=amount, help="downtime limit of every move (default 300)")
        p.add_argument("--deadline-ms", type=amount, default=0.0, help="deadline of every move")
        p.add_argument("--dry-run", action="store_true", help="a preview: nothing is stored, nothing to approve")
        p.add_argument("--store-empty", action="store_true", help="store the plan even when it has no move")
        client_args(p)
        p.set_defaults(func=later("advisor.cli.remote:cmd_plan"))


def _migrate(sub: Any) -> None:
    migrate = sub.add_parser("migrate", help=HELP["migrate"])
    migrate.set_defaults(func=later("advisor.cli.remote:cmd_migrate"))
    actions = migrate.add_subparsers(dest="migrate_command", required=True, metavar="ACTION")
    p = actions.add_parser("execute", help="execute a move of an approved recommendation (idempotent)")
    p.add_argument("recommendation")
    p.add_argument("--move", type=move_index, default=0, metavar="N",
                   help="which move of a plan, numbered from 1 as `recs show` lists them (default 1)")
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


def _simulate(sub: Any) -> None:
    from advisor.evaluation import register
    from advisor.simulation.cli import add_simulate_command

    register()  # the project's own planner as the simulator's `advisor` policy
    add_simulate_command(sub)


# Every command in the order `advisor --help` lists them: what it says of each, and what adds its arguments (a
# function, or `module:function` of a module imported only when that command is named). The help of the commands
# whose parsers live elsewhere is theirs, repeated here (tests/unit/cli/test_cli_parser.py holds them equal).
HELP = {
    "serve": "run the advisor's gRPC service until SIGTERM",
    "demo": "the whole story on a local lab: ingest, recommend, migrate, compare",
    "push": "push the inventory and samples of an example-format JSON file",
    "hosts": "list hosts with their allocation and load",
    "vms": "list VMs with their latest samples",
    "predict": "predict migration costs",
    "recommend": "recommend a target host and technique for one VM",
    "plan": "plan moves for the whole cluster: drain a host, rebalance, consolidate, evacuate a host that is down",
    "recs": "review, execute and follow recommendations (the SRE's commands)",
    "automation": "automation level and threshold per cluster",
    "lab": "the local multi-host lab: libvirt daemons, TCG guests, Prometheus",
    "tokens": "create, list and revoke bearer tokens (on the data directory)",
    "ui": "print a one-time login link to the web page (on the data directory)",
    "outcomes": "the migrations this advisor executed, as training data",
    "profiles": "host profiles: calibrate the physics from a host's migrations",
    "simulate": "replay a PlanetLab or Bitbrains day through a consolidation policy (CloudSim's metrics)",
    "migrate": "execute, watch, show or abort migrations",
    "backup": "back up the advisor's database to a file, while it runs",
    "restore": "put a backup in place of the advisor's database (advisor stopped)",
}
BUILDERS: dict[str, Callable[[Any], object] | str] = {
    "serve": _serve, "demo": _demo, "push": _push, "hosts": _hosts, "vms": _vms, "predict": _predict,
    "recommend": _recommend, "plan": _plan, "recs": "advisor.cli.review:add_recs_command",
    "automation": "advisor.cli.review:add_automation_command", "lab": "advisor.lab.cli:add_lab_commands",
    "tokens": "advisor.cli.tokens:add_tokens_commands", "ui": "advisor.cli.ui:add_ui_commands",
    "outcomes": "advisor.cli.outcomes:add_outcomes_commands", "profiles": "advisor.cli.profiles:add_profiles_commands",
    "simulate": _simulate, "migrate": _migrate, "backup": "advisor.cli.backup:add_backup_command",
    "restore": "advisor.cli.backup:add_restore_command",
}


def parser(argv: Sequence[str] = (), *, complete: bool = False) -> argparse.ArgumentParser:
    """The command line. Only the command named in `argv` (every one when `complete`) is given its arguments; the
    others are listed by name and help."""
    top = Parser(prog="advisor", description=__doc__.splitlines()[0],
                 epilog="Exit codes: 0 success, 1 the advisor refused or failed, 2 bad usage, input or configuration. "
                        "Client commands read $ADVISOR_SERVER and $ADVISOR_TOKEN; `--json` prints the API's own "
                        "message (protobuf's JSON). Moves of a plan are numbered from 1.")
    top.add_argument("--version", action=Version)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = next((a for a in argv if not a.startswith("-")), None)
    for name, build in BUILDERS.items():
        if not (complete or name == named):
            sub.add_parser(name, help=HELP[name])
        elif isinstance(build, str):
            module, function = build.split(":")
            getattr(importlib.import_module(module), function)(sub)
        else:
            build(sub)
    return top


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("advisor")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. A mistake of the user or the environment is one line on stderr and an exit code:
    2 for usage, input or configuration, 1 when the advisor refused or something failed; never a traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser(argv).parse_args(argv)
    try:
        return int(args.func(args))
    except SetupError as error:
        return _say(str(error), 2)
    except InvalidArgument as error:  # raised here, not answered by an advisor: the user's flag or file is bad
        return _say(getattr(error, "message_lines", None) or str(error), 2)  # a file's bad rows, one a line
    except AdvisorError as error:
        return _say(str(error), 1)
    except OSError as error:  # a port in use, a file that cannot be read, a full disk ...
        if isinstance(error, BrokenPipeError):
            return _quiet_pipe()
        return _say(f"{error.strerror or error}" + (f": {error.filename}" if error.filename else ""), 2)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        from advisor.api.client import ClientError  # loaded already by every command that talks to an advisor

        if not isinstance(error, ClientError):
            raise
        hint = " (is `advisor serve` running there?)" if error.code == "UNAVAILABLE" else ""
        hint = " (give a token: --token or $ADVISOR_TOKEN)" if error.code == "UNAUTHENTICATED" else hint
        return _say(f"{error.code}: {error.details}{hint}", 1)


def _say(message: str | Sequence[str], code: int) -> int:
    """`message` on stderr, each of its lines escaped on its own: a line break is kept where the message is made of
    lines, and nothing a line quotes can forge another."""
    lines = [message] if isinstance(message, str) else list(message)
    with contextlib.suppress(BrokenPipeError):
        print("\n".join(f"advisor: {safe(line)}" if k == 0 else safe(line) for k, line in enumerate(lines)),
              file=sys.stderr)
    return code


def _quiet_pipe() -> int:
    """The reader of our output went away (`advisor recs list | head`): stop without a word, as Unix tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0
