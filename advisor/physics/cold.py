"""Cold migration's cost: the guest is shut down, its definition moves, it starts on the target.

Nothing of its memory crosses the link, so none of the pre-copy physics applies: the cost is the sum of steps,
each an interval of its own (low, median, high summed term by term). The learned models do not predict it (they
were never trained on it, and `TECHNIQUES`, their categorical feature, does not name it).

- definition: the source's definition is read and defined on the target while the guest still runs (not downtime);
- shutdown: the guest is asked to power off (ACPI) and given `shutdown_timeout_ms`; one that has not stopped by
  then is forced off (a destroy, whose own time is added). So the shutdown never lasts past the timeout plus the
  destroy;
- disks: the disks that are not shared are copied while the guest is off (`local_disk_mib`, their space in use,
  over the bandwidth; none when every disk is shared);
- start: the domain starts on the target and its vCPUs run.

Downtime is shutdown + disks + start: from the request to power off until the guest runs on the target. The guest
operating system's boot comes after that and is not counted (no hypervisor sees it; the notes say so): under the
lab's TCG it is another 9-14 s to the guest's init, a KVM guest of a full distribution takes seconds to tens of
seconds.

A restart (`restart_cost`: an evacuation's move, the guest's host being down) is the last of these steps alone:
its last known definition defined and started on the target, then the look at the guest every move ends with
(advisor.execution.guest_check: at once when its guest agent answers, else a second look `RESTART_CHECK_MS` later).
Nothing is copied (its disks are shared, its memory died with its host): the definition only. Its downtime began
when its host died, which nobody timed: the interval is only what the restart adds to it (define and start).

Defaults measured in the lab (2026-12-06, two libvirt daemons on one loaded 2-core machine, 128 MiB TCG guest;
load average about 6; four moves): define 3-9 ms (5.3 s the first time a daemon sees the guest), destroy 1.6-2.0 s,
start 0.7-2.0 s. The graceful shutdown is NOT measured: the lab's busybox guest ignores the power button, so it
always runs to the timeout; its interval is an assumption (a guest with little to stop powers off in a second or
two, a full distribution in about ten, and one may never answer). Intervals are wide, and the notes say so.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from advisor.domain.model import Interval, MigrationCost, MigrationInputs, ModelRef, Technique

FloatArray = npt.NDArray[np.float64]

COLD_MODEL = ModelRef(name="cold-steps", version="1.0.0", interval_kind="lab range (shutdown assumed)")
RESTART_MODEL = ModelRef(name="restart-steps", version="1.0.0", interval_kind="lab range")
# The guest check after a restart: (low, median, high) ms. At once when the agent answers; else a second look
# 2 s later (advisor.execution.runner.GUEST_CHECK_S), as for a guest without an agent, such as the lab's.
RESTART_CHECK_MS = (0.0, 2000.0, 2000.0)


@dataclass(frozen=True)
class ColdConstants:
    """Each step's (low, median, high) in ms; the graceful shutdown's high is unbounded (a guest may never answer),
    the timeout bounds it."""

    define_ms: tuple[float, float, float] = (5.0, 10.0, 5500.0)
    graceful_shutdown_ms: tuple[float, float, float] = (1000.0, 10_000.0, math.inf)
    destroy_ms: tuple[float, float, float] = (500.0, 1800.0, 2500.0)
    start_ms: tuple[float, float, float] = (500.0, 1100.0, 2500.0)
    # What moves: the definition, a few KiB of XML (the lab guest's, migratable: 1.9 KiB).
    definition_mib: float = 0.002


DEFAULT_COLD = ColdConstants()


def shutdown_ms(graceful_ms: float, timeout_ms: float, destroy_ms: float) -> float:
    """How long the shutdown takes: the guest's own, or the timeout and then a forced power-off."""
    return graceful_ms if graceful_ms < timeout_ms else timeout_ms + destroy_ms


