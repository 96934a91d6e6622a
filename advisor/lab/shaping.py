"""Shaped links: migrations into one lab host limited to a set rate, as if its link were that slow.

Every lab migration goes over loopback, which has no limit of its own, so QEMU's bandwidth cap always bound the
transfer. To migrate over a slower link than the cap, the lab shapes the stream into the destination: an HTB
qdisc on `lo` whose default class is effectively unlimited (all other loopback traffic: libvirt, Prometheus,
other labs' migrations), and one class per shaped host at its rate, chosen by a u32 filter on the host's
incoming-migration port block (TCP to 127.0.0.1, destination port with mask 0xfff0: `HostSpec.migration_ports`,
16 ports aligned to 16). Only the stream into that host passes the class: its sender's data packets; the
returning acknowledgements and post-copy page requests go to the sender's own port and stay unlimited, as on a
link whose bottleneck is one way. The class queues at most QUEUE_S of its rate (a byte FIFO that drops beyond,
as a switch's buffer does), not the 4 MiB per socket that Linux lets TCP hold in a host's own qdisc (0.5 s at
8 MiB/s). The sender's socket buffer (up to 4 MiB) stays, as on a real host.

Several labs on one machine share the root qdisc (handle 1:); each shaped host has its own class and filter,
numbered by its port block, and the root goes once no shaped class is left. A file lock keeps two labs' tc
calls from interleaving. A link is removed when its migration ends (also on failure), at `lab down`, and before
it is installed again (what a killed run left).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from advisor.lab.daemon import MIGRATION_PORT_BASE, MIGRATION_PORT_BLOCK, HostSpec

DEVICE = "lo"
ROOT = "1:"
DEFAULT_CLASS = "1:1"
UNLIMITED = "100gbit"  # far above what loopback carries on this machine (0.3-0.6 GiB/s measured, one stream)
QUANTUM_BYTES = 200_000  # HTB's largest sensible quantum; no class borrows, so it only silences a warning
UNLIMITED_BURST_BYTES = 16 * 1024 * 1024  # set: tc's default at 100 Gbit/s reads 0 bytes
BURST_BYTES = 256 * 1024  # above one 64 KiB loopback segment; 16 ms at 16 MiB/s
QUEUE_S = 0.05  # the link's buffer, in seconds at its rate (at least BURST_BYTES)
FIRST_LINK = 0x100  # class minor and filter priority of port block 0
LOCK = Path(tempfile.gettempdir()) / "advisor-lab-shaping.lock"
MIB = 1024 * 1024


class ShapingError(RuntimeError):
    """A tc command failed or `lo` holds a root qdisc that is not the lab's."""


@dataclass(frozen=True)
class Link:
    """The link into one host: its incoming-migration port block and the rate it is shaped to (MiB/s)."""

    low_port: int
    mib_s: float = 0.0

    def __post_init__(self) -> None:
        if self.low_port < MIGRATION_PORT_BASE or self.low_port % MIGRATION_PORT_BLOCK or self.low_port > 65535:
            raise ValueError(f"port {self.low_port} does not start a migration port block")
        if not (math.isfinite(self.mib_s) and self.mib_s >= 0):
            raise ValueError(f"a link rate must be a finite number of MiB/s >= 0, not {self.mib_s}")

    @classmethod
    def into(cls, host: HostSpec, mib_s: float = 0.0) -> Link:
        return cls(host.migration_ports[0], mib_s)

    @property
    def number(self) -> int:
        """Class minor and filter priority: distinct per port block, above the default class."""
        return FIRST_LINK + (self.low_port - MIGRATION_PORT_BASE) // MIGRATION_PORT_BLOCK

    @property
    def classid(self) -> str:
        return f"1:{self.number:x}"

    @property
    def bits_per_s(self) -> int:
        return round(self.mib_s * MIB * 8)


# -- tc commands (pure) ---------------------------------------------------------------------------------------

def add_root() -> list[list[str]]:
    return [["qdisc", "add", "dev", DEVICE, "root", "handle", ROOT, "htb", "default", "1"],
            ["class", "add", "dev", DEVICE, "parent", ROOT, "classid", DEFAULT_CLASS, "htb", "rate", UNLIMITED,
             "burst", str(UNLIMITED_BURST_BYTES), "cburst", str(UNLIMITED_BURST_BYTES), "quantum", str(QUANTUM_BYTES)]]


def remove_root() -> list[str]:
    return ["qdisc", "del", "dev", DEVICE, "root", "handle", ROOT, "htb"]


