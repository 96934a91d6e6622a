"""Placement filters reject with a reason each; the weigher prefers the lowest resulting load."""

from __future__ import annotations

from advisor.domain.model import Host, Vm
from advisor.planning.placement import HostLoad, PlacementPolicy, VmDemand, assess_host, rank_targets


def load(ident: str, *, cpu: float | None = 0.2, mem: int = 0, vcpus: int = 0, **kw: object) -> HostLoad:
    host = Host(**{"id": ident, "cpu_cores": 16, "memory_mib": 65536, "cpu_model": "m1", **kw})  # type: ignore[arg-type]
    return HostLoad(host, mem, vcpus, cpu)


VM = Vm("v", "src", memory_mib=8192, vcpus=4, cpu_model="m1")
DEMAND = VmDemand(VM, cpu_utilization=0.5)  # 2 cores busy


def test_every_failed_filter_gives_its_reason() -> None:
    a = assess_host(
        DEMAND, load("src", cpu=0.9, mem=60000, vcpus=62, cpu_model="m2", in_maintenance=True),
        conflicts={"src": "anti-affinity group 'db': VM w runs there"}, partners={}, excluded=frozenset({"src"}),
    )
    assert not a.eligible
    text = " | ".join(a.rejections)
    for fragment in ("current host", "excluded by request", "in maintenance", "CPU model 'm2'", "memory: needs 8192",
                     "vCPUs: 62 + 4 > 64", "CPU load would reach", "anti-affinity group 'db'"):
        assert fragment in text


def test_ranking_prefers_lower_resulting_load_and_lists_rejected_last() -> None:
    ranked = rank_targets(
        DEMAND,
        [load("busy", cpu=0.6), load("calm", cpu=0.1), load("full", mem=60000), load("mid", cpu=0.3)],
        conflicts={}, partners={},
    )
    assert [a.host_id for a in ranked] == ["calm", "mid", "busy", "full"]
    assert ranked[0].cpu_after is not None and abs(ranked[0].cpu_after - (0.1 + 2 / 16)) < 1e-9
    assert not ranked[-1].eligible


def test_affinity_partner_wins_a_close_call() -> None:
    ranked = rank_targets(DEMAND, [load("a", cpu=0.20), load("b", cpu=0.25)], conflicts={}, partners={"b": "orders"})
    assert ranked[0].host_id == "b"


def test_unknown_vm_cpu_is_taken_as_fully_busy() -> None:
    policy = PlacementPolicy(max_cpu_after=0.5)
    unknown = assess_host(VmDemand(VM, None), load("h", cpu=0.3), conflicts={}, partners={}, policy=policy)
    measured = assess_host(DEMAND, load("h", cpu=0.3), conflicts={}, partners={}, policy=policy)
    assert not unknown.eligible and measured.eligible


def test_unmeasured_host_cpu_is_estimated_from_allocation() -> None:
    a = assess_host(DEMAND, load("h", cpu=None, vcpus=32), conflicts={}, partners={})
    assert a.cpu_after is not None and abs(a.cpu_after - (32 / 64 + 2 / 16)) < 1e-9
