"""Small hand-built clusters for the engine's tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from advisor.domain.model import Host, Vm
from advisor.planning.engine import AnalyticMoveCosts, ClusterArrays, Rule, from_domain

# A migration network fast enough that an idle VM's move takes seconds (analytic model).
FAST = 1000.0


def host(ident: str, cores: int = 16, memory: int = 65536, **kw: object) -> Host:
    defaults: dict[str, object] = {"idle_power_w": 100.0, "max_power_w": 250.0, "network_bandwidth_mib_s": FAST}
    return Host(**{"id": ident, "cpu_cores": cores, "memory_mib": memory, **defaults, **kw})  # type: ignore[arg-type]


def vm(ident: str, host_id: str, memory: int = 4096, vcpus: int = 2, **kw: object) -> Vm:
    return Vm(**{"id": ident, "host_id": host_id, "memory_mib": memory, "vcpus": vcpus, **kw})  # type: ignore[arg-type]


def cluster(hosts: Sequence[Host], vms: Sequence[Vm], cpu: Mapping[str, float] | float = 0.25,
            rules: Sequence[Rule] = (), dirty: float = 5.0, **kw: object) -> ClusterArrays:
    """VM CPU as a ratio of its vCPUs (one value for all, or per VM); every VM dirties `dirty` MiB/s."""
    vm_cpu = {v.id: cpu for v in vms} if isinstance(cpu, float) else dict(cpu)
    return from_domain(hosts, vms, {}, vm_cpu, rules, vm_dirty_rate_mib_s={v.id: dirty for v in vms},
                       **kw)  # type: ignore[arg-type]


COSTS = AnalyticMoveCosts()
