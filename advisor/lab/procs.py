"""Processes the lab started: pid files, proof of ownership before a signal, free ports, waiting, memory held.

The lab only ever signals a pid it can prove is its own: the program name in /proc/<pid>/cmdline must match, and
either a marker (a path under the lab's root) appears in the arguments, or the process sees one of the lab's host
directories mounted at /run/libvirt (a libvirtd, or a QEMU it started, lives in that daemon's mount namespace).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


def cmdline(pid: int) -> list[str]:
    """The arguments of a live process; empty for a zombie, a kernel thread or a pid that is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _program(args: list[str]) -> str:
    return os.path.basename(args[0]) if args else ""


def sees_run_dir(pid: int, run_dirs: Iterable[Path]) -> bool:
    """Whether the process's /run/libvirt is one of `run_dirs` (a bind mount in its own mount namespace).

    /proc/<pid>/root resolves paths in the process's mount namespace, so comparing inodes proves which lab host
    directory it has mounted, whatever filesystem the lab root is on.
    """
    try:
        seen = os.stat(f"/proc/{pid}/root/run/libvirt")
    except OSError:
        return False
    for run_dir in run_dirs:
        with contextlib.suppress(OSError):
            mine = os.stat(run_dir)
            if (mine.st_dev, mine.st_ino) == (seen.st_dev, seen.st_ino):
                return True
    return False


def owned(pid: int, program: str, *, marker: str | None = None, run_dirs: Iterable[Path] = ()) -> bool:
    """Whether `pid` is a process of ours running `program` (checked before every signal)."""
    args = cmdline(pid)
    if _program(args) != program:
        return False
    if marker is not None and any(marker in a for a in args[1:]):
        return True
    return sees_run_dir(pid, run_dirs)


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Exists and is not a zombie (its state in /proc/<pid>/stat is not Z or X)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def terminate(pid: int, check: Callable[[int], bool], timeout_s: float = 10.0) -> bool:
    """SIGTERM a process that `check` proves is ours, SIGKILL it after `timeout_s`; True if it was ours."""
    if not check(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not alive(pid):
            return True
        time.sleep(0.05)
    if check(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            _reap(pid)
            if not alive(pid):
                break
            time.sleep(0.05)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def all_pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def mounts_lab_run_dir(mountinfo: str, root: Path) -> bool:
    """Whether a process's mount table (the text of /proc/<pid>/mountinfo) has a host directory of the lab at
    `root` mounted at /run/libvirt, even one deleted since (a lab whose directory another `down` removed).

    A mountinfo line's fourth field is the mounted directory relative to its filesystem's root, so it is a suffix of
    the absolute path up to `/hosts/`; the fifth is where it is mounted.
    """
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == "/run/libvirt" and "/hosts/" in fields[3]:
            lab_dir = fields[3].rpartition("/hosts/")[0]
            if lab_dir and str(root).endswith(lab_dir):
                return True
    return False


def holds_lab_mount(pid: int, root: Path, programs: Iterable[str]) -> bool:
    """Whether `pid` runs one of `programs` with a host directory of the lab at `root` mounted, whether or not the
    lab still knows that host (its state lost, its directory removed): what `in_namespaces` cannot see."""
    if _program(cmdline(pid)) not in programs or not alive(pid):
        return False
    try:
        return mounts_lab_run_dir(Path(f"/proc/{pid}/mountinfo").read_text(), root)
    except OSError:
        return False


def orphans_of(root: Path, programs: Iterable[str]) -> list[int]:
    """Every live process `holds_lab_mount` finds."""
    me, wanted = os.getpid(), frozenset(programs)
    return [pid for pid in all_pids() if pid != me and holds_lab_mount(pid, root, wanted)]


def in_namespaces(run_dirs: list[Path]) -> list[int]:
    """Every live process that has one of the lab's host run directories mounted at /run/libvirt."""
    me = os.getpid()
    return [pid for pid in all_pids() if pid != me and alive(pid) and sees_run_dir(pid, run_dirs)]


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now (the kernel's choice); a small race remains until the server binds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return 200 <= int(response.status) < 300
    except OSError:
        return False


def wait_for(what: str, probe: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout_s:.0f} s")
        time.sleep(interval_s)


def wait_for_http(
    what: str, url: str, process: subprocess.Popen[bytes], timeout_s: float, interval_s: float = 0.1
) -> None:
    """Wait until `url` answers 2xx; a server `process` that exits meanwhile fails the wait at once."""

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        return http_ok(url)

    wait_for(what, ready, timeout_s, interval_s)


def rss_mib(pid: int) -> float:
    """The resident memory of a live process, in MiB; NaN once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    match = re.search(r"VmRSS:\s+(\d+)", status)
    return int(match.group(1)) / 1024 if match else float("nan")
