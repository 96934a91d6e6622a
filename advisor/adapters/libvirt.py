"""The Hypervisor protocol over libvirt-python.

Each adapter keeps two connections to its host: one blocks in the migrate call, the other polls and steers (as
Nova does). Final figures come from the JOB_COMPLETED event, which needs libvirt's default event loop running in
a thread of this process; `ensure_event_loop` starts it once.
"""

from __future__ import annotations

import contextlib
import threading
import time
import xml.etree.ElementTree as ET
from typing import Any

import libvirt
import libvirt_qemu

from advisor.adapters import libvirt_cold, libvirt_disks
from advisor.adapters.libvirt_errors import classified
from advisor.adapters.libvirt_params import migration_flags, migration_params
from advisor.domain.migration import MigrationResult, Progress
from advisor.domain.model import MIB, PAGE_SIZE_BYTES, MigrationParameters
from advisor.execution.hypervisor import (
    Agent,
    GuestDefinition,
    GuestFacts,
    GuestPulse,
    GuestStats,
    HostFacts,
    HypervisorError,
    MigrationTarget,
)

AGENT_CHANNEL = "org.qemu.guest_agent.0"
# How long a guest agent may take to answer a ping.
AGENT_TIMEOUT_S = 5
_STATES = {libvirt.VIR_DOMAIN_RUNNING: "running", libvirt.VIR_DOMAIN_PAUSED: "paused",
           libvirt.VIR_DOMAIN_SHUTDOWN: "shutting down", libvirt.VIR_DOMAIN_SHUTOFF: "shut off",
           libvirt.VIR_DOMAIN_CRASHED: "crashed", libvirt.VIR_DOMAIN_PMSUSPENDED: "suspended"}

_loop_lock = threading.Lock()
_loop_running = threading.Event()


def ensure_event_loop() -> None:
    """Register libvirt's default event implementation and run it in a daemon thread (once per process)."""
    with _loop_lock:
        if _loop_running.is_set():
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _loop_running.set()


def _error(what: str, error: libvirt.libvirtError, conn: Any | None = None) -> HypervisorError:
    fault, peer = classified(error, conn)
    return HypervisorError(f"{what}: {error.get_error_message()}", fault, peer=peer)


def dirty_rate_mode(domain_xml: str) -> int:
    """How QEMU should measure a guest's dirty rate, from its definition.

    Page sampling hashes a few pages per GiB and compares their contents, so it misses a guest that rewrites memory
    with the same values (pre-copy re-sends every written page all the same). Under KVM the dirty log sees every
    write: the dirty ring where the guest was started with one (it must be set at start), else the dirty bitmap.
    Under TCG (the lab) QEMU crashes in both of those modes, so page sampling stays.
    """
    root = ET.fromstring(domain_xml)
    if root.get("type") != "kvm":
        return int(libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING)
    ring = root.find("./features/kvm/dirty-ring")
    if ring is not None and ring.get("state") == "on":
        return int(libvirt.VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING)
    return int(libvirt.VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_BITMAP)


def interface_networks(domain_xml: str) -> tuple[str, ...]:
    """The networks a guest's interfaces use, by the names a host offers them under: a libvirt network (an SR-IOV
    pool is one, with forward mode hostdev), a bridge, or the host interface a macvtap sits on. An interface given a
    host's PCI function directly (`type='hostdev'`) names no network (its address is that host's own), nor does
    user-mode networking."""
    names = []
    for interface in ET.fromstring(domain_xml).iterfind("./devices/interface"):
        source = interface.find("source")
        attribute = {"network": "network", "bridge": "bridge", "direct": "dev"}.get(interface.get("type", ""))
        if source is not None and attribute and source.get(attribute):
            names.append(source.get(attribute, ""))
    return tuple(dict.fromkeys(names))