def add_link(link: Link) -> list[list[str]]:
    if link.mib_s <= 0:
        raise ValueError("a shaped link needs a rate above 0 MiB/s")
    rate = f"{link.bits_per_s}bit"
    queue = max(BURST_BYTES, round(link.mib_s * MIB * QUEUE_S))
    return [["class", "add", "dev", DEVICE, "parent", ROOT, "classid", link.classid, "htb", "rate", rate,
             "ceil", rate, "burst", str(BURST_BYTES), "cburst", str(BURST_BYTES), "quantum", str(QUANTUM_BYTES)],
            ["qdisc", "add", "dev", DEVICE, "parent", link.classid, "bfifo", "limit", str(queue)],
            ["filter", "add", "dev", DEVICE, "parent", ROOT, "protocol", "ip", "prio", str(link.number), "u32",
             "match", "ip", "dst", "127.0.0.1/32", "match", "ip", "protocol", "6", "0xff",
             "match", "ip", "dport", str(link.low_port), "0xfff0", "flowid", link.classid]]


def remove_filter(link: Link) -> list[str]:
    return ["filter", "del", "dev", DEVICE, "parent", ROOT, "protocol", "ip", "prio", str(link.number), "u32"]


def remove_class(link: Link) -> list[str]:
    return ["class", "del", "dev", DEVICE, "classid", link.classid]


# -- what `lo` holds (pure parsers of tc's output) --------------------------------------------------------------

def root_kind(qdisc_json: str) -> str:
    """'lab' when the root is the lab's HTB, 'none' when there is none to speak of, else what it is."""
    for qdisc in json.loads(qdisc_json or "[]"):
        if qdisc.get("root"):
            kind, handle = qdisc.get("kind"), qdisc.get("handle")
            if kind == "noqueue":
                return "none"
            if kind == "htb" and handle == ROOT and qdisc.get("options", {}).get("default") in ("0x1", 1):
                return "lab"
            return f"{kind} {handle}"
    return "none"


def link_classes(class_text: str) -> set[str]:
    """The shaped classes (`class htb 1:<minor> ...` lines, the default class left out)."""
    found = {f"1:{m}" for m in re.findall(r"^class htb 1:([0-9a-f]+) ", class_text, re.MULTILINE)}
    return found - {DEFAULT_CLASS}


def filter_numbers(filter_json: str) -> set[int]:
    return {int(f["pref"]) for f in json.loads(filter_json or "[]") if "pref" in f}


# -- running them -------------------------------------------------------------------------------------------------

def tc(args: list[str], json_output: bool = False) -> str:
    """Run one tc command; its output, or ShapingError with the command and tc's own message."""
    binary = shutil.which("tc")
    if binary is None:
        raise ShapingError("tc (iproute2) is not installed: shaped links need it")
    command = [binary, *(["-j"] if json_output else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        message = " ".join((result.stderr or result.stdout).split())
        raise ShapingError(f"tc {' '.join(args)}: {message or f'exit status {result.returncode}'}")
    return result.stdout


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    with open(LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _root() -> str:
    return root_kind(tc(["qdisc", "show", "dev", DEVICE], json_output=True))


def _remove(link: Link) -> bool:
    """Remove the link's filter and class if present, and the root once no link is left; whether it was there."""
    if _root() != "lab":
        return False
    present = link.number in filter_numbers(tc(["filter", "show", "dev", DEVICE, "parent", ROOT], json_output=True))
    if present:
        tc(remove_filter(link))
    classes = link_classes(tc(["class", "show", "dev", DEVICE]))
    if link.classid in classes:
        tc(remove_class(link))
        present = True
    if not classes - {link.classid}:
        tc(remove_root())
    return present


def _install(link: Link) -> None:
    _remove(link)
    root = _root()
    if root == "none":
        for command in add_root():
            tc(command)
    elif root != "lab":
        raise ShapingError(f"{DEVICE} has a root qdisc of its own ({root}); shaped links need it free")
    for command in add_link(link):
        tc(command)


@contextlib.contextmanager
def shaped_link(host: HostSpec, mib_s: float) -> Iterator[Link]:
    """Migrations into `host` limited to `mib_s` MiB/s while the block runs; removed after, also on failure."""
    link = Link.into(host, mib_s)
    add_link(link)  # refuses a rate of 0 before anything changes
    with _locked():
        try:
            _install(link)
        except BaseException:
            with contextlib.suppress(ShapingError):
                _remove(link)
            raise
    try:
        yield link
    finally:
        with _locked():
            _remove(link)


def remove_links(hosts: Iterable[HostSpec]) -> list[str]:
    """Remove the hosts' shaped links a run left (`lab down`); the hosts that had one. Without tc there are none."""
    if shutil.which("tc") is None:
        return []
    with _locked():
        return [host.name for host in hosts if _remove(Link.into(host))]
