"""One lab host: a privileged libvirtd in its own mount namespace, with its own configuration and state.

`unshare -m --propagation private` gives the daemon a private copy of the mount table, in which the host's
directories under the lab root are bind-mounted over /etc/libvirt, /run/libvirt, /var/lib/libvirt,
/var/cache/libvirt and /var/log/libvirt. The mounts exist only in that namespace, so they vanish with the last
process in it (the daemon and the QEMUs it started): there is nothing to unmount.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from advisor.lab import pki, procs, virt

SUBDIRS = ("etc", "run", "lib", "log")
# The QEMU driver resolves this user and group (Debian's build defaults) at start even with user="root" (FACTS
# pitfall 1); scripts/setup.sh must create both.
QEMU_USER = "libvirt-qemu"
MAX_SOCKET_PATH = 107
# Incoming-migration ports: blocks of 16 from 49152 (libvirt's default start) to 65535.
MIGRATION_PORT_BASE = 49152
MIGRATION_PORT_BLOCK = 16
MIGRATION_PORT_BLOCKS = (65536 - MIGRATION_PORT_BASE) // MIGRATION_PORT_BLOCK


@dataclass(frozen=True)
class HostSpec:
    name: str
    directory: Path  # etc/, run/, lib/, log/ of this host
    cache: Path  # its /var/cache/libvirt, kept between runs (QEMU capabilities: 8 s to probe, 0.2 s cached)
    host_uuid: str
    tcp_port: int | None = None
    # Migration certificates (advisor.lab.pki) its QEMU encrypts migrations with; None: plain TCP only.
    tls_dir: Path | None = None

    @property
    def run_dir(self) -> Path:
        return self.directory / "run"

    @property
    def migration_ports(self) -> tuple[int, int]:
        """The ports its QEMU listens on for incoming migrations: a block of its own, chosen by its UUID (stable
        per lab root and host). libvirt's default, 49152-49215 for every daemon, let two labs on one machine (a
        test beside a collection) hand the same port to two destination QEMUs: "Address already in use"."""
        block = uuid.UUID(self.host_uuid).int % MIGRATION_PORT_BLOCKS
        low = MIGRATION_PORT_BASE + block * MIGRATION_PORT_BLOCK
        return low, low + MIGRATION_PORT_BLOCK - 1

    @property
    def socket(self) -> Path:
        return self.run_dir / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def tcp_uri(self) -> str | None:
        return None if self.tcp_port is None else f"qemu+tcp://127.0.0.1:{self.tcp_port}/system"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "libvirtd.pid"

    def serial_log(self, guest: str) -> Path:
        return self.directory / "log" / "qemu" / f"{guest}-serial.log"

    def qemu_pid_files(self) -> list[Path]:
        return sorted((self.run_dir / "qemu").glob("*.pid"))


def host_uuid(root: Path, name: str) -> str:
    """Distinct per host (libvirt refuses to migrate to "the same host") and stable for a given lab root."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"advisor-lab:{root.resolve()}:{name}"))


def libvirtd_conf(spec: HostSpec) -> str:
    lines = [
        f'host_uuid = "{spec.host_uuid}"',
        'unix_sock_group = "root"',
        'unix_sock_rw_perms = "0770"',
        'auth_unix_rw = "none"',
        'auth_unix_ro = "none"',
        'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"',
    ]
    if spec.tcp_port is not None:
        lines += ["listen_tls = 0", "listen_tcp = 1", f'tcp_port = "{spec.tcp_port}"', 'listen_addr = "127.0.0.1"',
                  'auth_tcp = "none"']
    return "\n".join(lines) + "\n"


# Root without a security driver, cgroups or namespaces: the machine has no systemd, and the lab's QEMUs must see
# the kernel and initrd under the lab root. stdio_handler="file" lets QEMU write its logs without virtlogd.
QEMU_CONF = """user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
remember_owner = 0
"""


def qemu_conf(spec: HostSpec) -> str:
    """QEMU_CONF with the host's own migration ports, and where the host has certificates, migrations over TLS
    with the peer's certificate checked (libvirt asks for TLS only when a migration is started with
    VIR_MIGRATE_TLS)."""
    low, high = spec.migration_ports
    conf = QEMU_CONF + f"migration_port_min = {low}\nmigration_port_max = {high}\n"
    if spec.tls_dir is None:
        return conf
    return conf + f'migrate_tls_x509_cert_dir = "{spec.tls_dir}"\nmigrate_tls_x509_verify = 1\n'


def offers_tls(spec: HostSpec) -> bool:
    """Whether the running daemon's qemu.conf names a certificate directory that holds every file TLS needs
    (a daemon started before the lab made certificates has none)."""
    try:
        conf = (spec.directory / "etc" / "qemu.conf").read_text()
    except OSError:
        return False
    match = re.search(r'^migrate_tls_x509_cert_dir = "([^"]+)"$', conf, re.MULTILINE)
    return match is not None and pki.complete(Path(match.group(1)))


def is_running(spec: HostSpec) -> int | None:
    """The daemon's pid if it runs and is this host's (its /run/libvirt is our run directory)."""
    pid = procs.read_pid(spec.pid_file)
    if pid is not None and procs.owned(pid, "libvirtd", run_dirs=[spec.run_dir]):
        return pid
    return None