def guest_stats_of(name: str, time_s: float, values: dict[str, Any]) -> GuestStats:
    """A guest's GuestStats from its record of libvirt's bulk stats (CPU, balloon, vCPU and block groups)."""
    # Memory in use as a migration sees it: the guest's RAM less what it could hand back (MemAvailable). QEMU
    # sends every non-zero page, the kernel's own reservation outside MemTotal included (35 MiB of a 128 MiB lab
    # guest), which MemTotal - MemFree would leave out. On the lab's 182 migrations RAM - MemAvailable was 9%
    # (median; 6-8 MiB) below the non-zero pages QEMU found (docs/learning.md).
    current, usable = values.get("balloon.current"), values.get("balloon.usable")
    used = (current - usable) / 1024 if current is not None and usable is not None else None
    # What QEMU's process holds resident (KiB): the pages the guest touched plus QEMU's own (advisor.physics
    # .first_pass_mib). Absent (or 0) where the hypervisor does not report it: unknown (None), never 0.
    rss = values.get("balloon.rss")
    return GuestStats(name, time_s, values.get("cpu.time", 0) / 1e9, int(values.get("vcpu.current", 1)), used,
                      libvirt_disks.written_mib(values), rss / 1024 if rss else None)


def has_agent_channel(domain_xml: str) -> bool:
    return ET.fromstring(domain_xml).find(f"./devices/channel/target[@name='{AGENT_CHANNEL}']") is not None


