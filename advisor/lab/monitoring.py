"""Prometheus for the lab: the server, the node exporter and one libvirt exporter per host, all on 127.0.0.1.

Each process is started in its own session with its output in a log file, and its pid in a pid file next to it;
every one carries a path under the lab root in its arguments, which is how the lab recognises it later.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.lab import procs

PROGRAMS = ("prometheus", "prometheus-node-exporter", "prometheus-libvirt-exporter")


@dataclass(frozen=True)
class Service:
    name: str  # prometheus, node-exporter, libvirt-exporter-<host>
    program: str
    args: tuple[str, ...]
    address: str  # 127.0.0.1:port
    ready_path: str  # HTTP path that answers 2xx once it serves


def prometheus_service(directory: Path, port: int) -> Service:
    return Service("prometheus", "prometheus", (
        f"--config.file={directory / 'prometheus.yml'}", f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30d", "--web.enable-admin-api",
        "--web.enable-lifecycle",
    ), f"127.0.0.1:{port}", "/-/ready")


def node_exporter_service(directory: Path, port: int) -> Service:
    # The textfile directory is also the marker that tells this node exporter from any other on the machine.
    return Service("node-exporter", "prometheus-node-exporter", (
        f"--web.listen-address=127.0.0.1:{port}", f"--collector.textfile.directory={directory / 'textfile'}",
    ), f"127.0.0.1:{port}", "/metrics")


def libvirt_exporter_service(host: str, uri: str, port: int) -> Service:
    return Service(f"libvirt-exporter-{host}", "prometheus-libvirt-exporter", (
        f"--web.listen-address=127.0.0.1:{port}", f"--libvirt.uri={uri}",
    ), f"127.0.0.1:{port}", "/metrics")


def prometheus_config(prometheus: str, node: str, libvirt: dict[str, str], advisor: str) -> str:
    """The scrape configuration, as JSON (which YAML parsers read): one libvirt target per host, labelled."""
    config = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": [prometheus]}]},
            {"job_name": "node", "static_configs": [{"targets": [node]}]},
            {"job_name": "libvirt", "static_configs": [
                {"targets": [address], "labels": {"host": host}} for host, address in sorted(libvirt.items())
            ]},
            {"job_name": "advisor", "static_configs": [{"targets": [advisor]}]},
        ],
    }
    return json.dumps(config, indent=2) + "\n"


def _pid_file(directory: Path, service: Service) -> Path:
    return directory / f"{service.name}.pid"


def _marker(directory: Path) -> str:
    """Every service has a path under the lab root (the parent of `directory`) in its arguments."""
    return f"{directory.parent}/"


def running(directory: Path, service: Service) -> int | None:
    pid = procs.read_pid(_pid_file(directory, service))
    if pid is not None and procs.owned(pid, service.program, marker=_marker(directory)):
        return pid
    return None


def start(directory: Path, service: Service, timeout_s: float = 30.0) -> int:
    """Start the service unless it runs already; return its pid once it answers over HTTP."""
    pid = running(directory, service)
    if pid is None:
        # Started through a shell that exits at once, so the service is nobody's child here: it outlives a CLI
        # run, and no Popen object is left to warn about a process still running.
        spawn = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'
        result = subprocess.run(["sh", "-c", spawn, "sh", str(directory / f"{service.name}.log"), service.program,
                                 *service.args], check=True, capture_output=True, text=True, cwd=directory,
                                start_new_session=True)
        pid = int(result.stdout.strip())
        _pid_file(directory, service).write_text(f"{pid}\n")
    url = f"http://{service.address}{service.ready_path}"

    def ready() -> bool:
        if not procs.alive(pid):
            raise RuntimeError(f"{service.name} exited; see {directory / (service.name + '.log')}")
        return procs.http_ok(url)

    procs.wait_for(service.name, ready, timeout_s)
    return pid


def stop(directory: Path, service: Service) -> None:
    pid_file = _pid_file(directory, service)
    pid = procs.read_pid(pid_file)
    if pid is not None:
        procs.terminate(pid, lambda p: procs.owned(p, service.program, marker=_marker(directory)))
    pid_file.unlink(missing_ok=True)


def reload(directory: Path, service: Service) -> None:
    """Make Prometheus re-read its configuration (new hosts); SIGHUP, as its documentation says."""
    pid = running(directory, service)
    if pid is not None:
        os.kill(pid, signal.SIGHUP)


def _owned_by(program: str, directory: Path) -> Callable[[int], bool]:
    return lambda pid: procs.owned(pid, program, marker=_marker(directory))


def sweep(directory: Path) -> list[int]:
    """Stop every exporter or server whose pid file is in `directory` (used by `down` and crash recovery)."""
    stopped = []
    for pid_file in sorted(directory.glob("*.pid")):
        pid = procs.read_pid(pid_file)
        if pid is not None:
            args = procs.cmdline(pid)
            program = os.path.basename(args[0]) if args else ""
            if program in PROGRAMS and procs.terminate(pid, _owned_by(program, directory)):
                stopped.append(pid)
        pid_file.unlink(missing_ok=True)
    return stopped


def ports(state: dict[str, Any], wanted: dict[str, int | None]) -> dict[str, Any]:
    """The lab's ports in its state (`state["ports"]`, filled in where missing): Prometheus's and the node
    exporter's, and a libvirt exporter's per host; each the one `wanted` (its "libvirt_base" plus the host's
    position for the exporters) or a free one."""
    found: dict[str, Any] = state["ports"]
    for key in ("prometheus", "node"):
        found[key] = found.get(key) or wanted[key] or procs.free_port()
    libvirt_ports: dict[str, int] = found.setdefault("libvirt", {})
    base = wanted["libvirt_base"]
    for i, name in enumerate(state["hosts"]):
        if name not in libvirt_ports:
            libvirt_ports[name] = base + i if base else procs.free_port()
    return found
