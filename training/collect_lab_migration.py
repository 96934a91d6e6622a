"""One measured lab migration: set the guest's writer, measure it, migrate it to the other host with the point's
technique and parameters, watch the job, and return one row of the dataset.

Migrations are driven like the advisor's libvirt adapter drives them (advisor/adapters/libvirt.py: the same flags
and parameters, peer to peer, the bandwidth cap also after a switch to post-copy), but watched here directly:
`jobStats()` every POLL_S on the source for the first-round dirty rate, the post-copy switch and the deadline
(`abortJob` when it passes, unless in post-copy), and the completed job's statistics on the destination. A point
with a link rate migrates over a shaped link (advisor/lab/shaping.py), installed for the migration only.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import libvirt

from advisor.adapters.libvirt import ensure_event_loop, migration_flags, migration_params
from advisor.domain.model import MIB, PAGE_SIZE_BYTES, MigrationParameters, Technique
from advisor.execution.hypervisor import MigrationTarget
from advisor.lab import Lab, LabError, virt
from training.lab_grid import BURST_OFF_S, BURST_ON_S, PHASE_S, PROGRAM_START_S, Point

GUEST = "vm1"
HOSTS = ("hv1", "hv2")
POLL_S = 0.5
SETTLE_S = 1.0  # after the writer reports its plan in force, before measuring
POSTCOPY_AFTER_S = 5.0  # the `after_5s` switch point
# The lab's loopback migration address (the target URI itself is passed to migrateToURI3 apart).
LAB_TARGET = MigrationTarget("", "127.0.0.1")
LINK_MBPS = 10_000  # loopback: no link limit of its own; the cap is what binds (see the card)
MBIT = 1_000_000
# A program takes its memory at least this fast in the TCG guest (measured: stress-ng fills 64 MiB within 5 s).
PROGRAM_TOUCH_MIB_S = 32


@dataclass
class Watch:
    """What the poll loop saw of a running migration."""

    last: dict[str, Any] = field(default_factory=dict)
    first_round_dirty_pages_s: float | None = None
    nonzero_mib: float | None = None
    postcopy_after_ms: float | None = None
    aborted: bool = False
    elapsed_ms: float = 0.0
    downtime_set_ms: float | None = None  # job elapsed time when the allowed downtime was set


def flags_and_params(point: Point) -> tuple[int, dict[str, Any]]:
    """The migrateToURI3 flags and parameters for a point: the libvirt adapter's own, for a guest whose
    definition stays on the source. Post-copy is allowed from the start; `_watch` decides the switch."""
    postcopy = point.technique == Technique.POSTCOPY
    parameters = MigrationParameters(
        Technique(point.technique), point.cap_mib_s, point.max_downtime_ms, 0.0 if postcopy else None,
        point.deadline_ms, point.autoconverge_initial_pct, point.autoconverge_increment_pct,
        point.compression_threads, postcopy_bandwidth_mib_s=point.cap_mib_s if postcopy else 0.0,
    )
    return migration_flags(parameters, persistent=False), migration_params(parameters, LAB_TARGET)


def link_mbps(point: Point) -> float:
    """The dataset's available_bandwidth_mbps: the shaped link in Mbit/s, or LINK_MBPS over plain loopback."""
    return point.link_mib_s * MIB * 8 / MBIT if point.link_mib_s else LINK_MBPS