class LibvirtHypervisor:
    def __init__(self, uri: str) -> None:
        ensure_event_loop()
        self._uri = uri
        try:
            self._control = libvirt.open(uri)
        except libvirt.libvirtError as e:
            raise _error(f"cannot connect to {uri}", e) from None
        self._completed: dict[str, dict[str, Any]] = {}
        self._completed_cond = threading.Condition()
        self._callback = self._control.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._on_job_completed, None
        )

    @property
    def uri(self) -> str:
        return self._uri

    def close(self) -> None:
        try:
            self._control.domainEventDeregisterAny(self._callback)
            self._control.close()
        except libvirt.libvirtError:
            pass

    def _on_job_completed(self, _conn: Any, dom: Any, params: dict[str, Any], _opaque: Any) -> None:
        with self._completed_cond:
            self._completed[dom.name()] = dict(params)
            self._completed_cond.notify_all()

    def _domain(self, guest: str) -> Any:
        try:
            return self._control.lookupByName(guest)
        except libvirt.libvirtError as e:
            raise _error(f"guest {guest!r} on {self._uri}", e) from None

    # -- inventory -----------------------------------------------------------------------------------------

    def host_facts(self) -> HostFacts:
        try:
            model, memory_mib, cpus, *_ = self._control.getInfo()
            caps = ET.fromstring(self._control.getCapabilities())
            uuid = caps.findtext("host/uuid") or ""
            cpu_model = caps.findtext("host/cpu/model") or model
            return HostFacts(uuid, self._control.getHostname(), int(cpus), int(memory_mib), cpu_model,
                             self._networks(), libvirt_disks.local_free_mib(self._control))
        except libvirt.libvirtError as e:
            raise _error(f"host facts of {self._uri}", e) from None

    def _networks(self) -> tuple[str, ...]:
        """Active libvirt networks with their bridges, and active host interfaces (bridges, bonds, NICs). A daemon
        without the network or interface driver (a lone virtqemud) cannot list them: what it cannot list it
        does not report."""
        names: list[str] = []
        with contextlib.suppress(libvirt.libvirtError):
            for net in self._control.listAllNetworks(libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE):
                names.append(net.name())
                with contextlib.suppress(libvirt.libvirtError):  # a pool of functions or macvtap has no bridge
                    names.append(net.bridgeName())
        with contextlib.suppress(libvirt.libvirtError):
            names += [i.name() for i in self._control.listAllInterfaces(libvirt.VIR_CONNECT_LIST_INTERFACES_ACTIVE)]
        return tuple(dict.fromkeys(n for n in names if n))

    def guests(self) -> list[GuestFacts]:
        try:
            domains = self._control.listAllDomains()
        except libvirt.libvirtError as e:
            raise _error(f"guests of {self._uri}", e) from None
        facts = []
        for dom in domains:
            try:
                state, reason = dom.state()
                _, max_kib, _, vcpus, _ = dom.info()
                name, uuid = dom.name(), dom.UUIDString()
                xml = dom.XMLDesc(0)
                networks = interface_networks(xml)
                disks = libvirt_disks.guest_disks(self._control, dom, xml)
            except libvirt.libvirtError as e:
                if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # left between the listing and the question: a migration just completed
                raise _error(f"guests of {self._uri}", e) from None
            migrating = state == libvirt.VIR_DOMAIN_PAUSED and reason in (
                libvirt.VIR_DOMAIN_PAUSED_POSTCOPY, libvirt.VIR_DOMAIN_PAUSED_MIGRATION,
                libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED,
            )
            running = state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED) and not migrating
            facts.append(GuestFacts(name, uuid, int(max_kib) // 1024, int(vcpus), running, migrating, networks,
                                    disks))
        return facts

    def guest_stats(self) -> list[GuestStats]:
        try:
            records = self._control.getAllDomainStats(
                libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU
                | libvirt.VIR_DOMAIN_STATS_BLOCK,
                libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_RUNNING,
            )
        except libvirt.libvirtError as e:
            raise _error(f"domain stats of {self._uri}", e) from None
        now = time.time()
        return [guest_stats_of(dom.name(), now, values) for dom, values in records]

    def measure_dirty_rate(self, guest: str, seconds: int = 1) -> float:
        dom = self._domain(guest)
        try:
            if dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE:
                raise HypervisorError(f"guest {guest!r} has a job running (migrating?): not measuring now")
            dom.startDirtyRateCalc(seconds, dirty_rate_mode(dom.XMLDesc(0)))
            deadline = time.monotonic() + seconds + 5
            while time.monotonic() < deadline:
                time.sleep(min(0.25, seconds))
                stats = self._control.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE)[0][1]
                if stats.get("dirtyrate.calc_status") == libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED:
                    return float(stats.get("dirtyrate.megabytes_per_second", 0.0))
            raise HypervisorError(f"dirty rate of {guest!r} not measured within {seconds + 5} s")
        except libvirt.libvirtError as e:
            raise _error(f"dirty rate of {guest!r}", e) from None

    # -- migration -----------------------------------------------------------------------------------------

    def migrate(self, guest: str, target: MigrationTarget, parameters: MigrationParameters) -> MigrationResult:
        # A connection of its own: this call blocks until the migration ends.
        started = time.monotonic()
        try:
            conn = libvirt.open(self._uri)
        except libvirt.libvirtError as e:
            fault, _ = classified(e, None)
            return MigrationResult(False, error=f"cannot connect to {self._uri}: {e.get_error_message()}",
                                   fault=fault)
        try:
            dom = conn.lookupByName(guest)
            if parameters.migrate_disks:
                libvirt_disks.prepare_block_migration(dom, target.uri, parameters.migrate_disks)
            with self._completed_cond:
                self._completed.pop(guest, None)
            dom.migrateToURI3(
                target.uri, migration_params(parameters, target), migration_flags(parameters, dom.isPersistent() == 1)
            )
        except libvirt.libvirtError as e:
            fault, peer = classified(e, conn)
            return MigrationResult(False, error=e.get_error_message() or str(e),
                                   total_time_ms=(time.monotonic() - started) * 1000, fault=fault, fault_peer=peer)
        except HypervisorError as e:  # the local disks' volumes could not be made ready on the target
            return MigrationResult(False, error=str(e), total_time_ms=(time.monotonic() - started) * 1000,
                                   fault=e.fault, fault_peer=e.peer)
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()
        with self._completed_cond:
            self._completed_cond.wait_for(lambda: guest in self._completed, timeout=3.0)
            stats = self._completed.pop(guest, {})
        return MigrationResult(
            True,
            total_time_ms=float(stats.get("time_elapsed", (time.monotonic() - started) * 1000)),
            downtime_ms=float(stats["downtime"]) if "downtime" in stats else None,  # not reported: unknown
            transferred_mib=float(stats.get("memory_processed", 0)) / MIB,
            iterations=int(stats.get("memory_iteration", 0)),
            postcopy_requests=int(stats.get("memory_postcopy_requests", 0)),
        )

    def cold_move(self, guest: str, target: MigrationTarget, parameters: MigrationParameters) -> MigrationResult:
        return libvirt_cold.cold_move(self._uri, target.uri, guest, parameters.shutdown_timeout_ms / 1000,
                                      disks=parameters.migrate_disks)

    def progress(self, guest: str) -> Progress | None:
        try:
            dom = self._control.lookupByName(guest)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None  # the guest left this host: the migration completed
            raise _error(f"progress of {guest!r}", e) from None
        try:
            stats = dom.jobStats()
            if stats.get("type") not in (libvirt.VIR_DOMAIN_JOB_BOUNDED, libvirt.VIR_DOMAIN_JOB_UNBOUNDED):
                return None  # no job, or one that just ended (completed, failed, cancelled): nothing to steer
            state, reason = dom.state()
        except libvirt.libvirtError as e:
            if e.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID):
                return None  # gone, or no longer running here: the job ended
            raise _error(f"progress of {guest!r}", e) from None
        page = float(stats.get("memory_page_size", PAGE_SIZE_BYTES))
        return Progress(
            elapsed_ms=float(stats.get("time_elapsed", 0)),
            memory_total_mib=float(stats.get("memory_total", 0)) / MIB,
            memory_remaining_mib=float(stats.get("memory_remaining", 0)) / MIB,
            dirty_rate_mib_s=float(stats.get("memory_dirty_rate", 0)) * page / MIB,
            transfer_rate_mib_s=float(stats.get("memory_bps", 0)) / MIB,
            iteration=int(stats.get("memory_iteration", 0)),
            in_postcopy=state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_POSTCOPY,
            expected_downtime_ms=float(stats.get("downtime", 0)),
            autoconverge_throttle_pct=float(stats.get("auto_converge_throttle", 0)),
            postcopy_requests=int(stats.get("memory_postcopy_requests", 0)),
            transferred_mib=float(stats.get("memory_processed", 0)) / MIB,
            disk_total_mib=float(stats.get("disk_total", 0)) / MIB,
            disk_remaining_mib=float(stats.get("disk_remaining", 0)) / MIB,
            disk_rate_mib_s=float(stats.get("disk_bps", 0)) / MIB,
        )

    def guest_pulse(self, guest: str) -> GuestPulse:
        dom = self._domain(guest)
        try:
            state, reason = dom.state()
            stats = self._control.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_VCPU)[0][1]
            agent = has_agent_channel(dom.XMLDesc(0))
        except libvirt.libvirtError as e:
            raise _error(f"state of {guest!r}", e) from None
        times = [v for k, v in stats.items() if k.startswith("vcpu.") and k.endswith(".time")]
        vcpu_time_s = sum(times) / 1e9 if times else None
        running = state == libvirt.VIR_DOMAIN_RUNNING
        words = _STATES.get(state, f"state {state}") + ("" if running else f", reason {reason}")
        if not running or not agent:
            return GuestPulse(running, words, vcpu_time_s)
        try:
            libvirt_qemu.qemuAgentCommand(dom, '{"execute": "guest-ping"}', AGENT_TIMEOUT_S, 0)
        except libvirt.libvirtError as e:
            return GuestPulse(running, words, vcpu_time_s, Agent.SILENT, e.get_error_message() or str(e))
        return GuestPulse(running, words, vcpu_time_s, Agent.ANSWERED)

    def definition(self, guest: str) -> GuestDefinition:
        dom = self._domain(guest)
        try:
            return GuestDefinition(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE), bool(dom.isPersistent()))
        except libvirt.libvirtError as e:
            raise _error(f"definition of {guest!r}", e) from None

    def restart(self, guest: str, definition: GuestDefinition) -> None:
        named = ET.fromstring(definition.xml).findtext("name")
        if named != guest:
            raise HypervisorError(f"the definition is of {named!r}, not {guest!r}")
        with contextlib.suppress(libvirt.libvirtError):  # not defined here: the usual case
            if self._control.lookupByName(guest).isActive():
                raise HypervisorError(f"guest {guest!r} already runs on {self._uri}")
        try:
            if definition.persistent:
                self._control.defineXML(definition.xml).create()
            else:
                self._control.createXML(definition.xml, 0)
        except libvirt.libvirtError as e:
            raise _error(f"restart {guest!r} on {self._uri}", e) from None

    def set_max_downtime(self, guest: str, downtime_ms: float) -> None:
        try:
            self._domain(guest).migrateSetMaxDowntime(max(1, round(downtime_ms)), 0)
        except libvirt.libvirtError as e:
            raise _error(f"set downtime of {guest!r}", e) from None

    def set_max_speed(self, guest: str, mib_s: float) -> None:
        try:
            self._domain(guest).migrateSetMaxSpeed(max(1, round(mib_s)), 0)
        except libvirt.libvirtError as e:
            raise _error(f"set speed of {guest!r}", e) from None

    def start_postcopy(self, guest: str) -> None:
        try:
            self._domain(guest).migrateStartPostCopy(0)
        except libvirt.libvirtError as e:
            raise _error(f"switch {guest!r} to post-copy", e) from None

    def abort(self, guest: str) -> None:
        try:
            self._domain(guest).abortJob()
        except libvirt.libvirtError as e:
            raise _error(f"abort the job of {guest!r}", e) from None
