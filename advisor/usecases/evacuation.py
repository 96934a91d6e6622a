"""What an evacuation plan needs beyond the cluster's snapshot: whether the host is down, which of its VMs can be
restarted elsewhere, and in what order (the rules are advisor.domain.evacuation's; the plan is the engine's
`evacuate` strategy, run by advisor.usecases.cluster_plans).

A VM can be restarted elsewhere when its storage is shared (today: unless its label says local; the disk
inventory will decide it here) and the advisor knows its definition (read from its host's hypervisor while that
host was up, advisor.adapters.sql.definitions). A host is judged by its signs of life (its hypervisor
answering the advisor's telemetry, its samples); one still up is refused unless the caller forces the plan (an
operator who knows it is fenced or dead), and so is one the advisor cannot judge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from advisor.domain.errors import FailedPrecondition
from advisor.domain.evacuation import HostVerdict, judge_host, restart_priority, storage_refusal
from advisor.domain.model import Vm
from advisor.usecases.liveness import HypervisorSigns
from advisor.usecases.ports import Clock


class KnownDefinitions(Protocol):
    def known(self, vm_ids: Iterable[str]) -> set[str]: ...


@dataclass(frozen=True)
class HostWatch:
    """How the advisor tells a host is down and whether a VM can be restarted elsewhere."""

    signs: HypervisorSigns
    last_sample_s: Callable[[str], float | None]
    definitions: KnownDefinitions
    down_after_s: float
    clock: Clock

    def verdict(self, host_id: str) -> HostVerdict:
        return judge_host(host_id, self.signs.of(host_id, self.last_sample_s(host_id)), self.clock(),
                          self.down_after_s)

    def check_down(self, host_id: str, force: bool) -> str:
        """Why the host is taken as down (what the plan's summary says); refuses a host up or not known to be
        down, unless `force`."""
        verdict = self.verdict(host_id)
        if verdict.down:
            return f"{host_id} is down: {verdict.why}."
        if not force:
            if verdict.down is None:
                raise FailedPrecondition(f"cannot tell that {host_id} is down ({verdict.why}); force the evacuation "
                                         "if you know it is")
            raise FailedPrecondition(f"{host_id} is up ({verdict.why}): evacuate restarts the VMs of a host that is "
                                     "down; to move VMs off a running host, drain it (goal drain), or force the "
                                     "evacuation if you know it is dead")
        return f"{host_id} taken as down by the caller's force ({verdict.why})."

    def parameters(self, host_id: str, vms: Mapping[str, Vm], host_ids: Iterable[str]) -> dict[str, object]:
        """The engine's `evacuate` parameters: the VMs' priorities, those that cannot be restarted and why, and the
        other hosts found down (they take nothing)."""
        on_host = [vm for vm in vms.values() if vm.host_id == host_id]
        defined = self.definitions.known(vm.id for vm in on_host)
        unrestartable: dict[str, tuple[str, str]] = {}
        for vm in on_host:
            storage = storage_refusal(vm.labels, vm.disks)
            if storage:
                unrestartable[vm.id] = ("local storage", storage)
            elif vm.id not in defined:
                unrestartable[vm.id] = ("no definition", "the advisor never read its definition (it reads them "
                                                         "from the hypervisors it reaches, while their hosts are up)")
        excluded = tuple(h for h in host_ids if h != host_id and self.verdict(h).down)
        return {"host": host_id, "priorities": {vm.id: restart_priority(vm.labels) for vm in on_host},
                "unrestartable": unrestartable, "excluded": excluded}
