"""What the planner keeps or picks faster instead of recomputing (a plan's cost, not its decisions): it must be
what recomputing gives, to the bit, so that plans stay the same."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.planning.engine import AntiChurn, PlanSettings, plan
from advisor.planning.engine.balance import _first
from advisor.planning.engine.snapshot import ClusterArrays
from advisor.planning.engine.weighers import power_now
from advisor.planning.engine.working import Working
from tests.unit.planning_engine.helpers import COSTS, cluster, host, vm


def _random_cluster(seed: int, n_hosts: int = 30) -> ClusterArrays:
    """Hosts of three sizes and power curves, a tenth in maintenance, VMs of every size on hosts cool to hot."""
    rng = np.random.default_rng(seed)
    hosts = [host(f"h{i:02d}", cores=int(rng.choice([16, 32, 64])), memory=int(rng.choice([65536, 131072])),
                  idle_power_w=float(rng.uniform(80, 150)), max_power_w=float(rng.uniform(250, 400)),
                  in_maintenance=bool(rng.random() < 0.1)) for i in range(n_hosts)]
    heat = rng.choice([0.2, 0.6, 1.6], n_hosts, p=[0.3, 0.5, 0.2])
    vms, cpu = [], {}
    for k in range(n_hosts * 8):
        h = int(rng.integers(n_hosts))
        vms.append(vm(f"v{k:03d}", hosts[h].id, memory=int(rng.choice([2048, 4096, 16384])),
                      vcpus=int(rng.choice([1, 2, 4, 8]))))
        cpu[vms[-1].id] = float(min(1.0, rng.beta(2, 5) * heat[h]))
    return cluster(hosts, vms, cpu=cpu)


def test_the_power_kept_after_moves_is_the_power_computed_anew_to_the_bit() -> None:
    c = _random_cluster(3)
    work = Working(c)
    rng = np.random.default_rng(3)
    for vm_index in work.vms_on(0).tolist():  # a host emptied, then woken again
        work.move(vm_index, 1)
    emptied = work.power_w[0]
    for vm_index in rng.choice(c.n_vms, 120, replace=False).tolist():
        work.move(vm_index, int(rng.integers(c.n_hosts)))
    loads = work.loads
    anew = power_now(c.host_idle_w, c.host_max_w - c.host_idle_w, c.host_cores, loads.host_cpu, loads.host_vms)
    assert emptied == 0.0 and loads.host_vms[0] > 0
    assert work.power_w.tobytes() == anew.tobytes()


@pytest.mark.parametrize("k", [0, 1, 3, 8, 20, 30, 40])
def test_the_busiest_hosts_are_those_a_full_stable_sort_lists_first(k: int) -> None:
    rng = np.random.default_rng(k)
    values = rng.choice([0.1, 0.2, 0.25, 0.5, 0.9], 30)  # many ties, at the cut too
    assert _first(values, k).tolist() == np.argsort(values, kind="stable")[:k].tolist()


@pytest.mark.parametrize("seed", range(4))
def test_balance_evens_the_load_until_the_busiest_host_is_within_the_tolerance_or_no_move_is_worth_it(
        seed: int) -> None:
    c = _random_cluster(seed, n_hosts=40)
    settings = PlanSettings(churn=AntiChurn(max_moves=500, min_gain=0.01), pool_size=16, pool_refresh=4)
    p = plan("balance", c, COSTS, settings=settings, tolerance=0.05)
    assert len(p.moves) > 5
    assert len({m.vm_id for m in p.moves}) == len(p.moves), "a VM moves at most once"
    ratio = p.after.loads.host_cpu / p.after.host_cores
    running = (p.after.loads.host_vms > 0) & ~p.after.host_disabled
    before = c.loads.host_cpu / c.host_cores
    assert ratio[running].std() < before[running].std()
    evened = [m for m in p.moves if "busiest host" in m.explanation.why_vm]
    assert evened and all(m.benefit >= 0.01 for m in evened)