def cold_cost(inputs: MigrationInputs, shutdown_timeout_ms: float, *, local_disk_mib: float = 0.0,
              constants: ColdConstants = DEFAULT_COLD) -> MigrationCost:
    """Cold migration's predicted cost (module docstring); raises ValueError on a negative or non-finite timeout
    or disk size."""
    for name, value in (("shutdown_timeout_ms", shutdown_timeout_ms), ("local_disk_mib", local_disk_mib)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite non-negative number, got {value}")
    if not local_disk_mib:  # then nothing of the VM counts: one cost per timeout, made once
        return _diskless_cold_cost(shutdown_timeout_ms, constants)
    return _cold_cost(local_disk_mib / inputs.usable_bandwidth_mib_s * 1000.0, shutdown_timeout_ms, local_disk_mib,
                      constants)


@functools.lru_cache(maxsize=16)
def _diskless_cold_cost(shutdown_timeout_ms: float, constants: ColdConstants) -> MigrationCost:
    return _cold_cost(0.0, shutdown_timeout_ms, 0.0, constants)


def _cold_cost(disk_ms: float, shutdown_timeout_ms: float, local_disk_mib: float,
               constants: ColdConstants) -> MigrationCost:
    c = constants
    downtime = [shutdown_ms(g, shutdown_timeout_ms, d) + disk_ms + s
                for g, d, s in zip(c.graceful_shutdown_ms, c.destroy_ms, c.start_ms, strict=True)]
    total = [define + down for define, down in zip(c.define_ms, downtime, strict=True)]
    notes = [
        f"cold: shut down (up to {shutdown_timeout_ms / 1000:.0f} s, then forced off), move the definition, "
        "start on the target; the whole is downtime",
        "cold's steps are lab figures and an assumed graceful shutdown: wide intervals",
        "the guest's own boot after it starts is not counted",
    ]
    if not local_disk_mib:
        notes.append("no disk copied: every disk is shared")
    transferred = c.definition_mib + local_disk_mib
    return MigrationCost(
        technique=Technique.COLD,
        total_time_ms=Interval(*sorted(total)),
        downtime_ms=Interval(*sorted(downtime)),
        transferred_mib=Interval.exact(transferred),
        converges=True,  # it always ends: a guest that does not stop is forced off
        model=COLD_MODEL,
        notes=tuple(notes),
    )


def restart_cost(constants: ColdConstants = DEFAULT_COLD) -> MigrationCost:
    """A restart's predicted cost (module docstring). Measured in the lab (docs/lab.md, 2026-12-06): 2.7 s from
    the start call to the guest found running and checked; its boot after that (10-20 s under TCG) not counted."""
    c = constants
    restart = [d + s for d, s in zip(c.define_ms, c.start_ms, strict=True)]
    total = [r + check for r, check in zip(restart, RESTART_CHECK_MS, strict=True)]
    return MigrationCost(
        technique=Technique.COLD,  # a restart has no technique of its own: it is the end of a cold move
        total_time_ms=Interval(*sorted(total)),
        downtime_ms=Interval(*sorted(restart)),
        transferred_mib=Interval.exact(c.definition_mib),
        converges=True,
        model=RESTART_MODEL,
        notes=("restart: its last known definition defined and started on the target, then the guest checked; "
               "nothing is copied (its disks are shared, its memory died with its host)",
               "its downtime began when its host died: the interval is what the restart adds to it",
               "the guest's own boot after it starts is not counted"),
    )


def cold_arrays(bandwidth_mib_s: FloatArray, local_disk_mib: FloatArray, shutdown_timeout_ms: float,
                constants: ColdConstants = DEFAULT_COLD) -> tuple[FloatArray, FloatArray, FloatArray]:
    """`cold_cost` of many moves (valid inputs, as the planner's): total ms, downtime ms and MiB sent, each (n, 3)
    (low, median, high), row for row the same figures."""
    c = constants
    disk_ms = np.where(local_disk_mib > 0, local_disk_mib / bandwidth_mib_s * 1000.0, 0.0)
    steps = np.array([shutdown_ms(g, shutdown_timeout_ms, d) + s
                      for g, d, s in zip(c.graceful_shutdown_ms, c.destroy_ms, c.start_ms, strict=True)])
    downtime = disk_ms[:, None] + steps[None, :]
    total = np.sort(downtime + np.array(c.define_ms)[None, :], axis=1)
    sent = np.repeat((c.definition_mib + local_disk_mib)[:, None], 3, axis=1)
    return total, np.sort(downtime, axis=1), sent
