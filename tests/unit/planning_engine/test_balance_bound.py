"""Balance's even-load phase spares the target search of a VM it cannot move (a bound of its gain, its targets found
in one matrix), and that never changes what a plan moves or says."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.planning.engine import AntiChurn, PlanSettings, plan
from advisor.planning.engine import balance as balance_module
from advisor.planning.engine.balance import BALANCE_WEIGHTS, Sizes, _first, _gain, gain_bound
from advisor.planning.engine.batched import best_hosts
from advisor.planning.engine.batched import plain as plain_vms
from advisor.planning.engine.filters import FilterPolicy
from advisor.planning.engine.planner import Planner
from advisor.planning.engine.snapshot import NO_HOST, ClusterArrays
from advisor.planning.engine.weighers import Weights, power_now
from advisor.planning.engine.working import Working
from tests.unit.planning_engine.helpers import COSTS, cluster, host, vm


def test_the_bound_is_the_best_gain_over_every_host_and_the_least_loaded_of_each_size_gives_it() -> None:
    rng = np.random.default_rng(0)
    cores = rng.choice([16.0, 32.0, 64.0], 40)
    ratio = rng.uniform(0.05, 0.9, 40)
    vm_cpu = rng.uniform(0.0, 12.0, 25)
    hosts = np.arange(40)
    sizes = Sizes(*_grouped(cores, hosts))
    bound = gain_bound(0.95, 32.0, vm_cpu, sizes.cores, sizes.least(ratio))
    every = _gain(0.95, ratio[None, :], (vm_cpu / 32.0)[:, None], vm_cpu[:, None] / cores[None, :])
    assert np.allclose(bound, every.max(axis=1), rtol=0, atol=1e-12)
    assert (every <= bound[:, None] + 1e-12).all()


def test_a_bigger_host_gains_more_for_the_same_load_so_the_bound_looks_at_every_size() -> None:
    # the coolest host (16 cores, 20%) gains less for a 4-core VM than a 64-core one at 30%
    cores, least = np.array([16.0, 64.0]), np.array([0.2, 0.3])
    gain_16 = _gain(0.9, 0.2, np.array([4.0 / 32]), np.array([4.0 / 16]))
    gain_64 = _gain(0.9, 0.3, np.array([4.0 / 32]), np.array([4.0 / 64]))
    assert gain_64[0] > gain_16[0]
    assert gain_bound(0.9, 32.0, np.array([4.0]), cores, least)[0] == pytest.approx(gain_64[0])
    assert gain_bound(0.9, 32.0, np.array([4.0]), np.zeros(0), np.zeros(0))[0] == -np.inf  # no host to go to


def test_sizes_leave_out_disabled_hosts() -> None:
    c = cluster([host("a", cores=16), host("b", cores=16, in_maintenance=True), host("c", cores=32)],
                [vm("v", "a")], cpu=0.5)
    sizes = Sizes.of(c)
    assert sizes.cores.tolist() == [16.0, 32.0]
    ratio = np.array([0.5, 0.1, 0.7])
    assert sizes.least(ratio).tolist() == [0.5, 0.7]  # b (10%) is disabled


def _grouped(cores: np.ndarray, hosts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = hosts[np.argsort(cores[hosts], kind="stable")]
    sizes, starts = np.unique(cores[order], return_index=True)
    return sizes, order, starts


def _random_cluster(seed: int, n_hosts: int = 30) -> ClusterArrays:
    """Hosts of three sizes and power curves, VMs of every size, a few in groups or pinned to a CPU model."""
    rng = np.random.default_rng(seed)
    hosts = [host(f"h{i:02d}", cores=int(rng.choice([16, 32, 64])), memory=int(rng.choice([65536, 131072])),
                  idle_power_w=float(rng.uniform(80, 150)), max_power_w=float(rng.uniform(250, 400)),
                  cpu_model=str(rng.choice(["a", "b"])), in_maintenance=bool(rng.random() < 0.1))
             for i in range(n_hosts)]
    heat = rng.choice([0.2, 0.6, 1.6], n_hosts, p=[0.3, 0.5, 0.2])
    vms, cpu = [], {}
    for k in range(n_hosts * 8):
        h = int(rng.integers(n_hosts))
        pinned = {"cpu_model": hosts[h].cpu_model} if rng.random() < 0.1 else {}
        vms.append(vm(f"v{k:03d}", hosts[h].id, memory=int(rng.choice([2048, 4096, 16384])),
                      vcpus=int(rng.choice([1, 2, 4, 8])), **pinned))
        cpu[vms[-1].id] = float(min(1.0, rng.beta(2, 5) * heat[h]))
    return cluster(hosts, vms, cpu=cpu)


PACK = Weights(load=-1.0, balance=0.0, energy=0.2)  # the fullest host that takes the VM: the capacity filters bind


@pytest.mark.parametrize("weights", [BALANCE_WEIGHTS, PACK])
@pytest.mark.parametrize("seed", range(5))
def test_targets_found_together_are_the_ones_a_search_finds(seed: int, weights: Weights) -> None:
    """Filters that bind (CPU headroom, vCPUs, memory, CPU model, no return, maintenance), a pool smaller than the
    cluster or all of its hosts."""
    c = _random_cluster(seed)
    rng = np.random.default_rng(seed)
    policy = FilterPolicy(cpu_allocation_ratio=float(rng.choice([1.0, 2.0])),
                          max_cpu_after=float(rng.uniform(0.3, 0.9)))
    p = Planner(c, COSTS, PlanSettings(filters=policy, pool_size=24 if seed % 2 else 64), None, 0.0)
    back = rng.random(c.n_vms) < 0.2
    p.left[back] = rng.integers(0, c.n_hosts, int(back.sum()))
    plain = plain_vms(c)
    named = 0
    for source in range(c.n_hosts):
        vms = p.work.vms_on(source)
        vms = vms[plain[vms]]
        best = best_hosts(c, p.work.loads, vms, p.settings.filters, p.pool_view("spread"), p.left, weights,
                          mean_cpu=0.4, reference_w=p.reference_w, power_w=p.work.power_w)
        for vm_index, found in zip(vms.tolist(), best.tolist(), strict=True):
            if found == NO_HOST:
                continue
            choice = p.choose(vm_index, weights, pool="spread", mean_cpu=0.4)
            assert choice is not None and choice.host == found
            named += 1
    assert named > 50


@pytest.mark.parametrize("seed", range(5))
def test_sparing_searches_never_changes_the_plan(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    c = _random_cluster(seed, n_hosts=40)
    settings = PlanSettings(churn=AntiChurn(max_moves=200, min_gain=0.01), pool_size=16, pool_refresh=4)
    searches = {"n": 0}
    choose = Planner.choose

    def counted(self: Planner, *args: object, **kwargs: object) -> object:
        searches["n"] += 1
        return choose(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Planner, "choose", counted)
    spared = plan("balance", c, COSTS, settings=settings, tolerance=0.05)
    spared_searches = searches["n"]
    monkeypatch.setattr(balance_module, "_hopeless", lambda p, h, vms, *_: np.zeros(vms.shape[0], dtype=bool))
    searches["n"] = 0
    every = plan("balance", c, COSTS, settings=settings, tolerance=0.05)
    assert len(spared.moves) > 5
    assert [(m.vm_id, m.source_id, m.target_id, m.benefit, m.explanation) for m in spared.moves] == [
        (m.vm_id, m.source_id, m.target_id, m.benefit, m.explanation) for m in every.moves]
    assert spared.refused == every.refused
    assert spared_searches < searches["n"], "some VM was spared its search"


@pytest.mark.parametrize("k", [0, 1, 3, 8, 20, 40])
def test_the_busiest_hosts_are_those_a_full_stable_sort_lists_first(k: int) -> None:
    rng = np.random.default_rng(k)
    values = rng.choice([0.1, 0.2, 0.25, 0.5, 0.9], 30)  # many ties, at the cut too
    assert _first(values, k).tolist() == np.argsort(values, kind="stable")[:k].tolist()


def test_the_power_kept_after_moves_is_the_power_computed_anew_to_the_bit() -> None:
    c = _random_cluster(3)
    work = Working(c)
    rng = np.random.default_rng(3)
    for vm_index in rng.choice(c.n_vms, 120, replace=False).tolist():  # hosts emptied and woken too
        work.move(vm_index, int(rng.integers(c.n_hosts)))
    loads = work.loads
    anew = power_now(c.host_idle_w, c.host_max_w - c.host_idle_w, c.host_cores, loads.host_cpu, loads.host_vms)
    assert work.power_w.tobytes() == anew.tobytes()
