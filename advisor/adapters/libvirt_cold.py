"""Cold migration over libvirt: define on the target, shut down, undefine here, start there.

The target's definition is written first, from the source's own (VIR_DOMAIN_XML_SECURE | MIGRATABLE: with its
secrets, without what only this host's QEMU needs), while the guest still runs, so that a target that refuses it
costs no downtime. Then the guest is asked to power off (ACPI) and forced off (destroy) if it has not within its
timeout; the disks that are not shared (the move's `migrate_disks`) are copied next, volume by volume through
libvirt's storage streams (advisor.adapters.libvirt_disks.copy_disks); its definition here is removed and it
starts on the target. A transient guest (defined only while it runs, as the
lab's are) stays so: the target's definition is removed once it runs there.

Every failure leaves the guest defined on one host and, where it can, running again where it ran; the result's
`detail` says where (the advisor's words; `error` keeps libvirt's).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import libvirt

from advisor.adapters import libvirt_disks
from advisor.adapters.libvirt_errors import classified
from advisor.domain.migration import MigrationResult
from advisor.domain.model import MIB
from advisor.execution.hypervisor import HypervisorError

XML_FLAGS = libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_MIGRATABLE
SHUTDOWN_POLL_S = 0.1


class _Failed(Exception):
    """A step failed: `error` libvirt's words, `detail` where the guest is now."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(error)
        self.error, self.detail = error, detail


def _words(e: libvirt.libvirtError) -> str:
    return e.get_error_message() or str(e)


def _is_off(dom: Any) -> bool:
    """Whether the domain stopped; a transient one is gone once it has."""
    try:
        return not dom.isActive()
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return True
        raise


def cold_move(source_uri: str, target_uri: str, guest: str, shutdown_timeout_s: float, *,
              disks: tuple[str, ...] = (), clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> MigrationResult:
    """Move `guest` cold from `source_uri` to `target_uri` (module docstring), blocking until it runs there or the
    move failed."""
    started = clock()
    try:
        src = libvirt.open(source_uri)
    except libvirt.libvirtError as e:
        return MigrationResult(False, error=f"cannot connect to the source: {_words(e)}",
                               detail="untouched on the source", fault=classified(e, None)[0])
    try:
        dst = libvirt.open(target_uri)
    except libvirt.libvirtError as e:
        src.close()
        # The fault is the target's: the other host than the source this move is run from (fault_peer).
        return MigrationResult(False, error=f"cannot connect to the target: {_words(e)}",
                               detail="untouched on the source", fault=classified(e, None)[0], fault_peer=True)
    try:
        forced, copied, down_at, up_at = _steps(src, dst, guest, shutdown_timeout_s, disks, clock, sleep)
    except _Failed as failure:
        return MigrationResult(False, error=failure.error, total_time_ms=(clock() - started) * 1000,
                               detail=failure.detail)
    finally:
        dst.close()
        src.close()
    return MigrationResult(
        True, total_time_ms=(clock() - started) * 1000, downtime_ms=(up_at - down_at) * 1000,
        transferred_mib=copied / MIB,
        detail=(f"forced off: it did not shut down within {shutdown_timeout_s:.0f} s" if forced
                else "shut down by itself"),
    )


def _shut_down(dom: Any, timeout_s: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> bool:
    """Ask the guest to power off, and force it off after `timeout_s`; whether it was forced."""
    asked = clock()
    dom.shutdown()
    while not _is_off(dom) and clock() - asked < timeout_s:
        sleep(SHUTDOWN_POLL_S)
    if _is_off(dom):
        return False
    dom.destroy()
    return True


def _steps(src: Any, dst: Any, guest: str, timeout_s: float, disks: tuple[str, ...], clock: Callable[[], float],
           sleep: Callable[[float], None]) -> tuple[bool, int, float, float]:
    """The move's steps: (forced off, the bytes copied: definition and disks, when the shutdown began, when it ran
    on the target)."""
    try:
        dom = src.lookupByName(guest)
        if not dom.isActive():
            raise _Failed(f"guest {guest!r} is not running", "untouched on the source, not running")
        persistent = dom.isPersistent() == 1
        xml = dom.XMLDesc(XML_FLAGS)
    except libvirt.libvirtError as e:
        raise _Failed(_words(e), "untouched on the source") from None
    try:
        moved = dst.defineXML(xml)
    except libvirt.libvirtError as e:
        raise _Failed(f"define on the target: {_words(e)}", "untouched on the source, running") from None

    def back_on_source(why: str) -> _Failed:
        """Undo: start the guest on the source again, remove the target's definition."""
        try:
            restarted = _is_off(dom)
            if restarted and persistent:
                src.defineXML(xml).create()
            elif restarted:
                src.createXML(xml, 0)
            moved.undefine()
            return _Failed(why, "started again on the source" if restarted else "still running on the source")
        except libvirt.libvirtError as e:
            return _Failed(f"{why}; then starting it again on the source: {_words(e)}",
                           "defined on the target, shut off")

    down_at = clock()
    try:
        forced = _shut_down(dom, timeout_s, clock, sleep)
    except libvirt.libvirtError as e:
        raise back_on_source(f"shut down: {_words(e)}") from None
    copied = len(xml.encode())
    if disks:
        wanted = [d for d in libvirt_disks.disk_sources(xml) if d.target in disks]
        try:
            copied += libvirt_disks.copy_disks(src, dst, wanted)
        except HypervisorError as e:
            raise back_on_source(str(e)) from None
    try:
        if persistent:
            dom.undefine()
    except libvirt.libvirtError as e:
        raise back_on_source(f"undefine on the source: {_words(e)}") from None
    try:
        moved.create()
    except libvirt.libvirtError as e:
        raise back_on_source(f"start on the target: {_words(e)}") from None
    up_at = clock()
    if not persistent:
        # transient again, as it was; if this fails it stays defined on the target: harmless
        with contextlib.suppress(libvirt.libvirtError):
            moved.undefine()
    return forced, copied, down_at, up_at
