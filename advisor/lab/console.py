"""A guest's two serial ports seen from the host: ttyS0 is a log file (boot, heartbeat, writer reports), ttyS1 a
pty that takes commands (`guest.plan_command`).

QEMU reads a pty only while its other end is open (it polls for that about once a second), so a command is
written, the end kept open until the acknowledgement shows on the console, and written again every few seconds;
the guest ignores a plan whose sequence number it already has.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

COMMAND_TIMEOUT_S = 15.0
RESEND_S = 3.0
_HEARTBEAT = re.compile(r"GUEST-HEARTBEAT uptime=([0-9.]+)")
_WRITTEN = re.compile(r"GUEST-HEARTBEAT uptime=([0-9.]+) written_mib=([0-9]+)")


def read(path: Path | None) -> str:
    """The whole log, or "" when it is missing or unreadable (a guest that just moved, or never booted)."""
    if path is None:
        return ""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def shows(log: Path, text: str) -> Callable[[], bool]:
    return lambda: text in read(log)


def last_heartbeat(log: Path | None) -> float | None:
    """The guest's uptime in its last heartbeat line (it carries over a migration)."""
    beats = _HEARTBEAT.findall(read(log))
    return float(beats[-1]) if beats else None


def heartbeat_advances(log: Callable[[], Path | None], within_s: float) -> bool:
    """Whether the heartbeat in the serial log `log()` names (read again each time: the guest may move) advances
    within `within_s`."""
    deadline = time.monotonic() + within_s
    baseline = last_heartbeat(log())
    while time.monotonic() < deadline:
        time.sleep(0.25)
        latest = last_heartbeat(log())
        if latest is not None and (baseline is None or latest > baseline):
            return True
    return False


def last_written(log: Path | None) -> tuple[float, int] | None:
    """(guest uptime, MiB the writer wrote at its rate since boot) from the last heartbeat line that has both."""
    beats = _WRITTEN.findall(read(log))
    return (float(beats[-1][0]), int(beats[-1][1])) if beats else None


def send(where: Callable[[], tuple[str | None, Path]], command: bytes, ack: str,
         timeout_s: float = COMMAND_TIMEOUT_S) -> None:
    """Write `command` to the pty that `where()` names (with the console log next to it) until the log shows `ack`.

    `where` is asked again before every write, because a migration can move the guest (and its pty) meanwhile;
    it returns (None, log) when the guest has no command pty, and raises when the guest runs nowhere.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pty, log = where()
        if pty is None:
            raise RuntimeError("no command pty")
        fd = os.open(pty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            os.write(fd, command)
            resend = time.monotonic() + RESEND_S
            while time.monotonic() < min(resend, deadline):
                if ack in read(log):
                    return
                time.sleep(0.05)
        finally:
            os.close(fd)
    raise TimeoutError(f"no {ack!r} within {timeout_s:.0f} s")
