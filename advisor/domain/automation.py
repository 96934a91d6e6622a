"""Automation levels as SREs know them from vSphere DRS, per cluster, with per-VM overrides; and priorities.

- manual: every move needs a person's approval, placement of new VMs too;
- partial: new VMs are placed automatically, migrations need approval;
- full: the advisor approves and executes its own recommendations within its limits, recording itself as the
  actor with the level.

A VM's label `advisor.automation` overrides its cluster's level (`manual`, `partial`, `full`), or excludes the VM
from the advisor's plans altogether (`disabled`). A recommendation runs at the least automatic level of its VMs.
Recommendations below the cluster's threshold (minimum benefit over cost) are not made at all.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from advisor.domain.recommendation import Priority

# The VM label that overrides the cluster's level, and the host label naming a host's cluster.
VM_LABEL = "advisor.automation"
DEFAULT_CLUSTER = "default"


class Level(enum.StrEnum):
    MANUAL = "manual"
    PARTIAL = "partial"
    FULL = "full"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Level.MANUAL: 0, Level.PARTIAL: 1, Level.FULL: 2}
DISABLED = "disabled"
VM_LABEL_VALUES = (*(str(level) for level in Level), DISABLED)


@dataclass(frozen=True)
class ClusterAutomation:
    cluster: str
    level: Level = Level.MANUAL
    # Plans' moves must gain at least this much over what they cost (benefit_over_cost); 0 takes any gain.
    min_benefit_over_cost: float = 0.0
    updated_by: str = ""
    updated_at_s: float | None = None


def cluster_of(host_labels: Mapping[str, str], label: str) -> str:
    return host_labels.get(label, "") or DEFAULT_CLUSTER


def vm_level(cluster_level: Level, vm_labels: Mapping[str, str]) -> Level | None:
    """The VM's own level: its label's, else its cluster's; None when the VM is excluded from automation and
    plans (`disabled`). Labels are checked when pushed (`check_vm_label`)."""
    value = vm_labels.get(VM_LABEL, "")
    if value == DISABLED:
        return None
    return Level(value) if value else cluster_level


def check_vm_label(labels: Mapping[str, str]) -> str | None:
    """Why the VM's automation label is unusable, or None."""
    value = labels.get(VM_LABEL)
    if value is None or value in VM_LABEL_VALUES:
        return None
    return f"label {VM_LABEL} must be one of {', '.join(VM_LABEL_VALUES)} (got {value!r})"


def least_automatic(levels: Iterable[Level]) -> Level:
    found = list(levels)
    return min(found, key=lambda level: level.rank) if found else Level.MANUAL


def executes_itself(level: Level) -> bool:
    """Whether a migration recommended at this level is approved and executed by the advisor."""
    return level is Level.FULL


def places_itself(level: Level) -> bool:
    """Whether a new VM is placed by the advisor without approval."""
    return level.rank >= Level.PARTIAL.rank


def automation_actor(level: Level, cluster: str) -> str:
    return f"advisor (automation {level}, cluster {cluster})"


# -- priority ----------------------------------------------------------------------------------------------------

# Benefit over cost from which a move rates 2, 3, 4 (below the last: 5, a slight gain).
PRIORITY_BANDS = (20.0, 5.0, 1.0)


def rate(mandatory: str, benefit_over_cost: float | None) -> Priority:
    """DRS-like 1-5: 1 when something must happen (a drain, a broken rule: `mandatory` says what), else by how
    much the moves gain over what they cost; 3 when the gain is not measured (a move asked for by a caller)."""
    if mandatory:
        return Priority(1, mandatory)
    if benefit_over_cost is None or not math.isfinite(benefit_over_cost):
        return Priority(3, "asked for; its gain is not measured")
    for level, floor in enumerate(PRIORITY_BANDS, start=2):
        if benefit_over_cost >= floor:
            return Priority(level, f"gains {benefit_over_cost:.1f}x what it costs (>= {floor:g}x)")
    return Priority(5, f"gains {benefit_over_cost:.2f}x what it costs (< {PRIORITY_BANDS[-1]:g}x): a slight gain")