def set_writer(lab: Lab, point: Point) -> None:
    """Give the guest's writer the point's pattern, working set and rate, and wait until it runs them; or, for a
    program writer, idle the lab's writer, start the program and give it time to take its memory."""
    if lab.guest_programs:
        lab.run_program(GUEST, [])  # whatever the point before ran
    if point.pattern == "idle" or point.program:
        lab.set_dirty_schedule(GUEST, [(0, 0)], working_set_mib=0, wait_applied=True)
    elif point.pattern == "bursty":
        lab.set_dirty_schedule(GUEST, [(BURST_ON_S, point.write_rate_mib_s), (BURST_OFF_S, 0)], repeat=True,
                               working_set_mib=point.working_set_mib, wait_applied=True,
                               continuous=point.continuous, constant_pct=point.constant_pct)
    else:
        lab.set_dirty_schedule(GUEST, [(0, point.write_rate_mib_s)], working_set_mib=point.working_set_mib,
                               phase_s=PHASE_S if point.pattern == "phased" else 0, wait_applied=True,
                               continuous=point.continuous, constant_pct=point.constant_pct)
    if point.program:
        lab.run_program(GUEST, point.program)
        time.sleep(max(PROGRAM_START_S, point.working_set_mib / PROGRAM_TOUCH_MIB_S))


def memory_stats(dom: Any) -> dict[str, float | None]:
    """What serving can also read before a migration (libvirt memoryStats, KiB, in MiB): the guest's balloon
    driver's MemTotal (`available`), MemAvailable (`usable`) and MemFree (`unused`), their difference as memory
    in use (MemTotal - MemAvailable), and the source QEMU process's resident memory (`rss`: guest pages QEMU
    has touched, plus its own). None where a figure is missing."""
    stats = dom.memoryStats()

    def mib(key: str) -> float | None:
        return float(stats[key]) / 1024 if key in stats else None

    total, usable = mib("available"), mib("usable")
    return {"memory_used_mib": None if total is None or usable is None else total - usable,
            "balloon_available_mib": total, "balloon_usable_mib": usable, "balloon_unused_mib": mib("unused"),
            "qemu_rss_mib": mib("rss")}


def _should_switch(point: Point, stats: dict[str, Any], elapsed_s: float) -> bool:
    iteration = int(stats.get("memory_iteration", 0) or 0)
    if point.postcopy_switch == "start":
        return iteration >= 1
    if point.postcopy_switch == "round_1":
        return iteration >= 2
    return elapsed_s >= POSTCOPY_AFTER_S


def _set_downtime(dom: Any, downtime_ms: int) -> None:
    """The allowed downtime, set on the running job as the advisor's runner does (libvirt has no migration
    parameter for it); checked by reading it back."""
    dom.migrateSetMaxDowntime(downtime_ms, 0)
    actual = int(dom.migrateGetMaxDowntime(0))
    if actual != downtime_ms:
        raise LabError(f"allowed downtime reads back as {actual} ms, not {downtime_ms} ms")


def _watch(dom: Any, point: Point, done: threading.Event, started: float) -> Watch:
    watch = Watch()
    in_postcopy = downtime_set = False
    # Quick polls until the downtime is set: the first round of even an idle guest lasts more than 1 s.
    while not done.wait(POLL_S if downtime_set else 0.05):
        try:
            stats = dict(dom.jobStats())
        except libvirt.libvirtError:
            continue  # the job just ended (the domain left this host or stopped running here)
        if stats.get("type") not in (libvirt.VIR_DOMAIN_JOB_BOUNDED, libvirt.VIR_DOMAIN_JOB_UNBOUNDED):
            continue  # not started yet, or ended: keep the figures of the last poll of the running job
        if not downtime_set:
            _set_downtime(dom, point.max_downtime_ms)
            downtime_set = True
            watch.downtime_set_ms = float(stats.get("time_elapsed", 0) or 0)
        if not watch.aborted:
            watch.last = stats
        elapsed_s = time.monotonic() - started
        iteration = int(stats.get("memory_iteration", 0) or 0)
        if iteration >= 2 and watch.first_round_dirty_pages_s is None and not in_postcopy:
            # After the first round: its zero pages are all counted, and later rounds' are not yet.
            watch.first_round_dirty_pages_s = float(stats.get("memory_dirty_rate", 0) or 0)
            watch.nonzero_mib = _nonzero_mib(stats)
        if point.technique == "postcopy" and not in_postcopy and _should_switch(point, stats, elapsed_s):
            with contextlib.suppress(libvirt.libvirtError):  # a migration that just completed cannot switch
                dom.migrateStartPostCopy(0)
                in_postcopy = True
                watch.postcopy_after_ms = float(stats.get("time_elapsed", elapsed_s * 1000))
        if not in_postcopy and not watch.aborted and elapsed_s * 1000 >= point.deadline_ms:
            with contextlib.suppress(libvirt.libvirtError):
                dom.abortJob()
                watch.aborted = True
                watch.elapsed_ms = elapsed_s * 1000
    return watch


