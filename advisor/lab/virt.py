"""The few libvirt calls the lab makes, wrapped so the rest of the lab is typed (libvirt-python is not)."""

from __future__ import annotations

import contextlib
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import libvirt

Connection = Any  # libvirt.virConnect
Domain = Any  # libvirt.virDomain

STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate", libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked", libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown", libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed", libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}
Error = libvirt.libvirtError


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt prints every error on stderr by default; the lab reports errors itself."""


libvirt.registerErrorHandler(_quiet, None)


def open_uri(uri: str) -> Connection:
    return libvirt.open(uri)


@contextlib.contextmanager
def connection(uri: str) -> Iterator[Connection]:
    conn = libvirt.open(uri)
    try:
        yield conn
    finally:
        with contextlib.suppress(Error):
            conn.close()


def responds(uri: str) -> bool:
    """A real round trip: the socket can exist before the QEMU driver has failed to start (FACTS pitfall 4)."""
    try:
        with connection(uri) as conn:
            conn.getLibVersion()
            conn.listAllDomains(0)
            return True
    except Error:
        return False


def active_domains(uri: str) -> dict[str, str]:
    """Name to state of the active domains on one daemon; empty if the daemon does not answer."""
    try:
        with connection(uri) as conn:
            return {str(d.name()): STATES.get(int(d.state()[0]), "unknown")
                    for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)}
    except Error:
        return {}


def create(uri: str, xml: str) -> None:
    with connection(uri) as conn:
        conn.createXML(xml, 0)


def destroy_all(uri: str) -> list[str]:
    """Destroy every domain (and undefine persistent ones, which a caller's migration may have left)."""
    names = []
    with connection(uri) as conn:
        for dom in conn.listAllDomains(0):
            names.append(str(dom.name()))
            with contextlib.suppress(Error):
                if dom.isActive():
                    dom.destroy()
            with contextlib.suppress(Error):
                if dom.isPersistent():
                    dom.undefine()
    return names


def destroy(uri: str, name: str) -> None:
    with connection(uri) as conn, contextlib.suppress(Error):
        conn.lookupByName(name).destroy()


def pty_path(uri: str, name: str, port: int = 1) -> str | None:
    """The host side of the guest's serial `port` when it is a pty, from the live XML of the running domain."""
    with connection(uri) as conn:
        root = ET.fromstring(str(conn.lookupByName(name).XMLDesc(0)))
    for serial in root.iterfind("./devices/serial[@type='pty']"):
        target = serial.find("target")
        source = serial.find("source")
        if target is not None and source is not None and target.get("port") == str(port):
            path = source.get("path")
            return None if path is None else str(path)
    return None


def dirty_rates_mib_s(conn: Connection, doms: dict[str, Domain], seconds: int = 1,
                     timeout_s: float = 10.0) -> dict[str, float]:
    """Page-sampling dirty-rate readings of `doms`, all over the same `seconds`: noisy, in steps of memory/(512
    pages per GiB), see FACTS. A guest whose calculation has not finished `timeout_s` after the window is left out."""
    for dom in doms.values():
        dom.startDirtyRateCalc(seconds, libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING)
    time.sleep(seconds)
    deadline = time.monotonic() + timeout_s
    rates: dict[str, float] = {}
    while True:
        for name, dom in doms.items():
            if name in rates:
                continue
            stats = dict(conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE)[0][1])
            if int(stats.get("dirtyrate.calc_status", 0)) == libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED:
                rates[name] = float(stats.get("dirtyrate.megabytes_per_second", 0))
        if len(rates) == len(doms) or time.monotonic() > deadline:
            return rates
        time.sleep(0.05)


def dirty_rate_mib_s(uri: str, name: str, seconds: int = 1) -> float:
    """One page-sampling dirty-rate reading of guest `name` (see dirty_rates_mib_s)."""
    with connection(uri) as conn:
        rates = dirty_rates_mib_s(conn, {name: conn.lookupByName(name)}, seconds)
    if name not in rates:
        raise TimeoutError(f"dirty-rate calculation of {name} did not finish")
    return rates[name]


MIGRATE_LIVE_P2P = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER


def migration_params() -> dict[str, str]:
    """Parameters every lab migration needs: libvirt refuses a loopback `migration_address` in qemu.conf
    (FACTS pitfall 2), and without a listen address the destination QEMU would listen on every interface."""
    return {libvirt.VIR_MIGRATE_PARAM_URI: "tcp://127.0.0.1", libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: "127.0.0.1"}


def migrate(src_uri: str, dst_uri: str, name: str, flags: int = MIGRATE_LIVE_P2P) -> None:
    with connection(src_uri) as conn:
        conn.lookupByName(name).migrateToURI3(dst_uri, migration_params(), flags)
