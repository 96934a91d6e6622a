"""Evacuation of a host that is down: which of its VMs can be restarted elsewhere, in what order, and whether the
host is down at all. Pure rules over values the use case gathers.

- Storage. A VM can be restarted on another host only when its disks are reachable there (shared storage). A VM
  with a disk that is not shared (`Vm.disks`) cannot: that disk died with its host. A VM whose disks are not
  reported is taken as on shared storage unless its label says otherwise: `advisor.storage=local`.
  `storage_refusal` is the one place that decides it.
- Priority. `advisor.priority` (an integer, -1000 to 1000, default 0): higher restarts first, as vSphere HA's
  restart priority; ties go largest memory first (the hardest to place while there is still room), then by id.
  A recommendation's own priority (1-5, advisor.domain.automation.rate) is another thing: an evacuation is
  always 1, mandatory.
- Down. `judge_host` weighs the signs of life the advisor has: its hypervisor answering the advisor's telemetry
  (libvirt reached by the dirty-rate collector) and samples of the host (pushed or pulled from Prometheus). A
  host with a sign of life within `down_after_s` is up (evacuate is not drain: a running host is drained); one
  whose hypervisor was last tried and did not answer, or whose samples stopped, for longer is down; one the
  advisor has never heard of either way cannot be judged. An operator may force the plan either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from advisor.domain.model import Disk, MigrationParameters, MoveKind, Technique

PRIORITY_LABEL = "advisor.priority"
PRIORITY_RANGE = (-1000, 1000)
STORAGE_LABEL = "advisor.storage"
STORAGE_VALUES = ("shared", "local")


def check_evacuation_labels(labels: Mapping[str, str]) -> str | None:
    """Why a VM's evacuation labels are unusable, or None."""
    priority = labels.get(PRIORITY_LABEL)
    if priority is not None:
        low, high = PRIORITY_RANGE
        try:
            number = int(priority)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            return f"label {PRIORITY_LABEL} must be an integer in [{low}, {high}] (got {priority!r})"
    storage = labels.get(STORAGE_LABEL)
    if storage is not None and storage not in STORAGE_VALUES:
        return f"label {STORAGE_LABEL} must be one of {', '.join(STORAGE_VALUES)} (got {storage!r})"
    return None


def restart_priority(labels: Mapping[str, str]) -> int:
    """The VM's restart priority (higher first); 0 without the label (pushes refuse a malformed one)."""
    try:
        return int(labels.get(PRIORITY_LABEL, "0"))
    except ValueError:
        return 0


def storage_refusal(labels: Mapping[str, str], disks: Sequence[Disk] = ()) -> str | None:
    """Why the VM cannot be restarted on another host because of its storage, or None when its disks are shared:
    a disk reported as local, or (its disks not reported) its label."""
    local = [d.target for d in disks if not d.shared]
    if local:
        return (f"its disk{'s' if len(local) > 1 else ''} {', '.join(local)} {'are' if len(local) > 1 else 'is'} "
                "local to its host: died with it")
    if labels.get(STORAGE_LABEL) == "local":
        return f"its disks are local to its host (label {STORAGE_LABEL}=local): they died with it"
    return None


@dataclass(frozen=True)
class HostSigns:
    """What the advisor last heard of a host (times in seconds since the epoch; None: never)."""

    hypervisor_answered_s: float | None = None  # its hypervisor answered the advisor's telemetry
    hypervisor_tried_s: float | None = None  # the telemetry last tried to reach it
    hypervisor_error: str = ""  # why the last try failed, in the advisor's words
    sample_s: float | None = None  # the newest sample of the host (pushed or pulled)


@dataclass(frozen=True)
class HostVerdict:
    down: bool | None  # None: the advisor cannot tell
    why: str


def judge_host(host_id: str, signs: HostSigns, now_s: float, down_after_s: float) -> HostVerdict:
    """Whether `host_id` is down by its signs of life (see the module docstring)."""
    answered, tried, sampled = signs.hypervisor_answered_s, signs.hypervisor_tried_s, signs.sample_s
    if answered is not None and now_s - answered <= down_after_s:
        return HostVerdict(False, f"its hypervisor answered {now_s - answered:.0f} s ago")
    if sampled is not None and now_s - sampled <= down_after_s:
        return HostVerdict(False, f"a sample of it arrived {now_s - sampled:.0f} s ago")
    if tried is not None and (answered is None or tried > answered):
        since = "never answered" if answered is None else f"has not answered for {now_s - answered:.0f} s"
        error = f" (last try {now_s - tried:.0f} s ago: {signs.hypervisor_error})" if signs.hypervisor_error else ""
        return HostVerdict(True, f"its hypervisor {since}{error}")
    if sampled is not None:
        return HostVerdict(True, f"no sample of it for {now_s - sampled:.0f} s (more than {down_after_s:.0f} s)")
    return HostVerdict(None, f"nothing tells whether {host_id} is down: the advisor does not read its hypervisor "
                             "and has no sample of it")


# A restart's parameters: no knob applies (nothing migrates). Its technique is cold's, whose last steps it is (the
# guest, down, defined and started on the target); `kind` says it is a restart. Its cost is predicted by
# advisor.physics.cold.restart_cost.
RESTART_PARAMETERS = MigrationParameters(Technique.COLD, 0.0, 0.0, kind=MoveKind.RESTART)