def _nonzero_mib(stats: dict[str, Any]) -> float | None:
    """Guest memory less the zero pages QEMU found: what the first round had to send (QEMU skips zero pages)."""
    total, zero = stats.get("memory_total"), stats.get("memory_constant")
    if total is None or zero is None:
        return None
    page = float(stats.get("memory_page_size", PAGE_SIZE_BYTES))
    return (float(total) - float(zero) * page) / MIB


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def measure_before(lab: Lab, dom: Any, uri: str) -> dict[str, Any]:
    """Balloon memory use, page-sampling dirty rates over 4, 2 and 1 s (the 1 s one last, just before) and the
    share of its vCPUs the guest kept busy meanwhile (as serving reads it: CPU time over wall time and vCPUs), which
    tells a guest rewriting the same values (busy, read as 0) from an idle one."""
    row: dict[str, Any] = memory_stats(dom)
    _, _, _, vcpus, cpu_before = dom.info()
    wall_before = time.monotonic_ns()
    for seconds, column in ((4, "dirty_rate_4s_pages_per_s"), (2, "dirty_rate_2s_pages_per_s"),
                            (1, "dirty_rate_pages_per_s")):
        row[column] = virt.dirty_rate_mib_s(uri, GUEST, seconds) * MIB / PAGE_SIZE_BYTES
    _, _, _, _, cpu_after = dom.info()
    # a share of its vCPUs, at most all of them: two clock reads around the windows can make it read 1.02
    row["vcpu_utilization"] = min(1.0, round((cpu_after - cpu_before) / ((time.monotonic_ns() - wall_before) * vcpus),
                                             3))
    row["working_set_mib"] = row["dirty_rate_4s_pages_per_s"] * 4 * PAGE_SIZE_BYTES / MIB
    row["host_load_1m"] = os.getloadavg()[0]
    row["started_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return row


@dataclass
class Ended:
    """How the migrateToURI3 call ended: its error (None: success), the wall time, the completed job's stats."""

    error: str | None
    wall_ms: float
    completed: dict[str, Any]
    watch: Watch


def _migrate(lab: Lab, conn: Any, dom: Any, point: Point, source: str, target: str) -> Ended:
    completed: dict[str, Any] = {}
    got_completed = threading.Event()

    def on_completed(_conn: Any, _dom: Any, params: dict[str, Any], _opaque: Any) -> None:
        completed.update(params)
        got_completed.set()

    callback = conn.domainEventRegisterAny(dom, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, on_completed, None)
    flags, params = flags_and_params(point)
    done = threading.Event()
    error: list[str] = []

    def run() -> None:
        try:
            with virt.connection(lab.uri(source)) as own:  # migrateToURI3 blocks: a connection of its own
                own.lookupByName(GUEST).migrateToURI3(lab.uri(target), params, flags)
        except libvirt.libvirtError as e:
            error.append(e.get_error_message() or str(e))
        finally:
            done.set()

    started = time.monotonic()
    thread = threading.Thread(target=run, name="migrate", daemon=True)
    thread.start()
    try:
        watch = _watch(dom, point, done, started)
    finally:
        if not done.is_set():  # interrupted while migrating: do not leave the job running
            with contextlib.suppress(libvirt.libvirtError):
                dom.abortJob()
        thread.join()
    wall_ms = (time.monotonic() - started) * 1000
    if not error:
        got_completed.wait(5.0)
    with contextlib.suppress(libvirt.libvirtError):
        conn.domainEventDeregisterAny(callback)
    return Ended(error[0] if error else None, wall_ms, completed, watch)


def migrate_and_measure(lab: Lab, point: Point) -> dict[str, Any]:
    """Run one point end to end; the returned row has the measured columns of the dataset."""
    source = lab.host_of(GUEST)
    if source is None:
        raise LabError(f"guest {GUEST} runs nowhere")
    target = HOSTS[1] if source == HOSTS[0] else HOSTS[0]
    set_writer(lab, point)
    time.sleep(SETTLE_S)
    measuring = lab.guest_written(GUEST)
    ensure_event_loop()  # before the connection: the source's JOB_COMPLETED event carries the final figures
    with virt.connection(lab.uri(source)) as conn:
        dom = conn.lookupByName(GUEST)
        row = measure_before(lab, dom, lab.uri(source))
        migrating = lab.guest_written(GUEST)
        with lab.shaped_link(target, point.link_mib_s) if point.link_mib_s else contextlib.nullcontext():
            ended = _migrate(lab, conn, dom, point, source, target)
    watch = ended.watch
    row.update(postcopy_after_ms=watch.postcopy_after_ms, nonzero_mib=watch.nonzero_mib,
               downtime_set_at_ms=watch.downtime_set_ms,
               first_round_dirty_rate_pages_per_s=watch.first_round_dirty_pages_s, host=f"{source}->{target}")
    if ended.error is None:
        stats = ended.completed or _completed_stats(lab.uri(target))
        row.update(outcome="completed", total_time_ms=stats.get("time_elapsed", ended.wall_ms),
                   downtime_ms=stats.get("downtime"), transferred_kib=float(stats.get("memory_processed", 0)) / 1024,
                   iterations=stats.get("memory_iteration"), postcopy_requests=stats.get("memory_postcopy_requests"))
        if row["nonzero_mib"] is None:  # post-copy sends each page once: its zero pages are counted once
            row["nonzero_mib"] = _nonzero_mib(stats)
    else:
        last = watch.last
        row.update(outcome="aborted" if watch.aborted else "failed", error=_one_line(ended.error),
                   total_time_ms=watch.elapsed_ms or ended.wall_ms,
                   transferred_kib=float(last.get("memory_processed", 0)) / 1024 if last else None,
                   iterations=last.get("memory_iteration"), postcopy_requests=last.get("memory_postcopy_requests"))
    row["guest_alive_after"] = lab.guest_alive(GUEST, within_s=5)
    if not point.program:  # the heartbeat counts the lab's writer only
        row["writer_rate_before_mib_s"] = _achieved(measuring, migrating)
        row["writer_rate_during_mib_s"] = _achieved(migrating, lab.guest_written(GUEST))
    return row


def _achieved(start: tuple[float, int] | None, end: tuple[float, int] | None) -> float | None:
    """MiB/s the writer really wrote between two heartbeats (guest uptime, MiB written); None without both."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    return (end[1] - start[1]) / (end[0] - start[0])


def _completed_stats(uri: str) -> dict[str, Any]:
    """The completed job's statistics, kept by the destination's libvirt after a successful migration (after a
    post-copy they appear there a little after the source's call returns)."""
    deadline = time.monotonic() + 3.0
    with virt.connection(uri) as conn:
        while True:
            with contextlib.suppress(libvirt.libvirtError):
                stats = dict(conn.lookupByName(GUEST).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED))
                if stats.get("type") == libvirt.VIR_DOMAIN_JOB_COMPLETED:
                    return stats
            if time.monotonic() > deadline:
                raise LabError(f"no completed job statistics for {GUEST} on {uri} within 3 s")
            time.sleep(0.2)
