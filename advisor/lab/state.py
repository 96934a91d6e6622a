"""What the lab knows between runs: the status values it reports, each guest's writer setting, and the state
file (`state.json`, under a file lock so two `up`/`down` never interleave)."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.lab.guest import CONSTANT_PCTS


class LabError(RuntimeError):
    """The lab cannot do what was asked; the message says what and where to look."""


@dataclass(frozen=True)
class DirtySetting:
    """Memory write activity of a guest: (seconds, MiB/s) steps in order; 0 seconds means "until changed".

    Without `repeat`, the last step's rate stays in force once its time is up. The writer rewrites a working set
    of `working_set_mib` (None: the guest's default region, half its memory at most); with `phase_s` > 0 the
    working set moves to the next window of the guest's largest region every `phase_s` seconds.
    """

    steps: tuple[tuple[float, float], ...] = ((0.0, 0.0),)
    repeat: bool = False
    working_set_mib: int | None = None
    phase_s: int = 0
    continuous: bool = False  # each second's MiB spread over the second, not in one burst
    constant_pct: int = 0  # the share of each written page that stays zero

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a schedule needs at least one step")
        if any(seconds < 0 or mib_s < 0 for seconds, mib_s in self.steps):
            raise ValueError(f"a step is negative: {list(self.steps)}")
        if (self.working_set_mib is not None and self.working_set_mib < 0) or self.phase_s < 0:
            raise ValueError(f"negative working set or phase: {self.working_set_mib}, {self.phase_s}")
        if self.constant_pct not in CONSTANT_PCTS:
            raise ValueError(f"constant share {self.constant_pct}% is not one of {CONSTANT_PCTS}")

    @property
    def rate_mib_s(self) -> float | None:
        """The rate when the setting is a single constant rate, else None."""
        return self.steps[0][1] if len(self.steps) == 1 else None

    def describe(self) -> str:
        if self.rate_mib_s is not None:
            text = f"{self.rate_mib_s:g} MiB/s"
        else:
            body = ", ".join(f"{s:g}s@{r:g}" for s, r in self.steps)
            text = f"schedule {body}" + (" (repeat)" if self.repeat else "")
        if self.working_set_mib is not None:
            text += f" over {self.working_set_mib} MiB"
        if self.phase_s:
            text += f", moving every {self.phase_s} s"
        if self.continuous:
            text += ", continuous"
        if self.constant_pct:
            text += f", {self.constant_pct}% of each page zero"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"steps": [list(step) for step in self.steps], "repeat": self.repeat,
                "working_set_mib": self.working_set_mib, "phase_s": self.phase_s, "continuous": self.continuous,
                "constant_pct": self.constant_pct}

    @staticmethod
    def from_json(raw: dict[str, Any] | None) -> DirtySetting:
        if not raw:
            return DirtySetting()
        ws = raw.get("working_set_mib")
        return DirtySetting(tuple((float(s), float(r)) for s, r in raw["steps"]), bool(raw.get("repeat", False)),
                            None if ws is None else int(ws), int(raw.get("phase_s", 0)),
                            bool(raw.get("continuous", False)), int(raw.get("constant_pct", 0)))


@dataclass(frozen=True)
class HostStatus:
    name: str
    uri: str  # qemu+unix:///system?socket=<absolute path>
    pid: int | None
    up: bool  # the daemon answers a real call
    tcp_uri: str | None = None
    migration_tls: bool = False  # its QEMU has the lab's migration certificates (advisor.lab.pki)


@dataclass(frozen=True)
class GuestStatus:
    name: str
    host: str | None  # the host it runs on now (None: not running anywhere)
    state: str  # running, paused, ... or "missing"
    dirty: DirtySetting
    serial_log: Path | None  # ttyS0 on the host that runs it now


@dataclass(frozen=True)
class ServiceStatus:
    name: str  # prometheus, node-exporter, libvirt-exporter-<host>
    url: str
    pid: int | None
    up: bool


@dataclass(frozen=True)
class LabStatus:
    root: Path
    hosts: tuple[HostStatus, ...] = ()
    guests: tuple[GuestStatus, ...] = ()
    prometheus_url: str | None = None
    services: tuple[ServiceStatus, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        """Every host answers, every guest runs, and every Prometheus process serves."""
        return (all(h.up for h in self.hosts) and all(g.state == "running" for g in self.guests)
                and all(s.up for s in self.services))

    def host(self, name: str) -> HostStatus:
        return next(h for h in self.hosts if h.name == name)

    def guest(self, name: str) -> GuestStatus:
        return next(g for g in self.guests if g.name == name)


class StateFile:
    """`state.json` under `root`: hosts, guests (home host, writer setting), ports; and the lab's file lock."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "state.json"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            state = {}
        state.setdefault("hosts", {})
        state.setdefault("guests", {})
        state.setdefault("ports", {})
        return state

    def save(self, state: dict[str, Any]) -> None:
        tmp = self.path.with_name("state.json.tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.path)
