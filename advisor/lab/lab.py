"""The local multi-host lab: libvirt daemons as hosts, tiny TCG guests, Prometheus with exporters.

Layout under the root (`.lab/` of the repository by default):

    state.json              what `up` asked for: hosts, guests and their dirty-rate setting, ports
    hosts/<host>/           etc/ run/ lib/ log/ of one daemon, fresh each time the daemon is (re)created
    pki/                    the lab's CA and each host's migration certificates (advisor.lab.pki)
    prometheus/             prometheus.yml, data/, and a pid and log file per server or exporter
    cache/guest/            the guest kernel, busybox and initramfs (kept by `down`)
    cache/libvirt/<host>/   the daemon's /var/cache/libvirt: QEMU capabilities (kept by `down`)

Every operation is idempotent and repairs what a crash left: `up` restarts what is dead and adds what is
missing, `down` stops whatever it can prove the lab started. A file lock keeps two of them from interleaving.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from advisor.lab import console, daemon, disks, guest, monitoring, pki, procs, shaping, virt
from advisor.lab.daemon import HostSpec
from advisor.lab.state import DirtySetting, GuestStatus, HostStatus, LabError, LabStatus, ServiceStatus, StateFile

__all__ = ["DEFAULT_ADVISOR_METRICS", "DEFAULT_ROOT", "DirtySetting", "GuestStatus", "HostStatus", "Lab", "LabError",
           "LabStatus", "ServiceStatus"]  # the status values were defined here once; importers of this module keep them

REPO = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = REPO / ".lab"
DEFAULT_ADVISOR_METRICS = "127.0.0.1:9464"
GUEST_BOOT_TIMEOUT_S = 120.0
COMMAND_TIMEOUT_S = console.COMMAND_TIMEOUT_S
APPLY_TIMEOUT_S = 60.0  # zeroing the old working set and writing a new one of up to ~200 MiB under TCG


def _host_name(i: int) -> str:
    return f"hv{i + 1}"


def _guest_name(i: int) -> str:
    return f"vm{i + 1}"


class Lab:
    """A small cluster of hypervisor hosts on this machine, kept under `root` (see the module docstring)."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        cache: Path | None = None, guest_memory_mib: int = 128, guest_programs: bool = False,
        tcp_base_port: int | None = None, prometheus_port: int | None = None, node_exporter_port: int | None = None,
        libvirt_exporter_base_port: int | None = None, with_prometheus: bool = True,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.root = (root or DEFAULT_ROOT).resolve()
        self.guest_memory_mib = guest_memory_mib
        self.guest_programs = guest_programs  # the guest image with stress and stress-ng (guest.PROGRAMS)
        self.with_prometheus = with_prometheus  # False: no Prometheus nor exporters (a measuring job wants the CPU)
        self.tcp_base_port = tcp_base_port
        self._ports_wanted = {"prometheus": prometheus_port, "node": node_exporter_port,
                              "libvirt_base": libvirt_exporter_base_port}
        self._progress = progress or (lambda _line: None)
        # Shared caches let a second lab (the tests') reuse the guest image and the QEMU capabilities.
        self.cache = (cache or self.root / "cache").resolve()
        self.prom_dir = self.root / "prometheus"
        self._state = StateFile(self.root)

    # -- public operations -------------------------------------------------------------------------------

    def up(self, hosts: int = 2, guests: int = 1, *, advisor_metrics: str = DEFAULT_ADVISOR_METRICS,
           disk_mib: int = 0) -> LabStatus:
        """Start what is missing so that at least `hosts` hosts and `guests` guests run (new guests with a local
        disk of `disk_mib` MiB, advisor.lab.disks); leave the rest alone."""
        if hosts < 1 or guests < 0:
            raise ValueError("a lab needs at least one host and no negative number of guests")
        with self._state.lock():
            state = self._state.load()
            n_hosts = max(hosts, len(state["hosts"]))
            for i in range(n_hosts):
                name = _host_name(i)
                state["hosts"].setdefault(name, {"tcp_port": None if self.tcp_base_port is None
                                                 else self.tcp_base_port + i})
            for i in range(max(guests, len(state["guests"]))):
                state["guests"].setdefault(_guest_name(i), {"home": _host_name(i % n_hosts), "dirty": None,
                                                            "disk_mib": disk_mib})
            state["advisor_metrics"] = advisor_metrics
            self._state.save(state)

            with_disks = any(g.get("disk_mib") for g in state["guests"].values())
            image = self._image(with_disks)
            for name in state["hosts"]:
                self._ensure_host(self._spec(name, state))
                if with_disks:
                    disks.ensure_pool(self._spec(name, state))
            self._ensure_guests(state, image)
            if self.with_prometheus:
                self._ensure_monitoring(state)
            self._state.save(state)
        status = self.status()
        self._progress(f"lab up: {len(status.hosts)} host(s), {len(status.guests)} guest(s), "
                       f"Prometheus {status.prometheus_url}")
        return status

    def status(self) -> LabStatus:
        state = self._state.load()
        hosts = []
        where: dict[str, tuple[str, str]] = {}
        for name in state["hosts"]:
            spec = self._spec(name, state)
            pid = daemon.is_running(spec)
            up = pid is not None and virt.responds(spec.uri)
            hosts.append(HostStatus(name, spec.uri, pid, up, spec.tcp_uri, up and daemon.offers_tls(spec)))
            if up:
                for dom, dom_state in virt.active_domains(spec.uri).items():
                    where[dom] = (name, dom_state)
        guests = []
        for name, info in state["guests"].items():
            host, dom_state = where.get(name, (None, "missing"))
            log = None if host is None else self._spec(host, state).serial_log(name)
            guests.append(GuestStatus(name, host, dom_state, DirtySetting.from_json(info.get("dirty")), log))
        services = []
        for service in self._services(state):
            pid = monitoring.running(self.prom_dir, service)
            url = f"http://{service.address}"
            services.append(ServiceStatus(service.name, url, pid,
                                          pid is not None and procs.http_ok(url + service.ready_path)))
        ports = state.get("ports", {})
        prometheus_url = f"http://127.0.0.1:{ports['prometheus']}" if "prometheus" in ports else None
        return LabStatus(self.root, tuple(hosts), tuple(guests), prometheus_url, tuple(services))

    def down(self) -> None:
        """Destroy the guests, stop the daemons and Prometheus, and remove everything but the caches."""
        if not self.root.exists():
            return
        with self._state.lock():
            state = self._state.load()
            specs = [self._spec(name, state) for name in self._known_hosts(state)]
            for spec in specs:
                self._progress(f"stopping {spec.name}")
                daemon.stop(spec)
            for name in shaping.remove_links(specs):
                self._progress(f"removed the shaped link into {name}")
            stopped = monitoring.sweep(self.prom_dir) if self.prom_dir.exists() else []
            if stopped:
                self._progress(f"stopped Prometheus and {len(stopped) - 1} exporter(s)")
            for pid in procs.orphans_of(self.root, daemon.PROGRAMS):  # a lost host's daemon or QEMUs
                if procs.terminate(pid, lambda p: procs.holds_lab_mount(p, self.root, daemon.PROGRAMS), timeout_s=5):
                    self._progress(f"stopped {pid}, left by a host the lab no longer knew")
            left = procs.in_namespaces([s.run_dir for s in specs])
            if left:
                raise LabError(f"processes still in the lab's mount namespaces: {left}")
            for entry in (e for e in self.root.iterdir() if e != self.cache and e.name != ".lock"):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            (self.root / ".lock").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.root.rmdir()  # when the caches live elsewhere, nothing is left at all
        self._progress(f"lab down; kept the caches in {self.cache}")

    def kill_host(self, host: str) -> list[int]:
        """The host dies: its libvirtd and QEMUs killed, nothing shut down (`up` brings it back, empty)."""
        return daemon.kill(self._spec(host, self._state.load()))

    # -- guests --------------------------------------------------------------------------------------------

    def uri(self, host: str) -> str:
        return self._spec(host, self._state.load()).uri

    def host_of(self, guest_name: str) -> str | None:
        """The host that runs the guest now, asking every daemon (a migration may have moved it)."""
        state = self._state.load()
        for name in state["hosts"]:
            if guest_name in virt.active_domains(self._spec(name, state).uri):
                return str(name)
        return None

    def serial_log(self, guest_name: str) -> Path | None:
        host = self.host_of(guest_name)
        return None if host is None else self._spec(host, self._state.load()).serial_log(guest_name)

    def guest_alive(self, name: str, within_s: float = 5.0) -> bool:
        """Whether the guest's heartbeat (once a second, in guest uptime) advances within `within_s`.

        The heartbeat is read from the serial log of whichever host runs the guest now; guest uptime carries
        over a migration, so a newer heartbeat on the destination counts.
        """
        return console.heartbeat_advances(lambda: self.serial_log(name), within_s)

    def set_dirty_rate(self, guest_name: str, mib_s: float, *, working_set_mib: int | None = None) -> None:
        """Make the guest write `mib_s` MiB/s of changing random data until told otherwise."""
        self.set_dirty_schedule(guest_name, [(0.0, mib_s)], working_set_mib=working_set_mib)

    def set_dirty_schedule(self, guest_name: str, steps: Sequence[tuple[float, float]], repeat: bool = False, *,
                           working_set_mib: int | None = None, phase_s: int = 0, continuous: bool = False,
                           constant_pct: int = 0, wait_applied: bool = False) -> None:
        """Run through (seconds, MiB/s) steps, in whole seconds; the last rate stays unless `repeat`.

        The writer rewrites `working_set_mib` MiB (None: the guest's default region; 0: nothing), moved to the
        next window every `phase_s` seconds when that is > 0; `continuous` spreads each second's MiB over the
        second; `constant_pct` of every page written stays zero. A new working set is first written once (see
        guest.INIT). The guest reads the plan on its second serial port (a pty, found in the live XML of the host
        that runs it now) and acknowledges it on its console; this returns once it has, or with `wait_applied`
        once the writer runs it (the old working set zeroed, the new one written). A setting the writer cannot
        run raises ValueError (DirtySetting checks it).
        """
        setting = DirtySetting(tuple((float(s), float(r)) for s, r in steps), repeat, working_set_mib, phase_s,
                               continuous, constant_pct)
        seq = self._send_plan(guest_name, setting)
        if wait_applied:
            self._wait_console(guest_name, f"GUEST-DIRTY seq={seq} ", APPLY_TIMEOUT_S)
        with self._state.lock():
            state = self._state.load()
            if guest_name in state["guests"]:
                state["guests"][guest_name]["dirty"] = setting.to_json()
                self._state.save(state)

    def run_program(self, guest_name: str, argv: Sequence[str]) -> None:
        """Stop the program the guest runs (its whole session) and start `argv`, one of guest.PROGRAMS with plain
        arguments; an empty `argv` only stops. Needs the guest image with programs (`guest_programs=True`)."""
        seq = time.time_ns() // 1_000_000 % 1_000_000_000
        self.send(guest_name, guest.program_command(seq, list(argv)), f"GUEST-PROG seq={seq} ")

    def guest_written(self, guest_name: str) -> tuple[float, int] | None:
        """(guest uptime s, MiB its writer has written at its rate since boot), from the last heartbeat."""
        return console.last_written(self.serial_log(guest_name))

    def guest_console(self, guest_name: str) -> str:
        """What the guest printed on its console on the host that runs it now ("" if it runs nowhere)."""
        return console.read(self.serial_log(guest_name))

    def measure_dirty_rate(self, guest_name: str, seconds: int = 1) -> float:
        """One page-sampling reading through libvirt (startDirtyRateCalc): noisy, see docs/lab.md."""
        host = self.host_of(guest_name)
        if host is None:
            raise LabError(f"guest {guest_name} runs nowhere")
        return virt.dirty_rate_mib_s(self.uri(host), guest_name, seconds)

    def migrate(self, guest_name: str, to_host: str) -> float:
        """Live peer-to-peer migration (migrateToURI3) to `to_host`; returns the wall time in seconds."""
        source = self.host_of(guest_name)
        if source is None:
            raise LabError(f"guest {guest_name} runs nowhere")
        started = time.monotonic()
        virt.migrate(self.uri(source), self.uri(to_host), guest_name)
        return time.monotonic() - started

    @staticmethod
    def migration_params() -> dict[str, str]:
        """The migrateToURI3 parameters lab migrations need (loopback migration URI and listen address)."""
        return virt.migration_params()

    def shaped_link(self, host: str, mib_s: float) -> contextlib.AbstractContextManager[shaping.Link]:
        """Migrations into `host` limited to `mib_s` MiB/s while the block runs (advisor.lab.shaping)."""
        return shaping.shaped_link(self._spec(host, self._state.load()), mib_s)

    # -- internals -----------------------------------------------------------------------------------------

    def _spec(self, name: str, state: dict[str, Any]) -> HostSpec:
        tcp = state["hosts"].get(name, {}).get("tcp_port")
        return HostSpec(name, self.root / "hosts" / name, self.cache / "libvirt" / name,
                        daemon.host_uuid(self.root, name), tcp, self.root / "pki" / name)

    def _known_hosts(self, state: dict[str, Any]) -> list[str]:
        """Hosts in the state file and any host directory a crashed `up` left before saving it."""
        names = list(state["hosts"])
        hosts_dir = self.root / "hosts"
        if hosts_dir.is_dir():
            names += sorted(p.name for p in hosts_dir.iterdir() if p.is_dir() and p.name not in names)
        return names

    def _image(self, with_disks: bool) -> guest.GuestImage:
        started = time.monotonic()
        image, built = guest.ensure_image(self.cache / "guest", region_mib=self.guest_memory_mib // 2,
                                          programs=self.guest_programs, disks=with_disks)
        self._progress(f"guest image: {'built' if built else 'cached'} in {self.cache / 'guest'} "
                       f"({time.monotonic() - started:.1f} s)")
        return image

    def _ensure_host(self, spec: HostSpec) -> None:
        pid = daemon.is_running(spec)
        if pid is not None and virt.responds(spec.uri):
            self._progress(f"host {spec.name}: running (pid {pid})")
            return
        killed = daemon.kill_leftovers(spec)
        if pid is not None:
            procs.terminate(pid, lambda p: procs.owned(p, "libvirtd", run_dirs=[spec.run_dir]))
        if killed:
            self._progress(f"host {spec.name}: killed leftover processes {killed}")
        daemon.seed_cache(spec, sorted(p for p in (self.cache / "libvirt").glob("*") if p != spec.cache))
        if spec.tls_dir is not None:
            pki.ensure_host(spec.tls_dir.parent, spec.name)
        started = time.monotonic()
        pid = daemon.start(spec)
        self._progress(f"host {spec.name}: started libvirtd pid {pid} in {time.monotonic() - started:.1f} s, "
                       f"{spec.uri}")

    def _ensure_guests(self, state: dict[str, Any], image: guest.GuestImage) -> None:
        running: set[str] = set()
        for name in state["hosts"]:
            running |= set(virt.active_domains(self._spec(name, state).uri))
        created: dict[str, HostSpec] = {}
        for name, info in state["guests"].items():
            if name in running:
                self._progress(f"guest {name}: running")
                continue
            spec = self._spec(info["home"], state)
            spec.serial_log(name).unlink(missing_ok=True)
            disk = disks.prepare(spec, name, info.get("disk_mib", 0))
            virt.create(spec.uri, guest.domain_xml(name, image, self.guest_memory_mib, disk))
            created[name] = spec
        started = time.monotonic()
        for name, spec in created.items():
            log = spec.serial_log(name)
            try:
                procs.wait_for(f"guest {name}", console.shows(log, "GUEST-READY"), GUEST_BOOT_TIMEOUT_S, 0.1)
            except TimeoutError:
                raise LabError(f"guest {name} did not boot on {spec.name}; see {log}") from None
            self._progress(f"guest {name}: booted on {spec.name} in {time.monotonic() - started:.1f} s")
            setting = state["guests"][name].get("dirty")
            if setting is not None:
                dirty = DirtySetting.from_json(setting)
                self._send_plan(name, dirty)  # a recreated guest gets the setting it had
                self._progress(f"guest {name}: dirty rate set again to {dirty.describe()}")

    def _send_plan(self, name: str, setting: DirtySetting) -> int:
        """Send the setting to the guest's writer; returns the plan's sequence number."""
        plan = [(0 if s == 0 else max(1, round(s)), round(r * 1024)) for s, r in setting.steps]
        seq = time.time_ns() // 1_000_000 % 1_000_000_000
        command = guest.plan_command(seq, plan, setting.repeat, setting.working_set_mib, setting.phase_s,
                                     setting.continuous, setting.constant_pct)
        self.send(name, command, f"GUEST-CMD seq={seq}")
        return seq

    def send(self, guest_name: str, command: bytes, ack: str) -> None:
        """Write a command to the guest's pty until its console shows `ack` (see console.send)."""

        def where() -> tuple[str | None, Path]:
            host = self.host_of(guest_name)
            if host is None:
                raise LabError(f"guest {guest_name} runs nowhere")
            pty = virt.pty_path(self.uri(host), guest_name)
            if pty is None:
                raise LabError(f"guest {guest_name} on {host} has no command pty")
            return pty, self._spec(host, self._state.load()).serial_log(guest_name)

        try:
            console.send(where, command, ack, COMMAND_TIMEOUT_S)
        except TimeoutError:
            raise LabError(f"guest {guest_name} did not acknowledge {command.decode().strip()!r} "
                           f"within {COMMAND_TIMEOUT_S:.0f} s") from None

    def _wait_console(self, guest_name: str, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.guest_console(guest_name):
            if time.monotonic() > deadline:
                raise LabError(f"guest {guest_name} did not print {text.strip()!r} within {timeout_s:.0f} s; "
                               f"see {self.serial_log(guest_name)}")
            time.sleep(0.1)

    def _services(self, state: dict[str, Any]) -> list[monitoring.Service]:
        ports = state.get("ports", {})
        if "prometheus" not in ports:
            return []
        services = [monitoring.prometheus_service(self.prom_dir, ports["prometheus"]),
                    monitoring.node_exporter_service(self.prom_dir, ports["node"])]
        libvirt_ports = ports.get("libvirt", {})
        return services + [monitoring.libvirt_exporter_service(h, self._spec(h, state).uri, libvirt_ports[h])
                           for h in state["hosts"] if h in libvirt_ports]

    def _ensure_monitoring(self, state: dict[str, Any]) -> None:
        ports = monitoring.ports(state, self._ports_wanted)
        self._state.save(state)
        (self.prom_dir / "data").mkdir(parents=True, exist_ok=True)
        (self.prom_dir / "textfile").mkdir(exist_ok=True)
        services = self._services(state)
        prometheus, rest = services[0], services[1:]
        for service in rest:
            pid = monitoring.start(self.prom_dir, service)
            self._progress(f"{service.name}: http://{service.address} (pid {pid})")
        config = monitoring.prometheus_config(
            prometheus.address, f"127.0.0.1:{ports['node']}",
            {name: f"127.0.0.1:{port}" for name, port in ports["libvirt"].items() if name in state["hosts"]},
            state["advisor_metrics"],
        )
        config_file = self.prom_dir / "prometheus.yml"
        changed = not config_file.exists() or config_file.read_text() != config
        config_file.write_text(config)
        if changed and monitoring.running(self.prom_dir, prometheus) is not None:
            monitoring.reload(self.prom_dir, prometheus)
        pid = monitoring.start(self.prom_dir, prometheus)
        self._progress(f"prometheus: http://{prometheus.address} (pid {pid})")
