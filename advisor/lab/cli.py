"""`advisor lab up | status | down`: the local multi-host lab from the command line.

Exit codes: 0 success (for `status`: every host, guest and Prometheus process is up), 1 failure or something down.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from advisor.lab.lab import DEFAULT_ADVISOR_METRICS, DEFAULT_ROOT, Lab, LabStatus
from advisor.tables import table


def _progress(line: str) -> None:
    print(f"[lab] {line}", flush=True)


def _lab(args: argparse.Namespace) -> Lab:
    return Lab(args.root, prometheus_port=getattr(args, "prometheus_port", None),
               tcp_base_port=getattr(args, "tcp_base_port", None), progress=_progress)


def render_status(status: LabStatus) -> str:
    hosts = table(["host", "up", "pid", "migration TLS", "uri"],
                  [[h.name, "yes" if h.up else "NO", h.pid or "-", "yes" if h.migration_tls else "no", h.uri]
                   for h in status.hosts])
    guests = table(["guest", "host", "state", "dirty", "serial log"],
                   [[g.name, g.host or "-", g.state, g.dirty.describe(), g.serial_log or "-"] for g in status.guests])
    services = table(["service", "up", "pid", "url"],
                     [[s.name, "yes" if s.up else "NO", s.pid or "-", s.url] for s in status.services])
    return "\n\n".join([f"lab {status.root}", hosts, guests, services,
                        f"Prometheus: {status.prometheus_url or '-'}"])


def _run(action: Any, args: argparse.Namespace) -> int:
    try:
        return int(action(args))
    except (RuntimeError, OSError, ValueError) as error:  # LabError, TimeoutError, libvirt errors are among them
        print(f"advisor lab: {error}", file=sys.stderr)
        return 1


def cmd_up(args: argparse.Namespace) -> int:
    def up(a: argparse.Namespace) -> int:
        status = _lab(a).up(a.hosts, a.guests, advisor_metrics=a.advisor_metrics, disk_mib=a.disk_mib)
        print(render_status(status))
        return 0 if status.healthy else 1

    return _run(up, args)


def cmd_status(args: argparse.Namespace) -> int:
    def status(a: argparse.Namespace) -> int:
        current = _lab(a).status()
        if not current.hosts:
            print(f"no lab in {current.root}")
            return 1
        print(render_status(current))
        return 0 if current.healthy else 1

    return _run(status, args)


def cmd_down(args: argparse.Namespace) -> int:
    def down(a: argparse.Namespace) -> int:
        _lab(a).down()
        return 0

    return _run(down, args)


def add_lab_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add `lab up|status|down` to an argparse subparsers object; each sub-command sets `func(args) -> int`."""
    lab: argparse.ArgumentParser = subparsers.add_parser(
        "lab", help="the local multi-host lab: libvirt daemons, TCG guests, Prometheus")
    sub = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")

    def root_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"lab directory (default {DEFAULT_ROOT})")

    p = sub.add_parser("up", help="start what is missing (idempotent): hosts, guests, Prometheus and exporters")
    p.add_argument("--hosts", type=int, default=2, help="number of hosts, at least (default 2)")
    p.add_argument("--guests", type=int, default=1, help="number of guests, at least (default 1)")
    p.add_argument("--disk-mib", type=int, default=0,
                   help="give each new guest a local raw disk of this many MiB on its host, mounted at /mnt/disk "
                        "in the guest (default 0: none)")
    p.add_argument("--advisor-metrics", default=DEFAULT_ADVISOR_METRICS,
                   help=f"the advisor's metrics address that Prometheus scrapes (default {DEFAULT_ADVISOR_METRICS})")
    p.add_argument("--prometheus-port", type=int, help="Prometheus port on 127.0.0.1 (default: a free one)")
    p.add_argument("--tcp-base-port", type=int, help="also listen on TCP 127.0.0.1, host N on this port + N - 1")
    root_arg(p)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("status", help="hosts, guests (where they run, their dirty rate) and Prometheus")
    root_arg(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("down", help="destroy the guests, stop everything, keep only the caches")
    root_arg(p)
    p.set_defaults(func=cmd_down)
    return lab