# what runs in a lab host's mount namespace: its daemon and the QEMUs it started
PROGRAMS = ("libvirtd", "qemu-system-x86_64")


def _owned_qemu(spec: HostSpec, pid: int) -> bool:
    return procs.owned(pid, "qemu-system-x86_64", run_dirs=[spec.run_dir])


def kill_leftovers(spec: HostSpec) -> list[int]:
    """Kill QEMUs of a daemon that died (killing libvirtd leaves its QEMUs running, FACTS pitfall 5)."""
    killed = []
    for pid_file in spec.qemu_pid_files():
        pid = procs.read_pid(pid_file)
        if pid is not None and procs.terminate(pid, lambda p: _owned_qemu(spec, p), timeout_s=5):
            killed.append(pid)
    for pid in procs.in_namespaces([spec.run_dir]):  # whatever is left in the namespace without a pid file
        if procs.terminate(pid, lambda p: _owned_qemu(spec, p) or procs.owned(p, "libvirtd", run_dirs=[spec.run_dir]),
                           timeout_s=5):
            killed.append(pid)
    return killed


def kill(spec: HostSpec) -> list[int]:
    """Kill the daemon (SIGKILL: no chance to stop its guests), then its QEMUs as a dead host loses them; the pids
    killed."""
    pid = is_running(spec)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        procs.wait_for(f"libvirtd {pid} gone", lambda: not procs.alive(pid), 10.0)
    return ([pid] if pid is not None else []) + kill_leftovers(spec)


def start(spec: HostSpec, timeout_s: float = 60.0) -> int:
    """Start the daemon with fresh configuration and no domains; return its pid once it answers a real call."""
    missing = [f"{kind} {QEMU_USER}" for kind, db in (("user", pwd.getpwnam), ("group", grp.getgrnam))
               if not _exists(db, QEMU_USER)]
    if missing:
        raise RuntimeError(f"libvirt's QEMU driver needs the {' and '.join(missing)} even when it runs QEMU as root;"
                           " scripts/setup.sh creates them")
    if len(str(spec.socket)) > MAX_SOCKET_PATH:
        raise ValueError(f"{spec.socket}: longer than a unix socket path may be; use a shorter lab root")
    for sub in SUBDIRS:
        shutil.rmtree(spec.directory / sub, ignore_errors=True)
    for sub in ("etc", "run", "lib/qemu", "log/qemu"):
        (spec.directory / sub).mkdir(parents=True, exist_ok=True)
    spec.cache.mkdir(parents=True, exist_ok=True)
    (spec.directory / "etc" / "libvirtd.conf").write_text(libvirtd_conf(spec))
    (spec.directory / "etc" / "qemu.conf").write_text(qemu_conf(spec))
    binds = {
        "/etc/libvirt": spec.directory / "etc", "/run/libvirt": spec.run_dir,
        "/var/lib/libvirt": spec.directory / "lib", "/var/cache/libvirt": spec.cache,
        "/var/log/libvirt": spec.directory / "log",
    }
    script = "set -e\n" + "".join(f"mkdir -p {target}\nmount --bind '{source}' {target}\n"
                                  for target, source in binds.items())
    args = "-f /etc/libvirt/libvirtd.conf -p /run/libvirt/libvirtd.pid -d" + (" --listen" if spec.tcp_port else "")
    script += f"exec /usr/sbin/libvirtd {args}\n"
    # libvirtd -d forks into the background and the command returns; the daemon writes its own pid file.
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            check=False, capture_output=True, text=True, timeout=timeout_s,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"libvirtd {spec.name} did not start: {result.stderr.strip() or result.stdout.strip()}")
    def ready() -> bool:
        pid = procs.read_pid(spec.pid_file)
        if pid is not None and not procs.alive(pid):
            raise TimeoutError(f"libvirtd {spec.name} exited")
        return virt.responds(spec.uri)

    try:
        procs.wait_for(f"libvirtd {spec.name}", ready, timeout_s, 0.05)
    except TimeoutError:
        raise RuntimeError(f"libvirtd {spec.name} did not answer; see {spec.directory / 'log' / 'libvirtd.log'}\n"
                           + _tail(spec.directory / "log" / "libvirtd.log")) from None
    pid = is_running(spec)
    if pid is None:
        raise RuntimeError(f"libvirtd {spec.name} answers but its pid file {spec.pid_file} is not right")
    return pid


def _exists(lookup: Callable[[str], object], name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop(spec: HostSpec) -> None:
    """Destroy the domains, stop the daemon, then kill whatever is left in its namespace."""
    pid = is_running(spec)
    if pid is not None:
        with contextlib.suppress(virt.Error):
            virt.destroy_all(spec.uri)
        procs.terminate(pid, lambda p: procs.owned(p, "libvirtd", run_dirs=[spec.run_dir]))
    kill_leftovers(spec)


def seed_cache(spec: HostSpec, others: list[Path]) -> None:
    """Copy another host's QEMU capability cache into an empty one: the same binaries, so the same probe result."""
    target = spec.cache / "qemu" / "capabilities"
    if target.is_dir() and any(target.iterdir()):
        return
    for other in others:
        source = other / "qemu" / "capabilities"
        if source.is_dir() and any(source.glob("*.xml")):
            target.mkdir(parents=True, exist_ok=True)
            for xml in source.glob("*.xml"):
                shutil.copy2(xml, target / xml.name)
            return
