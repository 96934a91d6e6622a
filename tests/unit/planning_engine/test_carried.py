"""A plan ranks its moves as serving prices them: local disks copied with the VM, TLS where the pair encrypts, cold
where the VM's label asks for it; and exactly as before where none of these applies."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from advisor.domain.model import TECHNIQUE_LABEL, Disk, MigrationInputs, Technique, Vm
from advisor.domain.transport import TlsMode
from advisor.physics import DEFAULT_COLD, TLS_THROUGHPUT_FACTOR, cold_cost, predict_analytic
from advisor.physics.disk import memory_part, with_disk_copy
from advisor.planning.engine import (
    TECHNIQUES,
    AnalyticMoveCosts,
    CostEstimates,
    CostRequest,
    PlanSettings,
    TechniqueRules,
    from_domain,
    plan,
)
from advisor.planning.engine.filters import FilterPolicy
from tests.unit.planning_engine.helpers import COSTS, FAST, cluster, host, vm

FREE = PlanSettings(max_downtime_ms=10_000.0)
PRECOPY_ONLY = AnalyticMoveCosts(TechniqueRules(techniques=(Technique.PRECOPY,)))
COLD_TOO = (Technique.PRECOPY, Technique.COLD)


def one(memory: float, dirty: float, bandwidth: float, **carried: object) -> CostRequest:
    arrays = {k: np.array([v]) for k, v in carried.items()}
    return CostRequest(np.zeros(1, np.int64), np.zeros(1, np.int64), np.array([memory]), np.array([dirty]),
                       np.array([bandwidth]), np.array([True]), **arrays)  # type: ignore[arg-type]


# (disk in use MiB, disk size MiB, write rate MiB/s (NaN: not measured))
DISKS = [(8192.0, 16384.0, 2.0), (8192.0, 8192.0, np.nan), (1000.0, 2000.0, 50.0), (500.0, 1000.0, 400.0),
         (0.0, 4096.0, 5.0)]


@pytest.mark.parametrize(("used", "size", "write"), DISKS, ids=[str(d) for d in DISKS])
def test_a_move_with_local_disks_is_priced_as_the_served_prediction(used: float, size: float, write: float) -> None:
    """Row for row the physics serving adds (advisor.physics.disk.with_disk_copy on the memory part)."""
    est = PRECOPY_ONLY.estimate(one(4096.0, 20.0, 100.0, disk_used_mib=used, disk_size_mib=size,
                                    disk_write_rate_mib_s=write))
    inputs = MigrationInputs(4096.0, 20.0, 100.0, 100.0, local_disk_used_mib=used, local_disk_size_mib=size,
                             disk_write_rate_mib_s=None if np.isnan(write) else write)
    served = with_disk_copy(predict_analytic(memory_part(inputs), Technique.PRECOPY), inputs)
    for got, want in ((est.total_ms[0], served.total_time_ms), (est.downtime_ms[0], served.downtime_ms),
                      (est.data_mib[0], served.transferred_mib)):
        assert got.tolist() == pytest.approx([want.low, want.median, want.high], rel=1e-9)
    assert bool(est.converges[0]) is served.converges


def test_without_anything_carried_the_request_is_priced_as_before() -> None:
    plain = one(4096.0, 20.0, 100.0)
    zero = one(4096.0, 20.0, 100.0, disk_used_mib=0.0, disk_size_mib=0.0, disk_write_rate_mib_s=np.nan, cold=False)
    a, b = COSTS.estimate(plain), COSTS.estimate(zero)
    for name in ("technique", "total_ms", "downtime_ms", "data_mib", "converges", "p_converge", "meets_limits"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_a_cold_move_asked_for_is_priced_by_its_steps_and_meets_the_limits_whatever_they_are() -> None:
    rules = TechniqueRules(techniques=COLD_TOO, cold_shutdown_timeout_ms=30_000.0)
    est = AnalyticMoveCosts(rules).estimate(one(4096.0, 20.0, 100.0, disk_used_mib=1000.0, disk_size_mib=2000.0,
                                                disk_write_rate_mib_s=1.0, cold=True))
    served = cold_cost(MigrationInputs(4096.0, 20.0, 100.0, 100.0), 30_000.0, local_disk_mib=1000.0)
    assert est.parameters(0).technique is Technique.COLD
    assert est.parameters(0).shutdown_timeout_ms == 30_000.0
    assert est.parameters(0).deadline_ms == 0.0 and "deadline" not in est.violation(0)  # none given, as advice
    assert est.total_ms[0].tolist() == pytest.approx(
        [served.total_time_ms.low, served.total_time_ms.median, served.total_time_ms.high])
    assert est.downtime_ms[0, 1] == pytest.approx(served.downtime_ms.median)
    assert est.data_mib[0, 1] == pytest.approx(1000.0 + DEFAULT_COLD.definition_mib)
    assert est.meets_limits[0] and est.converges[0]
    cost = est.cost(0)
    assert cost.technique is Technique.COLD and cost.notes and "downtime up to" in cost.notes[0]
    assert "cold asked for by the VM's label" in est.why_technique(0)
    # cold not allowed by the rules: the live choice stands
    live = PRECOPY_ONLY.estimate(one(4096.0, 20.0, 100.0, cold=True))
    assert TECHNIQUES[int(live.technique[0])] is Technique.PRECOPY


def test_balance_prefers_the_vm_whose_move_copies_no_disk() -> None:
    """Two VMs alike but for a 50 GiB local disk: forgetting the disk, the first by id would move."""
    hosts = [host("hot"), host("b")]
    disk = Disk("vda", 102_400.0, 51_200.0, False, 1.0)

    def vms(with_disk: bool) -> list[Vm]:
        return [vm("a", "hot", vcpus=8, disks=(disk,) if with_disk else ()), vm("z", "hot", vcpus=8),
                vm("b1", "b")]
    forgotten = plan("balance", cluster(hosts, vms(False), cpu=0.9), COSTS, settings=FREE, tolerance=0.0)
    assert [m.vm_id for m in forgotten.moves] == ["a"]
    priced = plan("balance", cluster(hosts, vms(True), cpu=0.9), COSTS, settings=FREE, tolerance=0.0)
    assert [m.vm_id for m in priced.moves] == ["z"]


def test_a_drain_prices_a_local_disk_and_moves_a_labelled_vm_cold() -> None:
    hosts = [host("src", local_disk_free_mib=None), host("dst", local_disk_free_mib=500_000.0)]
    disk = Disk("vda", 20_480.0, 10_240.0, False, None)
    vms = [vm("local", "src", disks=(disk,)), vm("shared", "src"),
           vm("cold", "src", labels={TECHNIQUE_LABEL: "cold"})]
    costs = AnalyticMoveCosts(TechniqueRules(techniques=(*TECHNIQUES, Technique.COLD)))
    p = plan("drain", cluster(hosts, vms), costs, settings=FREE, host="src")
    by = {m.vm_id: m for m in p.moves}
    assert by["local"].cost.total_time_ms.median > by["shared"].cost.total_time_ms.median + 10_240 / FAST * 1000
    assert by["cold"].parameters.technique is Technique.COLD
    assert by["cold"].parameters.shutdown_timeout_ms == 60_000.0
    assert by["shared"].parameters.technique is not Technique.COLD


def test_tls_prices_an_encrypted_pair_at_its_link_less_the_overhead() -> None:
    hosts = [host("src", migration_tls=True), host("dst", migration_tls=True), host("plain")]
    vms = [vm("v", "src")]
    settings = replace(FREE, filters=FilterPolicy(migration_tls=TlsMode.PREFERRED))
    to = {h: plan("drain", cluster(hosts, vms, disabled=[o for o in ("dst", "plain") if o != h]), PRECOPY_ONLY,
                  settings=settings, host="src") for h in ("dst", "plain")}
    assert to["dst"].moves[0].target_id == "dst" and to["plain"].moves[0].target_id == "plain"
    tls, plain = to["dst"].moves[0], to["plain"].moves[0]
    assert tls.priced_mib_s == pytest.approx(FAST * TLS_THROUGHPUT_FACTOR) and plain.priced_mib_s == FAST
    assert tls.cost.total_time_ms.median > plain.cost.total_time_ms.median
    assert tls.parameters.bandwidth_mib_s == FAST  # the cap is the link: TLS lowers what flows under it
    off = plan("drain", cluster(hosts, vms, disabled=["plain"]), PRECOPY_ONLY, settings=FREE, host="src")
    assert off.moves[0].priced_mib_s == FAST  # migration_tls off: nothing encrypted


def test_hosts_offering_tls_change_nothing_when_the_setting_is_off() -> None:
    vms = [vm(f"v{i}", "a", vcpus=4) for i in range(4)] + [vm("b1", "b")]
    plain = [host("a"), host("b"), host("c")]
    offered = [replace(h, migration_tls=True) for h in plain]
    p1 = plan("balance", cluster(plain, vms, cpu=1.0), COSTS, settings=FREE)
    p2 = plan("balance", cluster(offered, vms, cpu=1.0), COSTS, settings=FREE)
    assert [(m.vm_id, m.target_id, m.cost) for m in p1.moves] == [(m.vm_id, m.target_id, m.cost) for m in p2.moves]


class Recording:
    """The analytic costs, keeping every request the engine asks them."""

    def __init__(self) -> None:
        self.inner = COSTS
        self.name = COSTS.name
        self.requests: list[CostRequest] = []

    def estimate(self, request: CostRequest) -> CostEstimates:
        self.requests.append(request)
        return self.inner.estimate(request)


def test_a_plan_asks_each_move_s_cost_with_what_its_vm_s_qemu_holds_resident() -> None:
    """What the learned models estimate the first pass from, as advice gives it them (NaN: not measured)."""
    vms = [vm("measured", "src"), vm("unmeasured", "src"), vm("resized", "src", memory=1024)]
    arrays = cluster([host("src"), host("dst")], vms,
                     vm_resident_memory_mib={"measured": 3000.0, "resized": 1024.0 + 65536.0 + 1.0})
    assert np.array_equal(arrays.vm_resident_memory_mib, [3000.0, np.nan, np.nan], equal_nan=True)
    costs = Recording()
    assert len(plan("drain", arrays, costs, settings=FREE, host="src").moves) == 3
    asked = [(int(v), r) for request in costs.requests
             for v, r in zip(request.vm.tolist(), np.asarray(request.resident_memory_mib).tolist(), strict=True)]
    assert asked and all(r == 3000.0 if v == 0 else np.isnan(r) for v, r in asked)


def test_a_plan_asks_each_move_s_cost_with_the_working_set_and_host_load_advice_reads() -> None:
    """The dirty rate judged as advice judges it (a busy guest reading ~0 is unknown, its window too; one at page
    sampling's floor is flagged), the longer window's working set (at most the VM's memory; NaN: not measured),
    and the busier host's runnable threads per CPU (a host not measured: the other's)."""
    vms = [vm("blind", "src"), vm("floor", "src"), vm("steady", "src", memory=1024), vm("unmeasured", "src")]
    arrays = from_domain([host("src"), host("dst"), host("dst2")], vms, {},
                         {"blind": 0.9, "floor": 0.8, "steady": 0.9},
                         vm_dirty_rate_mib_s={"blind": 0.0, "floor": 2.0, "steady": 30.0},
                         vm_working_set_mib={"blind": 0.0, "floor": 0.5, "steady": 4096.0},
                         host_load_per_cpu={"src": 0.5, "dst": 1.5})
    nan = np.nan
    assert np.array_equal(arrays.vm_dirty_rate_mib_s, [nan, 2.0, 30.0, nan], equal_nan=True)
    assert np.array_equal(arrays.vm_working_set_mib, [nan, 0.5, 1024.0, nan], equal_nan=True)
    assert arrays.vm_dirty_at_floor.tolist() == [False, True, False, False]
    assert np.array_equal(arrays.host_load_per_cpu, [0.5, 1.5, nan], equal_nan=True)
    costs = Recording()
    assert len(plan("drain", arrays, costs, settings=FREE, host="src").moves) == 4
    assert costs.requests
    for request in costs.requests:
        assert np.array_equal(np.asarray(request.working_set_mib), arrays.vm_working_set_mib[request.vm],
                              equal_nan=True)
        assert np.array_equal(np.asarray(request.dirty_at_floor), arrays.vm_dirty_at_floor[request.vm])
        assert np.array_equal(np.asarray(request.dirty_rate_known), ~np.isnan(arrays.vm_dirty_rate_mib_s[request.vm]))
        assert np.array_equal(np.asarray(request.load_per_cpu), np.where(request.target == 1, 1.5, 0.5))
